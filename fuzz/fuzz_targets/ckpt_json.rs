//! `ckpt.json` is read back from the store, which anyone with write access
//! to it can edit: `CheckpointMeta::from_json` must refuse bad text without
//! panicking, and whatever it accepts must survive `to_json` → `from_json`
//! unchanged (a checkpoint's metadata is rewritten when it is copied).
//!
//! Its first finding (seed `crash-float-drift-in-spec`): serde_json's
//! default float parsing was one ULP off for some numbers, so a float in
//! the `spec` copy drifted on each rewrite. ckpt now enables serde_json's
//! `float_roundtrip`, and the check below is strict.
#![no_main]

use ckpt::store::CheckpointMeta;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    let dir = Path::new("x");
    let Ok(meta) = CheckpointMeta::from_json(dir, text) else {
        return;
    };
    let written = meta.to_json();
    let again = CheckpointMeta::from_json(dir, &written)
        .unwrap_or_else(|e| panic!("to_json output is refused by from_json: {e}\n{written}"));
    assert_eq!(meta, again, "round trip changed the metadata:\n{written}");
});
