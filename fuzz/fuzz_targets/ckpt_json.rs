//! `ckpt.json` is read back from the store, which anyone with write access
//! to it can edit: `CheckpointMeta::from_json` must refuse bad text without
//! panicking, and whatever it accepts must survive `to_json` → `from_json`
//! unchanged (a checkpoint's metadata is rewritten when it is copied).
//!
//! Known finding (docs/fuzzing.md): serde_json's default float parsing is
//! off by one ULP for some numbers, so a float inside the `spec` copy can
//! drift on each rewrite (seed `crash-float-drift-in-spec`). Until ckpt
//! parses floats exactly, `CKPT_FUZZ_FLOAT_DRIFT=allow` lets a run look past
//! that one difference; without it the target checks strict equality.
#![no_main]

use ckpt::store::CheckpointMeta;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use std::path::Path;

fuzz_target!(|text: &str| {
    let dir = Path::new("x");
    let Ok(meta) = CheckpointMeta::from_json(dir, text) else {
        return;
    };
    let written = meta.to_json();
    let again = CheckpointMeta::from_json(dir, &written)
        .unwrap_or_else(|e| panic!("to_json output is refused by from_json: {e}\n{written}"));
    if meta == again || (float_drift_allowed() && equal_but_float_drift(&meta, &again)) {
        return;
    }
    assert_eq!(meta, again, "round trip changed the metadata:\n{written}");
});

fn float_drift_allowed() -> bool {
    std::env::var_os("CKPT_FUZZ_FLOAT_DRIFT").is_some_and(|v| v == "allow")
}

/// Equal except for floats in `spec` that differ by a few ULPs.
fn equal_but_float_drift(a: &CheckpointMeta, b: &CheckpointMeta) -> bool {
    let without_spec = |m: &CheckpointMeta| CheckpointMeta {
        spec: Value::Null,
        ..m.clone()
    };
    without_spec(a) == without_spec(b) && values_close(&a.spec, &b.spec)
}

fn values_close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            (x - y).abs() <= x.abs().max(y.abs()) * 4.0 * f64::EPSILON
        }
        (Value::Array(xs), Value::Array(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| values_close(x, y))
        }
        (Value::Object(xs), Value::Object(ys)) => {
            xs.len() == ys.len() && xs.iter().all(|(k, x)| ys.get(k).is_some_and(|y| values_close(x, y)))
        }
        _ => a == b,
    }
}
