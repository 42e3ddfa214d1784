//! End-to-end tests of `ckpt` against crun containers (root only; see
//! e2e_runc.rs for how to run them). Fewer cases than runc: what differs
//! for crun is discovery (state in /run/crun/<id>/status) and the restore
//! through `crun restore`, not ckpt's refusals or store handling.
//!
//! On this host crun only runs in a mount namespace without the hybrid
//! cgroup2 mount; the harness does that for `crun run` (common/container.rs).

mod common;

use std::process::Command;
use std::thread;
use std::time::Duration;

use common::{
    assert_continues_from, cgroup_descendants, expect_code, prereqs_with, unified_cgroup_root, wait_until,
    CgroupMarkers, Container, Runtime, Store,
};

#[test]
fn crun_create_stops_container_and_start_continues_counter() {
    if !prereqs_with(&["crun", "unshare"]) {
        return;
    }
    let store = Store::with_runtime(Runtime::Crun);
    let c = Container::crun().start();
    let before = c
        .wait_counter_above(10, Duration::from_secs(10))
        .expect("counter warms up");
    // Regression: on the hybrid host crun's containers are in no cgroup of
    // the unified hierarchy, and CRIU dumped that hierarchy from its root:
    // each restore copied every cgroup on the host below the container's,
    // doubling them (two million after a day of tests).
    let cgroup2 = unified_cgroup_root();
    let _markers = CgroupMarkers::new(&cgroup2);
    let cgroups_before = cgroup_descendants(&cgroup2);

    expect_code(&store.ckpt(["create", &c.id, "one"]), 0, "ckpt create (crun)");
    let entry = store.find(&c.id, "one").expect("ls lists the checkpoint");
    assert_eq!(entry["made_by"], "ckpt", "{entry}");
    assert_eq!(entry["leave_running"], false, "{entry}");

    assert!(!c.is_running(), "create left it {:?}", c.status());
    assert!(!Runtime::Crun.list_shows_running(&c.id));
    let saved = c.counter().expect("counter file after dump");
    assert!(saved >= before);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(c.counter(), Some(saved), "something still writes the counter");

    expect_code(
        &store.ckpt(["start", "--checkpoint", "one", &c.id]),
        0,
        "ckpt start (crun)",
    );
    assert_continues_from(&c, saved);
    let cgroups_after = cgroup_descendants(&cgroup2);
    assert!(
        cgroups_after <= cgroups_before + 2,
        "the restore made {} cgroups in {} (from {cgroups_before}): it copied the host's cgroups",
        cgroups_after as i64 - cgroups_before as i64,
        cgroup2.display()
    );
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(
        Runtime::Crun.list_shows_running(&c.id),
        "crun list does not show it running"
    );

    let killed = Command::new("crun").args(["kill", &c.id, "KILL"]).status().unwrap();
    assert!(killed.success(), "crun kill of the restored container failed");
    assert!(
        wait_until(Duration::from_secs(5), || !c.is_running()),
        "still {:?} after crun kill",
        c.status()
    );
}

#[test]
fn crun_leave_running_keeps_counting() {
    if !prereqs_with(&["crun", "unshare"]) {
        return;
    }
    let store = Store::with_runtime(Runtime::Crun);
    let c = Container::crun().start();
    c.wait_counter_above(5, Duration::from_secs(10)).expect("counter runs");

    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "live"]),
        0,
        "ckpt create --leave-running (crun)",
    );
    assert!(c.is_running(), "--leave-running stopped it: {:?}", c.status());
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));
    let v = c.counter().unwrap();
    assert!(
        c.wait_counter_above(v, Duration::from_secs(5)).is_some(),
        "counter stuck at {v}"
    );
    let entry = store.find(&c.id, "live").expect("ls lists the checkpoint");
    assert_eq!(entry["leave_running"], true, "{entry}");
}

/// Regression (issue 9), as for runc: create → start → create -R →
/// create → start → create → `start --name` → create -R on the copy, for
/// every kind of stdin.
#[test]
fn crun_restored_container_with_any_stdin_is_checkpointed_again() {
    if !prereqs_with(&["crun", "unshare"]) {
        return;
    }
    for stdin in common::Stdin::ALL {
        common::chain::checkpoint_chain(Runtime::Crun, stdin);
    }
}

/// `--runtime auto` (the default) must find a crun container as crun,
/// record it so, and restore it with crun; every other test here passes
/// `--runtime crun`, so none would notice if auto picked runc.
#[test]
fn auto_runtime_records_crun_for_a_crun_container() {
    if !prereqs_with(&["crun", "unshare"]) {
        return;
    }
    let store = Store::new(); // no --runtime: ckpt decides
    let c = Container::crun().start();
    c.wait_counter_above(5, Duration::from_secs(10))
        .expect("counter warms up");

    expect_code(&store.ckpt(["create", &c.id, "auto"]), 0, "ckpt create (auto, crun)");
    let entry = store.find(&c.id, "auto").expect("ls lists the checkpoint");
    assert_eq!(entry["runtime"], "crun", "ls --json: {entry}");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.checkpoint_dir(&c.id, "auto").join("ckpt.json")).unwrap()).unwrap();
    assert_eq!(meta["runtime"], "crun", "ckpt.json: {meta}");
    let saved = c.counter().expect("counter file after dump");
    assert!(!c.is_running(), "create left it {:?}", c.status());

    expect_code(
        &store.ckpt(["start", "--checkpoint", "auto", &c.id]),
        0,
        "ckpt start (auto, crun)",
    );
    assert_continues_from(&c, saved);
    assert!(
        Runtime::Crun.list_shows_running(&c.id),
        "crun list does not show the restored container running"
    );
    assert!(
        !Runtime::Runc.list_shows_running(&c.id),
        "runc restored a crun container"
    );
}
