//! Root-only checks of the test harness itself, without ckpt: that the
//! containers the e2e tests rely on really start, count, freeze, have the
//! stdio each variant promises, and are gone after drop. When an e2e test
//! fails, these say whether to suspect ckpt or the harness.

mod common;

use std::fs;
use std::process::Command;
use std::time::Duration;

use common::{prereqs, prereqs_with, wait_until, Container, Runtime};

const TICK_WAIT: Duration = Duration::from_secs(5);

/// readlink of `/proc/<pid>/fd/<fd>`.
fn fd_target(pid: i32, fd: u32) -> String {
    fs::read_link(format!("/proc/{pid}/fd/{fd}"))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("<{e}>"))
}

#[test]
fn runc_container_counts_freezes_and_is_removed_on_drop() {
    if !prereqs() {
        return;
    }
    let c = Container::runc().start();
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(Runtime::Runc.list_shows_running(&c.id));
    let v = c.counter().unwrap();
    assert!(c.wait_counter_above(v, TICK_WAIT).is_some(), "counter stuck at {v}");
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));
    let pid = c.pid().unwrap();
    assert!(fd_target(pid, 1).starts_with("pipe:"), "fd 1 is {}", fd_target(pid, 1));
    assert!(
        c.output().lines().any(|l| l.trim() == "1"),
        "drained output: {:?}",
        c.output()
    );

    let pause = Command::new("runc").args(["pause", &c.id]).status().unwrap();
    assert!(pause.success());
    assert_eq!(c.freezer_state().as_deref(), Some("FROZEN"));
    let frozen_at = c.counter();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(c.counter(), frozen_at, "counter moved while frozen");
    assert!(Command::new("runc").args(["resume", &c.id]).status().unwrap().success());
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));

    let id = c.id.clone();
    drop(c);
    assert_eq!(Runtime::Runc.status(&id), None, "container survived drop");
}

#[test]
fn tty_variant_has_a_terminal_and_keeps_counting() {
    if !prereqs() {
        return;
    }
    let c = Container::runc().tty().start();
    let pid = c.pid().unwrap();
    let fd1 = fd_target(pid, 1);
    assert!(fd1.starts_with("/dev/pts/"), "fd 1 is {fd1}");
    let v = c.counter().unwrap();
    // Counting past a few KiB of output proves the console master is drained.
    assert!(c.wait_counter_above(v + 3, TICK_WAIT).is_some(), "counter stuck at {v}");
    assert!(c.output().contains(&format!("{v}")), "console output: {:?}", c.output());
}

#[test]
fn host_file_variant_writes_to_a_host_file() {
    if !prereqs() {
        return;
    }
    let c = Container::runc().stdout_to_host_file().start();
    let path = c.host_stdout_path().unwrap().to_owned();
    let pid = c.pid().unwrap();
    assert_eq!(fd_target(pid, 1), path.display().to_string());
    let v = c.wait_counter_above(2, TICK_WAIT).unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert!(text.lines().any(|l| l.trim() == v.to_string()), "{path:?}: {text:?}");
}

#[test]
fn ballast_is_resident() {
    if !prereqs() {
        return;
    }
    let c = Container::runc().ballast_mb(64).start();
    let status = fs::read_to_string(format!("/proc/{}/status", c.pid().unwrap())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap();
    assert!(rss_kb >= 64 * 1024, "VmRSS {rss_kb} kB < 64 MiB");
    assert!(c.wait_counter_above(c.counter().unwrap(), TICK_WAIT).is_some());
}

#[test]
fn crun_container_counts_and_freezes() {
    if !prereqs_with(&["crun", "unshare"]) {
        return;
    }
    let c = Container::crun().start();
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(Runtime::Crun.list_shows_running(&c.id));
    let v = c.counter().unwrap();
    assert!(c.wait_counter_above(v, TICK_WAIT).is_some(), "counter stuck at {v}");
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));
    assert!(Command::new("crun").args(["pause", &c.id]).status().unwrap().success());
    // crun may return while the v1 freezer still says FREEZING (seen on a
    // loaded machine with crun 1.28): it must settle on FROZEN.
    assert!(
        wait_until(Duration::from_secs(10), || c.freezer_state().as_deref()
            == Some("FROZEN")),
        "freezer state {:?} after crun pause",
        c.freezer_state()
    );
    assert!(Command::new("crun").args(["resume", &c.id]).status().unwrap().success());

    let id = c.id.clone();
    drop(c);
    assert_eq!(Runtime::Crun.status(&id), None, "container survived drop");
}

/// Each kind of stdin the chain tests start containers with is what it
/// says at fd 0 of the init: a pipe, the container's `/dev/null`; a closed
/// fd 0 comes out as `/dev/null` or not at all (the runtime's own doing).
#[test]
fn stdin_variants_give_the_promised_fd_0() {
    if !prereqs() {
        return;
    }
    let mut builders: Vec<fn() -> common::container::Builder> = vec![Container::runc];
    if prereqs_with(&["crun", "unshare"]) {
        builders.push(Container::crun);
    }
    for builder in builders {
        for stdin in common::Stdin::ALL {
            let c = builder().stdin(stdin).start();
            let fd0 = fd_target(c.pid().unwrap(), 0);
            let what = format!("{} with {stdin:?} stdin: fd 0 is {fd0}", c.runtime.name());
            match stdin {
                common::Stdin::Pipe | common::Stdin::Fifo => assert!(fd0.starts_with("pipe:"), "{what}"),
                common::Stdin::DevNull => assert_eq!(fd0, "/dev/null", "{what}"),
                common::Stdin::Closed => assert!(fd0 == "/dev/null" || fd0.starts_with('<'), "{what}"),
            }
            let v = c.counter().unwrap();
            assert!(
                c.wait_counter_above(v, TICK_WAIT).is_some(),
                "{what}: counter stuck at {v}"
            );
        }
    }
}
