//! Checkpoint names and container ids come from the command line and from
//! directory listings, and each becomes one path component under the store.
//! Whatever the validators accept must stay one plain component.
#![no_main]

use ckpt::store::names::{validate_checkpoint_name, validate_container_id, MAX_LEN};
use libfuzzer_sys::fuzz_target;
use std::path::{Component, Path};

/// Asserts what an accepted name or id must be.
fn check_component(what: &str, s: &str) {
    assert!(!s.is_empty(), "{what} accepted empty");
    assert!(s.len() <= MAX_LEN, "{what} accepted {} bytes: {s:?}", s.len());
    assert!(s.is_ascii(), "{what} accepted non-ASCII {s:?}");
    assert!(!s.contains('/'), "{what} accepted {s:?} with '/'");
    assert!(!s.contains('\0'), "{what} accepted {s:?} with NUL");
    assert!(s != "." && s != "..", "{what} accepted {s:?}");
}

/// Asserts that `store/id/checkpoints/name` is below `store` and has no `..`.
fn check_joined(id: &str, name: &str) {
    let store = Path::new("/var/lib/ckpt");
    let p = store.join(id).join("checkpoints").join(name);
    assert!(p.starts_with(store), "{p:?} escapes the store");
    assert!(
        p.components().all(|c| c != Component::ParentDir),
        "{p:?} has a '..' component"
    );
    assert_eq!(p.components().count(), store.components().count() + 3, "{p:?} is not 3 components deeper");
}

fuzz_target!(|data: &[u8]| {
    // One input carries an id and a name, split at the first 0xff byte (which
    // never occurs in UTF-8), so each half can be anything, NUL included.
    let (a, b) = match data.iter().position(|&x| x == 0xff) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let (Ok(a), Ok(b)) = (std::str::from_utf8(a), std::str::from_utf8(b)) else {
        return;
    };
    let name_ok = validate_checkpoint_name(b).is_ok();
    let id_ok = validate_container_id(a).is_ok();
    if name_ok {
        check_component("validate_checkpoint_name", b);
        assert!(!b.ends_with('.'), "validate_checkpoint_name accepted {b:?}");
    }
    if id_ok {
        check_component("validate_container_id", a);
    }
    if name_ok && id_ok {
        check_joined(a, b);
    }
});
