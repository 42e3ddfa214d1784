//! Runtime state files that name the container's init stdio: crun's
//! `status` (whose `external_descriptors` is a JSON array inside a JSON
//! string, decoded twice) and runc's `state.json`. Both live under
//! `/run/<runtime>` and are parsed before ckpt decides anything, so
//! malformed ones must be refused, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    let root = Path::new("/run/fuzz");
    if let Ok(c) = ckpt::engine::oci::crun::parse_status(Path::new("status"), text, root, "id") {
        // The spec path is built from the root and the id given, never from
        // the file: a status file cannot point ckpt at another spec.
        assert_eq!(c.spec_path, root.join("id").join("config.json"));
    }
    let _ = ckpt::engine::oci::runc::parse_state(Path::new("state.json"), text, root);
});
