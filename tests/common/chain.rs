//! The life of a checkpointed runc or crun service, as issue 9 lists it:
//! create → start → create -R → create → start → create → `start --name`
//! copy → create -R on the copy, with the counter continuing from its
//! saved state at every restore and running on at every live checkpoint.
//!
//! Each live checkpoint's `descriptors.json` must describe the init's
//! stdio as it is then, so that the next restore re-attaches what the
//! container really holds.

use std::fs;
use std::thread;
use std::time::Duration;

use super::{
    assert_continues_from, assert_untouched, expect_code, stderr, unique_id, Container, Runtime, Stdin, Store,
};

/// Counter value reached before the first checkpoint.
const WARM: u64 = 10;

/// Runs the whole chain for one runtime and one kind of stdin; panics
/// naming the step that failed.
pub fn checkpoint_chain(runtime: Runtime, stdin: Stdin) {
    let store = Store::with_runtime(runtime);
    let builder = match runtime {
        Runtime::Runc => Container::runc(),
        Runtime::Crun => Container::crun(),
    };
    let c = builder.stdin(stdin).start();
    let step = |what: &str| format!("{} with {stdin:?} stdin: {what}", runtime.name());
    c.wait_counter_above(WARM, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("{}", step("counter warms up")));

    let saved = create_stopped(&store, &c, "one", &step("create"));
    start(&store, &c.id, "one", None, &step("start"));
    assert_continues_from(&c, saved);

    create_live(&store, &c, "two", &step("create -R of the restored container"));

    let saved = create_stopped(&store, &c, "three", &step("second create"));
    start(&store, &c.id, "three", None, &step("second start"));
    assert_continues_from(&c, saved);

    // The copy shares the rootfs (and its /tmp/count): the source is
    // stopped by its checkpoint first.
    let saved = create_stopped(&store, &c, "four", &step("third create"));
    let copy_id = unique_id();
    let copy = Container::adopt(runtime, &copy_id, &c.rootfs);
    start(&store, &c.id, "four", Some(&copy_id), &step("start --name"));
    assert_continues_from(&copy, saved);

    create_live(&store, &copy, "five", &step("create -R of the copy"));
}

/// `ckpt create ID NAME`: the container stops, its counter stands still;
/// returns the counter's saved value.
fn create_stopped(store: &Store, c: &Container, name: &str, what: &str) -> u64 {
    expect_code(&store.ckpt(["create", &c.id, name]), 0, what);
    assert!(!c.is_running(), "{what}: left it {:?}", c.status());
    let saved = c
        .counter()
        .unwrap_or_else(|| panic!("{what}: no counter after the dump"));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(c.counter(), Some(saved), "{what}: something still writes the counter");
    saved
}

/// `ckpt start --checkpoint NAME [--name NEW] ID`, which must exit 0.
fn start(store: &Store, id: &str, name: &str, new_id: Option<&str>, what: &str) {
    let mut args = vec!["start", "--checkpoint", name];
    if let Some(new_id) = new_id {
        args.extend(["--name", new_id]);
    }
    args.push(id);
    let out = store.ckpt(&args);
    expect_code(&out, 0, what);
    assert!(!stderr(&out).contains("error"), "{what}: {}", stderr(&out));
}

/// `ckpt create --leave-running ID NAME`: the container runs on, not
/// frozen, counting, and the checkpoint's `descriptors.json` names the
/// init's stdio pipes as they are now (the runtimes re-attach exactly
/// those at the next restore), and no pipe where the init has none (a file
/// or a closed fd, which CRIU restores by itself).
fn create_live(store: &Store, c: &Container, name: &str, what: &str) {
    expect_code(&store.ckpt(["create", "--leave-running", &c.id, name]), 0, what);
    assert_untouched(c, what);
    let path = store.checkpoint_dir(&c.id, name).join("descriptors.json");
    let recorded: Vec<String> = serde_json::from_slice(&fs::read(&path).expect("read descriptors.json"))
        .unwrap_or_else(|e| panic!("{what}: {} is not a JSON list of strings: {e}", path.display()));
    let pid = c.pid().expect("the init's pid");
    // The counter points fd 1 at /tmp/count for a moment each tick: a
    // reading that catches it is taken again.
    let mut live = Vec::new();
    for _ in 0..100 {
        live = (0..3)
            .map(|fd| {
                fs::read_link(format!("/proc/{pid}/fd/{fd}"))
                    .map(|t| t.display().to_string())
                    .unwrap_or_else(|_| "(closed)".into())
            })
            .collect();
        let pipe = |s: &String| s.starts_with("pipe:");
        let agree = live
            .iter()
            .zip(&recorded)
            .all(|(l, r)| if pipe(l) || pipe(r) { l == r } else { true });
        if recorded.len() == 3 && agree {
            return;
        }
        thread::sleep(Duration::from_millis(20));
    }
    panic!("{what}: descriptors.json says {recorded:?}, the init's stdio is {live:?}");
}
