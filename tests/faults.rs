//! Fault injection against real runc containers and real CRIU: criu or
//! ckpt SIGKILLed at chosen moments, a store that fills up mid-dump,
//! concurrent commands on one container, and 100 create/start cycles
//! checked for leaks. Root only; run with
//! `cargo test --test faults -- --test-threads=1` (see scripts/test and
//! docs/reliability.md, which lists every case with its test).
//!
//! How a moment of a dump is hit (the container holds [`BALLAST_MB`] MiB so
//! that CRIU writes pages for a few hundred ms; the staging dir
//! `<store>/<id>/.ckpt-staging/<name>.<pid>.<nonce>/` is polled every ms):
//! - early: a `criu dump` child of ckpt exists and no `pages-*.img` yet;
//! - mid page-dump: a `pages-*.img` exists, grew since the last poll and
//!   holds less than 3/4 of the ballast;
//! - just before exit: `inventory.img` exists — CRIU writes it last, after
//!   every page, mount and cgroup image, ~100 ms before it exits.
//!
//! And of a restore (the `criu swrk` child of `runc restore`, its log at
//! `<store>/<id>/.ckpt-staging/restore.*/restore.log`):
//! - early: the log exists but has no `pie:` line (no task restored yet);
//! - mid: the log has a `Preadv` line (the restorer is reading pages);
//! - late: CRIU runs its `post-resume` action script (tasks resumed, runc
//!   not yet answered), held there by a script the bundle's
//!   `org.criu.config` names until the kill (see `PostResumeHold`).
//!
//! Every test owns its store and container; a missed moment fails the test
//! with what was seen instead of passing vacuously.

mod common;
mod support;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_continues_from, assert_untouched, dir_entries, expect_code, prereqs, stderr, wait_until, Container, Runtime,
    Store,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use support::{
    ckpt_processes, criu_dump_child, criu_processes_mentioning, criu_restore_child, fd_count, mount_lines_mentioning,
    pages_size, relays_of, staging_of, verify_ok, Mount,
};

/// MiB the workload holds, so that CRIU spends a few hundred ms on pages.
/// (More makes every later hash of the images slow in a debug build.)
const BALLAST_MB: u32 = 64;
const BALLAST_BYTES: u64 = BALLAST_MB as u64 * 1024 * 1024;
const WARMUP: Duration = Duration::from_secs(30);
/// The watchdog's promise: a container ckpt froze is thawed this soon
/// after ckpt dies.
const WATCHDOG: Duration = Duration::from_secs(5);

fn spawn(store: &Store, args: &[&str]) -> Child {
    store
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ckpt")
}

fn sigkill(pid: i32) -> bool {
    kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
}

/// Asserts the store holds no checkpoint and no staging entry of `c`.
fn assert_nothing_left(store: &Store, c: &Container, name: &str, what: &str) {
    assert!(store.ls(None).is_empty(), "{what}: published {:?}", store.ls(None));
    assert!(
        !store.checkpoint_dir(&c.id, name).exists(),
        "{what}: checkpoint dir exists"
    );
    let staging = dir_entries(&store.staging_dir(&c.id));
    assert!(staging.is_empty(), "{what}: staging left behind: {staging:?}");
}

/// Asserts the restored-or-not container is cleanly stopped: unknown to
/// runc (or stopped), not frozen, and its counter no longer moves.
fn assert_cleanly_stopped(c: &Container, what: &str) {
    assert!(
        wait_until(Duration::from_secs(5), || !matches!(
            c.status().as_deref(),
            Some("running" | "paused" | "created")
        )),
        "{what}: container is {:?}, not stopped",
        c.status()
    );
    let v = c.counter();
    thread::sleep(Duration::from_millis(800));
    assert_eq!(c.counter(), v, "{what}: something still runs the counter");
}

// ---------------------------------------------------------------- dump --

#[derive(Clone, Copy, Debug, PartialEq)]
enum DumpPoint {
    Early,
    MidPages,
    Late,
}

/// Runs `ckpt create` (stopping mode: ckpt freezes the container itself)
/// and SIGKILLs its `criu dump` at `point`. Returns ckpt's output, or None
/// when CRIU finished before the kill landed (only possible at `Late`).
fn create_and_kill_criu(store: &Store, c: &Container, name: &str, point: DumpPoint) -> Option<Output> {
    let mut child = spawn(store, &["create", &c.id, name]);
    let mut last_pages = None;
    let mut seen = Vec::new();
    let mut killed = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while killed.is_none() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        if let Some(criu) = criu_dump_child(child.id()) {
            let staging = staging_of(store, &c.id, name);
            let pages = staging.as_deref().and_then(pages_size);
            let late = staging.as_ref().is_some_and(|s| s.join("inventory.img").exists());
            let fire = match point {
                DumpPoint::Early => pages.is_none() && !late,
                DumpPoint::MidPages => matches!((last_pages, pages),
                    (Some(a), Some(b)) if b > a && b < BALLAST_BYTES * 3 / 4),
                DumpPoint::Late => late,
            };
            seen.push(format!("pages={pages:?} late={late}"));
            if fire && support::sigkill_criu_tree(&criu) {
                killed = Some(format!("criu {} at pages={pages:?}", criu.pid));
            }
            last_pages = pages;
        }
        thread::sleep(Duration::from_millis(1));
    }
    if killed.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    if killed.is_some() && point == DumpPoint::Late && out.status.success() {
        return None; // CRIU was already exiting; the caller retries
    }
    assert!(
        killed.is_some(),
        "never reached {point:?} (polls saw: {:?} … {:?}); ckpt: {:?}\n{}",
        seen.first(),
        seen.last(),
        out.status,
        stderr(&out)
    );
    Some(out)
}

fn criu_sigkilled_during_dump(point: DumpPoint) {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let mut attempts = 0;
    let (c, out) = loop {
        attempts += 1;
        let c = Container::runc().ballast_mb(BALLAST_MB).start();
        c.wait_counter_above(3, WARMUP).expect("counter runs");
        match create_and_kill_criu(&store, &c, "victim", point) {
            Some(out) => break (c, out),
            None if attempts < 4 => {
                // The dump completed: start over with a fresh store entry.
                let _ = store.ckpt(["rm", &c.id, "victim"]);
                continue;
            }
            None => panic!("criu exited before every late kill ({attempts} attempts)"),
        }
    };
    let before = c.counter().unwrap_or(0);
    expect_code(&out, 6, &format!("ckpt create with criu SIGKILLed {point:?}"));
    let err = stderr(&out);
    assert!(err.contains("signal 9"), "stderr does not say criu was killed: {err}");
    assert!(
        err.contains("keeps running"),
        "stderr does not say the container runs: {err}"
    );

    assert_untouched(&c, &format!("after criu was killed {point:?}"));
    assert!(c.counter().unwrap_or(0) >= before, "counter went back");
    assert_nothing_left(&store, &c, "victim", "after the killed dump");

    // Nothing blocks the next attempt (lock, staging, half-made checkpoint).
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "victim"]),
        0,
        "create after the kill",
    );
    verify_ok(&store, &c.id, "victim");
    assert_untouched(&c, "after the second create");
}

#[test]
fn criu_sigkilled_early_in_dump_leaves_container_running() {
    criu_sigkilled_during_dump(DumpPoint::Early);
}

#[test]
fn criu_sigkilled_mid_page_dump_leaves_container_running() {
    criu_sigkilled_during_dump(DumpPoint::MidPages);
}

#[test]
fn criu_sigkilled_just_before_dump_exit_leaves_container_running() {
    criu_sigkilled_during_dump(DumpPoint::Late);
}

// ------------------------------------------------------------- restore --

#[derive(Clone, Copy, Debug, PartialEq)]
enum RestorePoint {
    Early,
    MidPages,
    Late,
}

/// The text of the restore log of a `ckpt start` in progress, if any.
fn restore_log(store: &Store, id: &str) -> Option<String> {
    dir_entries(&store.staging_dir(id))
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("restore."))
        })
        .find_map(|d| fs::read_to_string(d.join("restore.log")).ok())
}

/// What a kill during a restore hits.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Victim {
    /// ckpt's whole process group (ckpt, runc, CRIU; the relay has its own
    /// session), as a terminal or `kill -9 -PGID` does.
    CkptGroup,
    /// Only the `runc restore` child of ckpt.
    Runc,
    /// Only the `criu swrk` child of runc.
    Criu,
}

/// Runs `ckpt start --checkpoint saved <c>` in a process group of its own
/// and SIGKILLs `victim` at `point` of the restore. The late point is CRIU
/// held at post-resume by `hold` (then released, so that CRIU carries on as
/// it would have); without a hold it is the log's "Restore finished
/// successfully", which lasts only milliseconds: when the restore wins that
/// race it simply succeeded, so the container is stopped and the start
/// tried again (up to 5 times). Returns ckpt's output and what was killed;
/// panics if the point was never reached.
fn start_and_kill(
    store: &Store,
    c: &Container,
    point: RestorePoint,
    victim: Victim,
    hold: Option<&PostResumeHold>,
) -> (Output, String) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut child = store
            .command(["start", "--checkpoint", "saved", &c.id])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ckpt");
        let ckpt_pid = child.id() as i32;
        let mut killed = None;
        let mut last_lines = 0;
        let deadline = Instant::now() + Duration::from_secs(120);
        while killed.is_none() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            if let (Some(criu), Some(log)) = (criu_restore_child(child.id()), restore_log(store, &c.id)) {
                last_lines = log.lines().count();
                let fire = match point {
                    RestorePoint::Early => !log.contains("pie:"),
                    RestorePoint::MidPages => log.contains("Preadv") && !log.contains("Restore finished"),
                    RestorePoint::Late => match hold {
                        Some(h) => h.held().is_some(),
                        None => log.contains("Restore finished successfully"),
                    },
                };
                if fire {
                    killed = match victim {
                        Victim::CkptGroup => kill(Pid::from_raw(-ckpt_pid), Signal::SIGKILL)
                            .is_ok()
                            .then(|| format!("ckpt's process group {ckpt_pid}")),
                        Victim::Runc => support::children(ckpt_pid, "runc")
                            .first()
                            .filter(|r| sigkill(r.pid))
                            .map(|r| format!("runc {}", r.pid)),
                        // Later, the forked `criu` processes are the restored tasks.
                        Victim::Criu if point == RestorePoint::Early => {
                            support::sigkill_criu_tree(&criu).then(|| format!("criu {} and its helpers", criu.pid))
                        }
                        Victim::Criu => sigkill(criu.pid).then(|| format!("criu {}", criu.pid)),
                    };
                    if let (Some(h), Some(_)) = (hold, &killed) {
                        h.release();
                    }
                }
            }
            thread::sleep(Duration::from_millis(1));
        }
        if killed.is_none() {
            let _ = child.kill();
        }
        let out = child.wait_with_output().unwrap();
        if killed.is_none() && out.status.success() && attempt < 5 {
            Runtime::Runc.destroy(&c.id);
            continue;
        }
        let killed = killed.unwrap_or_else(|| {
            panic!(
                "never reached {point:?} of the restore to kill {victim:?} in {attempt} attempts \
                 (last log had {last_lines} lines); ckpt: {:?}\n{}",
                out.status,
                stderr(&out)
            )
        });
        return (out, killed);
    }
}

fn criu_sigkilled_during_restore(point: RestorePoint) {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    // Declared after the store: dropped first, before the store's removal.
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let (c, hold) = restore_victim(point);
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "saved"]), 0, "create");
    let saved = c.counter().expect("counter after the dump");

    let (out, _killed) = start_and_kill(&store, &c, point, Victim::Criu, hold.as_ref());

    if out.status.success() {
        // Only possible late: CRIU had handed the tree over. Then it must
        // be whole and running.
        assert_eq!(
            point,
            RestorePoint::Late,
            "start succeeded although criu was killed {point:?}"
        );
        assert_continues_from(&c, saved);
    } else {
        let err = stderr(&out);
        assert!(err.contains("nothing was started"), "stderr: {err}");
        let counters: Vec<_> = support::processes()
            .into_iter()
            .filter(|p| p.comm == "counter")
            .map(|p| (p.pid, p.ppid))
            .collect();
        assert_cleanly_stopped(&c, &format!(
            "after criu was killed {point:?} in a restore (runc status {:?}, counter processes (pid, ppid) {counters:?}, ckpt said: {err})",
            c.status()
        ));
        assert!(!Runtime::Runc.list_shows_running(&c.id));
        let left = support::cgroup_pids(&c.id);
        assert!(
            left.is_empty(),
            "ckpt said nothing was started, but processes {left:?} remain in the container's cgroup"
        );
        let mounts = support::mounts_under(store.path());
        assert!(mounts.is_empty(), "mounts left on the host under the store: {mounts:?}");
        let staging = dir_entries(&store.staging_dir(&c.id));
        assert!(
            staging.is_empty(),
            "restore work dir left behind: {:?}",
            support::tree_snapshot(&store.staging_dir(&c.id))
        );
        assert!(
            wait_until(Duration::from_secs(5), || relays_of(store.path()).is_empty()),
            "output relays left after a failed start: {:?}",
            relays_of(store.path())
        );
        Runtime::Runc.destroy(&c.id);
    }
    verify_ok(&store, &c.id, "saved");

    // The checkpoint is intact and restores.
    Runtime::Runc.destroy(&c.id);
    expect_code(
        &store.ckpt(["start", "--checkpoint", "saved", &c.id]),
        0,
        "start after the kill",
    );
    assert_continues_from(&c, saved);
}

/// Regression: when CRIU dies after it has set up its cgroup yard, the
/// yard (a tmpfs plus one cgroup v1 mount per controller, 11 mounts here)
/// stays mounted on the host under the restore work dir
/// `<store>/<id>/.ckpt-staging/restore.*/.criu.cgyard.*`; the work dir's
/// removal then fails silently and the mounts pile up with every failed
/// start. ckpt must unmount what CRIU left under its work dir.
#[test]
fn failed_restore_leaks_criu_cgyard_mounts_on_host() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let c = Container::runc().start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    expect_code(&store.ckpt(["create", &c.id, "saved"]), 0, "create");
    let mut child = spawn(&store, &["start", "--checkpoint", "saved", &c.id]);
    // The yard exists once the log shows the restorer (`pie:`).
    let hit = support::poll(Duration::from_secs(60), Duration::from_millis(1), || {
        if child.try_wait().unwrap().is_some() {
            return Some(false);
        }
        let criu = criu_restore_child(child.id())?;
        let log = restore_log(&store, &c.id)?;
        (log.contains("pie:") && !log.contains("Restore finished")).then(|| sigkill(criu.pid))
    });
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        hit,
        Some(true),
        "never caught the restore in progress: {}",
        stderr(&out)
    );
    assert!(!out.status.success(), "start succeeded although criu was killed");
    let mounts = support::mounts_under(store.path());
    assert!(
        mounts.is_empty(),
        "{} mounts left on the host: {mounts:?}",
        mounts.len()
    );
    let staging = dir_entries(&store.staging_dir(&c.id));
    assert!(staging.is_empty(), "restore work dir left behind: {staging:?}");
}

/// A CRIU action script that holds CRIU at `post-resume` (the restored
/// tasks run, CRIU has not yet answered runc) for up to a minute, and
/// marks that moment by writing the holding `sleep`'s pid to `<script>.held`.
/// It holds once: CRIU 4.1.1 parses an RPC config file twice and so runs
/// the script twice per action, and a second hold would keep CRIU a minute.
const HOLD_AT_POST_RESUME: &str = "#!/bin/sh
[ \"$CRTOOLS_SCRIPT_ACTION\" = post-resume ] || exit 0
[ -e \"$0.held\" ] && exit 0
echo $$ > \"$0.held.tmp\" && mv \"$0.held.tmp\" \"$0.held\"
exec sleep 60
";

/// The late moment of a restore made to last: [`HOLD_AT_POST_RESUME`] in a
/// CRIU config file that a container's bundle names (`org.criu.config`), so
/// runc's CRIU waits there until [`PostResumeHold::release`]. On its own the
/// moment lasts milliseconds, and racing the log for it missed three times
/// in a row on a loaded CI machine.
struct PostResumeHold {
    dir: tempfile::TempDir,
}

impl PostResumeHold {
    fn new() -> PostResumeHold {
        let dir = tempfile::Builder::new().prefix("ckpt-hold-").tempdir().unwrap();
        let script = dir.path().join("hold.sh");
        fs::write(&script, HOLD_AT_POST_RESUME).unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            dir.path().join("criu.conf"),
            format!("action-script {}\n", script.display()),
        )
        .unwrap();
        PostResumeHold { dir }
    }

    /// The CRIU config file for [`common::Builder::criu_config`].
    fn conf(&self) -> std::path::PathBuf {
        self.dir.path().join("criu.conf")
    }

    /// The holding `sleep`'s pid once CRIU is held at post-resume.
    fn held(&self) -> Option<i32> {
        fs::read_to_string(self.dir.path().join("hold.sh.held"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Lets CRIU go on (it logs the script's failure and carries on).
    fn release(&self) {
        if let Some(pid) = self.held() {
            sigkill(pid);
        }
    }
}

impl Drop for PostResumeHold {
    fn drop(&mut self) {
        self.release();
    }
}

/// A runc container with ballast for the restore-kill tests; for the late
/// point its CRIU is held at post-resume (see [`PostResumeHold`]).
fn restore_victim(point: RestorePoint) -> (Container, Option<PostResumeHold>) {
    let hold = (point == RestorePoint::Late).then(PostResumeHold::new);
    let mut b = Container::runc().ballast_mb(BALLAST_MB);
    if let Some(h) = &hold {
        b = b.criu_config(&h.conf());
    }
    (b.start(), hold)
}

/// Regression: CRIU killed after the restored tasks resumed makes
/// `runc restore` fail ("read unixpacket: EOF"); ckpt then reports
/// "nothing was started" and runs `runc delete --force`, which is a no-op
/// because runc already dropped its state — and the restored tree keeps
/// running (counter advancing, ppid 1) in the container's cgroup,
/// invisible to runc and ckpt. ckpt must kill what is in the cgroup.
///
/// The moment lasts milliseconds on its own (racing the log for "Restore
/// finished successfully" missed it three times in a row on a loaded CI
/// machine), so an action script given to runc's CRIU through the
/// bundle's `org.criu.config` holds CRIU there until the test kills it.
#[test]
fn failed_restore_leaves_restored_processes_running_outside_runc() {
    if !prereqs() {
        return;
    }
    let hold = PostResumeHold::new();

    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let c = Container::runc().criu_config(&hold.conf()).start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    expect_code(&store.ckpt(["create", &c.id, "saved"]), 0, "create");
    let saved = c.counter().expect("counter after the dump");

    let mut child = spawn(&store, &["start", "--checkpoint", "saved", &c.id]);
    let hit = support::poll(Duration::from_secs(60), Duration::from_millis(5), || {
        if child.try_wait().unwrap().is_some() {
            return Some(None);
        }
        hold.held()?;
        let criu = criu_restore_child(child.id())?;
        Some(sigkill(criu.pid).then_some(()))
    });
    let out = child.wait_with_output().unwrap();
    hit.flatten().unwrap_or_else(|| {
        panic!(
            "CRIU never reached post-resume under the hold script (is org.criu.config honoured?); ckpt {:?}: {}",
            out.status,
            stderr(&out)
        )
    });
    hold.release();
    assert!(!out.status.success(), "start succeeded although criu was killed");
    assert!(stderr(&out).contains("nothing was started"), "{}", stderr(&out));
    // The tree had resumed: had ckpt left it, it would count on from `saved`.
    thread::sleep(Duration::from_millis(500));
    let left = support::cgroup_pids(&c.id);
    assert!(
        left.is_empty(),
        "ckpt said nothing was started, yet {left:?} run in the container's cgroup (counter {:?} after {saved}, runc status {:?})",
        c.counter(),
        c.status()
    );
}

#[test]
fn criu_sigkilled_early_in_restore_leaves_container_stopped() {
    criu_sigkilled_during_restore(RestorePoint::Early);
}

#[test]
fn criu_sigkilled_mid_page_restore_leaves_container_stopped() {
    criu_sigkilled_during_restore(RestorePoint::MidPages);
}

#[test]
fn criu_sigkilled_just_before_restore_exit_leaves_container_stopped_or_whole() {
    criu_sigkilled_during_restore(RestorePoint::Late);
}

// ------------------------------------- a killed restore keeps the rootfs --

/// Files of the counter's rootfs that the workload itself rewrites.
const VOLATILE: &[&str] = &["tmp/count"];

/// Asserts that no mount is left under the store or the container's runc
/// state dir, and no runc or criu of the restore still runs.
fn assert_no_mounts_or_orphans(store: &Store, c: &Container, what: &str) {
    let state_dir = Runtime::Runc.state_root().join(&c.id);
    let mounts: Vec<String> = support::mounts_under(store.path())
        .into_iter()
        .chain(support::mounts_under(&state_dir))
        .collect();
    assert!(mounts.is_empty(), "{what}: mounts left on the host: {mounts:?}");
    let store_s = store.path().display().to_string();
    assert!(
        wait_until(Duration::from_secs(5), || criu_processes_mentioning(&store_s)
            .is_empty()
            && support::runc_processes_mentioning(&c.id).is_empty()),
        "{what}: orphans left: criu {:?}, runc {:?}",
        criu_processes_mentioning(&store_s),
        support::runc_processes_mentioning(&c.id)
    );
}

/// Regression (issue 7, defect 1): a `runc restore` killed part-way leaves
/// its bind mount of the rootfs at `/run/runc/<id>/criu-root`, and ckpt's
/// `runc delete --force` (in the same start's failure cleanup, or in the
/// next start's "leftover state" cleanup) deleted the rootfs through it;
/// every later start then failed with "container with given ID already
/// exists". Whatever is killed, whenever: the rootfs stays byte-for-byte
/// what it was, and the next start restores the checkpoint.
fn killed_restore_keeps_rootfs(victim: Victim, point: RestorePoint) {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let (c, hold) = restore_victim(point);
    let _orphans = support::KillCgroup(c.id.clone());
    // Dropped before the container, whose `runc delete -f` must not meet a
    // criu-root mount the code under test failed to remove.
    let state_mounts = support::UnmountUnder(Runtime::Runc.state_root().join(&c.id));
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "saved"]), 0, "create");
    let saved = c.counter().expect("counter after the dump");
    let before = support::manifest(&c.rootfs, VOLATILE);
    assert!(
        before.len() > 20,
        "test bug: rootfs manifest has {} entries",
        before.len()
    );

    let (out, killed) = start_and_kill(&store, &c, point, victim, hold.as_ref());
    let what = format!("after SIGKILL of {killed} ({victim:?}, {point:?} in the restore)");
    support::assert_manifest(&c.rootfs, &before, VOLATILE, &what);
    if victim != Victim::CkptGroup && !out.status.success() {
        // ckpt survived and cleaned up at once.
        assert!(stderr(&out).contains("nothing was started"), "{what}: {}", stderr(&out));
        assert_cleanly_stopped(&c, &what);
        assert_no_mounts_or_orphans(&store, &c, &what);
    }
    if c.is_running() {
        // The restore got through before the kill mattered (late only):
        // then the container must be whole. Stop it to restore once more.
        assert_eq!(point, RestorePoint::Late, "{what}: container runs");
        assert_continues_from(&c, saved);
        // A start of a running container is refused and changes nothing;
        // it warns of a criu-root that runc, killed, left mounted.
        let state_dir = Runtime::Runc.state_root().join(&c.id);
        let left = support::mounts_under(&state_dir);
        let refused = store.ckpt(["start", "--checkpoint", "saved", &c.id]);
        expect_code(&refused, 3, &format!("start of the running container, {what}"));
        assert!(
            left.is_empty() || stderr(&refused).contains(&left[0]),
            "{what}: {left:?} stay mounted and the refusal does not warn of it: {}",
            stderr(&refused)
        );
        assert_eq!(
            support::mounts_under(&state_dir),
            left,
            "{what}: a refused start changed the mounts"
        );
        drop(state_mounts);
        Runtime::Runc.destroy(&c.id);
        support::assert_manifest(&c.rootfs, &before, VOLATILE, &format!("{what}, stopped by hand"));
    }

    let next = store.ckpt(["start", "--checkpoint", "saved", &c.id]);
    expect_code(&next, 0, &format!("the next start, {what}"));
    assert_continues_from(&c, saved);
    support::assert_manifest(&c.rootfs, &before, VOLATILE, &format!("{what}, then a start"));
    assert_no_mounts_or_orphans(&store, &c, &format!("{what}, then a start"));
    let staging = dir_entries(&store.staging_dir(&c.id));
    assert!(
        staging.is_empty(),
        "{what}: staging left after the next start: {staging:?}"
    );
    verify_ok(&store, &c.id, "saved");
}

#[test]
fn restore_killed_ckpt_group_early_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::CkptGroup, RestorePoint::Early);
}

#[test]
fn restore_killed_ckpt_group_mid_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::CkptGroup, RestorePoint::MidPages);
}

#[test]
fn restore_killed_ckpt_group_late_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::CkptGroup, RestorePoint::Late);
}

#[test]
fn restore_killed_runc_early_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Runc, RestorePoint::Early);
}

#[test]
fn restore_killed_runc_mid_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Runc, RestorePoint::MidPages);
}

#[test]
fn restore_killed_runc_late_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Runc, RestorePoint::Late);
}

#[test]
fn restore_killed_criu_early_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Criu, RestorePoint::Early);
}

#[test]
fn restore_killed_criu_mid_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Criu, RestorePoint::MidPages);
}

#[test]
fn restore_killed_criu_late_keeps_rootfs_and_next_start_restores() {
    killed_restore_keeps_rootfs(Victim::Criu, RestorePoint::Late);
}

/// ckpt's own deletes never go through a mount: a bind mount (of the same
/// filesystem, which a device-number check would miss) below a directory
/// stops `remove_tree` before it touches what the mount shows, and
/// `remove_leftover_tree` unmounts it first.
#[test]
fn remove_tree_stops_at_a_bind_mount_instead_of_deleting_through_it() {
    if !prereqs() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let _unmount = support::UnmountUnder(t.path().to_path_buf());
    let precious = t.path().join("precious");
    fs::create_dir(&precious).unwrap();
    fs::write(precious.join("data"), "keep me").unwrap();
    let victim = t.path().join("victim");
    fs::create_dir_all(victim.join("a/criu-root")).unwrap();
    fs::write(victim.join("a/file"), "x").unwrap();
    let st = std::process::Command::new("mount")
        .args(["--bind"])
        .arg(&precious)
        .arg(victim.join("a/criu-root"))
        .status()
        .unwrap();
    assert!(st.success(), "mount --bind");

    let e = ckpt::mounts::remove_tree(&victim).unwrap_err();
    assert!(e.to_string().contains("criu-root"), "{e}");
    assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep me");
    let info = ckpt::procfs::ProcRoot::host().own_mountinfo();
    ckpt::mounts::remove_leftover_tree(&info, &victim).unwrap();
    assert!(!victim.exists());
    assert_eq!(fs::read_to_string(precious.join("data")).unwrap(), "keep me");
    assert!(support::mounts_under(t.path()).is_empty());
}

// ------------------------------------------------ start and its signals --

/// Regression (issue 7, defect 6): `ckpt start` died of SIGINT, SIGTERM
/// and SIGHUP with no message and no cleanup, runc finishing the restore
/// as an orphan. Now the signal is remembered, runc finishes, the restore
/// is undone, ckpt says so and exits 128+N; the container is cleanly
/// stopped and the next start restores it.
fn start_interrupted_mid_restore(sig: Signal, to_group: bool) {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    let _orphans = support::KillCgroup(c.id.clone());
    let _state_mounts = support::UnmountUnder(Runtime::Runc.state_root().join(&c.id));
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "saved"]), 0, "create");
    let saved = c.counter().expect("counter after the dump");
    let before = support::manifest(&c.rootfs, VOLATILE);

    let what = format!(
        "{sig:?} to {} mid-restore",
        if to_group { "ckpt's group" } else { "ckpt" }
    );
    // On a busy host the window can be missed; the restore then simply
    // succeeded: stop the container and try again.
    let mut attempt = 0;
    let out = loop {
        attempt += 1;
        let mut child = store
            .command(["start", "--checkpoint", "saved", &c.id])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ckpt");
        let ckpt_pid = child.id() as i32;
        let hit = support::poll(Duration::from_secs(120), Duration::from_millis(1), || {
            if child.try_wait().unwrap().is_some() {
                return Some(false);
            }
            criu_restore_child(child.id())?;
            let log = restore_log(&store, &c.id)?;
            (log.contains("Preadv") && !log.contains("Restore finished")).then(|| {
                let to = if to_group { -ckpt_pid } else { ckpt_pid };
                kill(Pid::from_raw(to), sig).is_ok()
            })
        });
        let out = child.wait_with_output().unwrap();
        if hit == Some(true) {
            break out;
        }
        assert!(
            out.status.success() && attempt < 5,
            "{what}: never caught the restore mid-way ({attempt} attempts): {}",
            stderr(&out)
        );
        Runtime::Runc.destroy(&c.id);
    };
    expect_code(&out, 128 + sig as i32, &what);
    let err = stderr(&out);
    assert!(
        err.contains(&format!("interrupted by signal {}", sig as i32)) && err.contains("undone"),
        "{what}: stderr does not say it was interrupted and undone: {err}"
    );
    assert_eq!(err.matches("ckpt: error:").count(), 1, "{what}: {err}");
    assert_cleanly_stopped(&c, &what);
    assert!(!Runtime::Runc.list_shows_running(&c.id));
    let left = support::cgroup_pids(&c.id);
    assert!(
        left.is_empty(),
        "{what}: processes {left:?} remain in the container's cgroup"
    );
    assert_no_mounts_or_orphans(&store, &c, &what);
    let staging = dir_entries(&store.staging_dir(&c.id));
    assert!(staging.is_empty(), "{what}: restore work dir left behind: {staging:?}");
    assert!(
        wait_until(Duration::from_secs(5), || relays_of(store.path()).is_empty()),
        "{what}: output relays left: {:?}",
        relays_of(store.path())
    );
    support::assert_manifest(&c.rootfs, &before, VOLATILE, &what);

    expect_code(
        &store.ckpt(["start", "--checkpoint", "saved", &c.id]),
        0,
        &format!("start after {what}"),
    );
    assert_continues_from(&c, saved);
}

#[test]
fn sigint_to_start_group_mid_restore_exits_130_and_undoes_the_restore() {
    start_interrupted_mid_restore(Signal::SIGINT, true);
}

#[test]
fn sigterm_to_start_mid_restore_exits_143_and_undoes_the_restore() {
    start_interrupted_mid_restore(Signal::SIGTERM, false);
}

#[test]
fn sighup_to_start_group_mid_restore_exits_129_and_undoes_the_restore() {
    start_interrupted_mid_restore(Signal::SIGHUP, true);
}

// -------------------------------------------------------------- pauses --

/// The dump log of the `ckpt create` of `name` in progress, if any.
fn dump_log(store: &Store, id: &str, name: &str) -> Option<String> {
    fs::read_to_string(staging_of(store, id, name)?.join("dump.log")).ok()
}

/// Spawns `ckpt create -R C name` and `runc pause`s the container once
/// CRIU has seized it and thawed the cgroup again (its log shows `Seized
/// task`), as an operator's pause mid-dump would. Returns ckpt.
fn create_and_pause_mid_dump(store: &Store, c: &Container, name: &str) -> Child {
    let mut child = spawn(store, &["create", "--leave-running", &c.id, name]);
    let hit = support::poll(Duration::from_secs(60), Duration::from_millis(1), || {
        if child.try_wait().unwrap().is_some() {
            return Some(false);
        }
        let log = dump_log(store, &c.id, name)?;
        log.contains("Seized task").then_some(true)
    });
    assert_eq!(hit, Some(true), "never saw CRIU seize the container");
    let out = std::process::Command::new("runc")
        .args(["pause", &c.id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc pause: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    child
}

/// Asserts the container is paused (frozen, counter still), then resumes
/// it with `runc resume` and asserts it counts on.
fn assert_paused_then_resumes(c: &Container, what: &str) {
    assert_eq!(
        c.freezer_state().as_deref(),
        Some("FROZEN"),
        "{what}: the user's pause was lost"
    );
    let v = c.counter();
    thread::sleep(Duration::from_millis(800));
    assert_eq!(c.counter(), v, "{what}: the counter moved while paused");
    let out = std::process::Command::new("runc")
        .args(["resume", &c.id])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_untouched(c, &format!("{what}, after runc resume"));
}

/// Regression (issue 7, defect 4): a `runc pause` while CRIU dumps (after
/// it has seized the tasks and thawed the cgroup) freezes CRIU's parasite,
/// and CRIU waited for it forever (ckpt hung; 10.5 min seen); interrupting
/// ckpt then thawed the container, losing the user's pause. Now ckpt lends
/// the paused container to CRIU (the tasks stay held by CRIU), CRIU
/// finishes and re-freezes it, and ckpt leaves it paused: within a bound,
/// with a checkpoint that restores.
#[test]
fn pause_during_dump_hangs_ckpt_and_loses_the_pause() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    let mut child = create_and_pause_mid_dump(&store, &c, "p");
    let t0 = Instant::now();
    let bound = Duration::from_secs(60);
    let done = support::poll(bound, Duration::from_millis(50), || child.try_wait().unwrap());
    if done.is_none() {
        let _ = child.kill();
        let _ = std::process::Command::new("runc").args(["resume", &c.id]).status();
        panic!("ckpt create still runs {:?} after the pause", t0.elapsed());
    }
    let out = child.wait_with_output().unwrap();
    expect_code(&out, 0, "create -R with a pause mid-dump");
    let err = stderr(&out);
    assert!(
        err.contains("was paused while CRIU dumped it") && err.contains("left paused"),
        "ckpt does not say what happened: {err}"
    );
    assert_paused_then_resumes(&c, "after the dump");
    let staging = dir_entries(&store.staging_dir(&c.id));
    assert!(staging.is_empty(), "staging left: {staging:?}");
    verify_ok(&store, &c.id, "p");
    // The checkpoint is whole: it restores and the counter continues.
    Runtime::Runc.destroy(&c.id);
    expect_code(&store.ckpt(["start", "--checkpoint", "p", &c.id]), 0, "start from p");
    let first = c
        .wait_counter_above(0, common::RESTORE_TICK)
        .expect("restored counter ticks");
    assert!(
        c.wait_counter_above(first, common::RESTORE_TICK).is_some(),
        "restored counter stuck"
    );
}

/// Regression (issue 7, defect 4, watchdog): ckpt SIGKILLed while CRIU
/// waits on a container the user paused mid-dump: the watchdog killed CRIU
/// and thawed the container, so the user's pause was lost (and a task
/// frozen in CRIU's injected code dies once thawed without CRIU). Now the
/// watchdog thaws only to let CRIU get its tasks back, stops CRIU, and
/// pauses the container again.
#[test]
fn ckpt_sigkilled_while_paused_mid_dump_watchdog_thaws_the_users_pause() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    let mut child = create_and_pause_mid_dump(&store, &c, "p");
    // Before ckpt would lend the container to CRIU (after 1 s).
    thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none(), "ckpt ended before the kill");
    assert!(sigkill(child.id() as i32));
    let _ = child.wait();
    let store_s = store.path().display().to_string();
    assert!(
        wait_until(WATCHDOG + Duration::from_secs(2), || criu_processes_mentioning(
            &store_s
        )
        .is_empty()),
        "criu still running: {:?}",
        criu_processes_mentioning(&store_s)
    );
    assert!(
        wait_until(WATCHDOG, || c.freezer_state().as_deref() == Some("FROZEN")),
        "the watchdog did not leave the container paused: {:?}",
        c.freezer_state()
    );
    thread::sleep(Duration::from_millis(300));
    assert_paused_then_resumes(&c, "after ckpt was killed mid-dump");
    assert!(store.ls(None).is_empty(), "a checkpoint was published");
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "next"]),
        0,
        "next create",
    );
    assert!(dir_entries(&store.staging_dir(&c.id)).is_empty());
}

/// Regression (issue 7, defect 4, interrupt): SIGTERM to ckpt while the
/// user's pause blocks CRIU: ckpt ended CRIU and its guard thawed the
/// container, so the user's pause was lost. Now ckpt exits 143 and leaves
/// it paused, and it counts on after `runc resume`.
#[test]
fn sigterm_while_paused_mid_dump_thaws_the_users_pause() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    let child = create_and_pause_mid_dump(&store, &c, "p");
    thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    expect_code(&out, 128 + 15, "ckpt create interrupted while paused mid-dump");
    assert!(stderr(&out).contains("interrupted"), "stderr: {}", stderr(&out));
    assert_paused_then_resumes(&c, "after SIGTERM");
    assert_nothing_left(&store, &c, "p", "after SIGTERM");
}

// -------------------------------------------------------------- zombies --

/// Zombies among the grandchildren of `init`: the workload of
/// `Container::zombie_child` has one (a `sleep` that never reaps).
/// (`support::processes` leaves zombies out, so this reads `stat` itself.)
fn zombies_below(init: i32) -> Vec<i32> {
    let children: Vec<i32> = support::processes()
        .iter()
        .filter(|p| p.ppid == init)
        .map(|p| p.pid)
        .collect();
    let stat_of = |pid: i32| -> Option<(String, i32)> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut rest = stat[stat.rfind(')')? + 1..].split_whitespace();
        Some((rest.next()?.to_owned(), rest.next()?.parse().ok()?))
    };
    dir_entries(std::path::Path::new("/proc"))
        .iter()
        .filter_map(|p| p.file_name()?.to_str()?.parse::<i32>().ok())
        .filter(|&pid| matches!(stat_of(pid), Some((state, ppid)) if state == "Z" && children.contains(&ppid)))
        .collect()
}

/// Regression (issue 7, defect 3): a zombie in the container (a child its
/// parent has not reaped, which is normal) made `inspect` and `create` fail
/// with `cannot read /proc/<pid>/mountinfo: Invalid argument` (exit 1),
/// although `runc checkpoint` dumps the same container. It must be listed
/// as a zombie, dumped, and restored with the counter continuing.
#[test]
fn zombie_in_container_blocks_inspect_and_create() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let _unmount = support::UnmountUnder(store.path().to_path_buf());
    let c = Container::runc().zombie_child().start();
    let _orphans = support::KillCgroup(c.id.clone());
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    let init = c.pid().expect("init pid");
    assert!(
        wait_until(Duration::from_secs(5), || !zombies_below(init).is_empty()),
        "test bug: the workload has no zombie"
    );

    let out = store.ckpt(["inspect", &c.id]);
    expect_code(&out, 0, "inspect of a container with a zombie");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("zombie"), "inspect does not show the zombie:\n{text}");
    assert!(text.contains("verdict: ok"), "{text}");

    expect_code(&store.ckpt(["create", &c.id, "z"]), 0, "create with a zombie");
    let saved = c.counter().expect("counter after the dump");
    verify_ok(&store, &c.id, "z");
    expect_code(&store.ckpt(["start", "--checkpoint", "z", &c.id]), 0, "start");
    // Not asserted: that the zombie and its parent come back. CRIU 4.1.1
    // restores the zombie ("Restoring zombie with 0 code") but its parent,
    // the `sleep`, is gone after the restore, with ckpt as with `runc
    // checkpoint` + `runc restore` of the same container.
    assert_continues_from(&c, saved);
}

// ----------------------------------------------------- ckpt itself dies --

/// Waits for the watchdog: THAWED and counting within [`WATCHDOG`] of `t0`.
fn assert_thawed_by_watchdog(c: &Container, t0: Instant, what: &str) {
    let thawed = wait_until(WATCHDOG, || c.freezer_state().as_deref() == Some("THAWED"));
    assert!(
        thawed,
        "{what}: still {:?} {:?} after ckpt was SIGKILLed",
        c.freezer_state(),
        t0.elapsed()
    );
    let v = c.counter().unwrap_or(0);
    assert!(
        c.wait_counter_above(v, WATCHDOG.saturating_sub(t0.elapsed()) + Duration::from_secs(2))
            .is_some(),
        "{what}: thawed but the counter is stuck at {v}"
    );
}

#[test]
fn ckpt_sigkilled_while_publishing_frozen_container_is_thawed_within_5s() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let mut child = spawn(&store, &["create", &c.id, "victim"]);
    let ckpt_pid = child.id();
    // After criu's dump, ckpt hashes and fsyncs the images with the
    // container still frozen (so that it can kill it once published).
    let mut saw_criu = false;
    let frozen = support::poll(Duration::from_secs(120), Duration::from_millis(2), || {
        if child.try_wait().unwrap().is_some() {
            return Some(false);
        }
        if criu_dump_child(ckpt_pid).is_some() {
            saw_criu = true;
            return None;
        }
        (saw_criu && c.freezer_state().as_deref() == Some("FROZEN")).then_some(true)
    });
    assert_eq!(frozen, Some(true), "never saw the container frozen after the dump");
    assert!(sigkill(ckpt_pid as i32));
    let t0 = Instant::now();
    let _ = child.wait();

    assert_thawed_by_watchdog(&c, t0, "ckpt killed while publishing");
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(
        store.ls(None).is_empty(),
        "a checkpoint was published: {:?}",
        store.ls(None)
    );

    // The next command cleans the dead ckpt's staging dir and works.
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "next"]),
        0,
        "next create",
    );
    let left: Vec<_> = dir_entries(&store.staging_dir(&c.id))
        .into_iter()
        .filter(|p| p.display().to_string().contains(&format!(".{ckpt_pid}.")))
        .collect();
    assert!(left.is_empty(), "the dead ckpt's staging is still there: {left:?}");
    verify_ok(&store, &c.id, "next");
    assert!(store.find(&c.id, "victim").is_none());
    assert_untouched(&c, "after the next create");
}

#[test]
fn ckpt_sigkilled_mid_dump_container_thawed_within_5s_and_stays_thawed() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let mut child = spawn(&store, &["create", &c.id, "victim"]);
    let ckpt_pid = child.id();
    assert!(
        wait_mid_page_dump(&mut child, &store, &c.id, "victim"),
        "never caught the page dump in progress"
    );
    assert!(sigkill(ckpt_pid as i32));
    let t0 = Instant::now();
    let _ = child.wait();

    assert_thawed_by_watchdog(&c, t0, "ckpt killed mid-dump");
    // The orphaned criu (if the watchdog let it live) must not freeze the
    // container again when it finishes.
    let store_s = store.path().display().to_string();
    assert!(
        wait_until(Duration::from_secs(60), || criu_processes_mentioning(&store_s)
            .is_empty()),
        "criu still running: {:?}",
        criu_processes_mentioning(&store_s)
    );
    thread::sleep(Duration::from_millis(500));
    assert_untouched(&c, "after the orphaned criu ended");
    assert!(
        store.ls(None).is_empty(),
        "a checkpoint was published: {:?}",
        store.ls(None)
    );
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "next"]),
        0,
        "next create",
    );
    let staging: Vec<_> = dir_entries(&store.staging_dir(&c.id));
    assert!(staging.is_empty(), "staging left after the next create: {staging:?}");
}

#[test]
fn sigterm_mid_dump_exits_143_and_leaves_container_running() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let mut child = spawn(&store, &["create", &c.id, "victim"]);
    let ckpt_pid = child.id();
    assert!(
        wait_mid_page_dump(&mut child, &store, &c.id, "victim"),
        "never caught the page dump in progress"
    );
    kill(Pid::from_raw(ckpt_pid as i32), Signal::SIGTERM).unwrap();
    let out = child.wait_with_output().unwrap();
    expect_code(&out, 128 + 15, "ckpt create interrupted by SIGTERM mid-dump");
    assert!(stderr(&out).contains("interrupted"), "stderr: {}", stderr(&out));
    assert_untouched(&c, "after SIGTERM");
    assert_nothing_left(&store, &c, "victim", "after SIGTERM");
}

// ------------------------------------------------------------ full disk --

#[test]
fn store_full_mid_dump_fails_with_no_space_naming_store() {
    if !prereqs() {
        return;
    }
    // 24 MiB: more than the preflight's estimate (the counter's few hundred
    // KiB of anonymous memory + 16 MiB headroom), less than the 40 MiB of
    // incompressible /dev/shm data CRIU archives from the container's tmpfs.
    let tiny = Mount::tmpfs("24m");
    let store_dir = tiny.path().join("store");
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let shm = format!("/proc/{}/root/dev/shm/blob", c.pid().unwrap());
    let mut random = vec![0u8; 40 << 20];
    fs::File::open("/dev/urandom").unwrap().read_exact_into(&mut random);
    fs::File::create(&shm)
        .and_then(|mut f| f.write_all(&random))
        .expect("fill the container's /dev/shm");
    drop(random);

    let out = support::ckpt_in(&store_dir, &["create", &c.id, "full"]);
    assert!(!out.status.success(), "create into a full store succeeded");
    let code = out.status.code();
    assert!(
        matches!(code, Some(1 | 6)),
        "exit {code:?}, expected 1 or 6\n{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.to_lowercase().contains("no space"),
        "stderr does not say no space: {err}"
    );
    assert!(
        err.contains(&store_dir.display().to_string()),
        "stderr does not name the store {}: {err}",
        store_dir.display()
    );

    assert_untouched(&c, "after the store filled up");
    let ls = support::ckpt_in(&store_dir, &["ls", "--json"]);
    expect_code(&ls, 0, "ls of the full store");
    assert_eq!(
        common::parse_json_array(&ls.stdout),
        Vec::<serde_json::Value>::new(),
        "published after ENOSPC"
    );
    let staging = dir_entries(&store_dir.join(&c.id).join(".ckpt-staging"));
    assert!(staging.is_empty(), "staging left after ENOSPC: {staging:?}");
    // Every byte the failed dump wrote was given back.
    let left: u64 = support::walk(&store_dir)
        .iter()
        .filter_map(|p| fs::symlink_metadata(p).ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    assert!(left < 1 << 20, "{left} bytes left in the store after the failed dump");
}

/// `read_exact` spelled for a `File` we only need once.
trait ReadExactInto {
    fn read_exact_into(self, buf: &mut [u8]);
}
impl ReadExactInto for fs::File {
    fn read_exact_into(mut self, buf: &mut [u8]) {
        use std::io::Read;
        self.read_exact(buf).expect("read /dev/urandom");
    }
}

// ---------------------------------------------------------- concurrency --

fn run_all(store: &Store, commands: &[Vec<String>]) -> Vec<Output> {
    let children: Vec<Child> = commands
        .iter()
        .map(|args| {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            spawn(store, &a)
        })
        .collect();
    children.into_iter().map(|c| c.wait_with_output().unwrap()).collect()
}

/// Every published checkpoint of `c` passes `ckpt verify`.
fn verify_all(store: &Store, c: &Container) -> usize {
    let all = store.ls(Some(&c.id));
    for e in &all {
        verify_ok(store, &c.id, e["name"].as_str().unwrap());
    }
    all.len()
}

#[test]
fn eight_concurrent_creates_are_serialized_or_busy_and_all_verify() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let cmds: Vec<Vec<String>> = (0..8)
        .map(|i| {
            vec![
                "create".into(),
                "--leave-running".into(),
                c.id.clone(),
                format!("par{i}"),
            ]
        })
        .collect();
    let outs = run_all(&store, &cmds);
    let mut ok = 0;
    for (i, out) in outs.iter().enumerate() {
        match out.status.code() {
            Some(0) => ok += 1,
            Some(8) => assert!(
                stderr(out).contains("another ckpt command"),
                "busy without saying so: {}",
                stderr(out)
            ),
            other => panic!("create par{i}: exit {other:?}\n{}", stderr(out)),
        }
    }
    assert!(ok >= 1, "no create succeeded");
    assert_eq!(
        verify_all(&store, &c),
        ok,
        "published checkpoints differ from successful creates"
    );
    assert!(dir_entries(&store.staging_dir(&c.id)).is_empty());
    assert_untouched(&c, "after 8 concurrent creates");
}

#[test]
fn eight_concurrent_creates_of_one_name_publish_exactly_one() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let cmd = vec![
        "create".to_string(),
        "--leave-running".into(),
        c.id.clone(),
        "same".into(),
    ];
    let outs = run_all(&store, &vec![cmd; 8]);
    let ok = outs.iter().filter(|o| o.status.success()).count();
    assert_eq!(
        ok,
        1,
        "expected exactly one success: {:?}",
        outs.iter().map(|o| o.status.code()).collect::<Vec<_>>()
    );
    for out in outs.iter().filter(|o| !o.status.success()) {
        let err = stderr(out);
        assert!(
            err.contains("already has a checkpoint named") || err.contains("another ckpt command"),
            "unclear refusal (exit {:?}): {err}",
            out.status.code()
        );
        assert!(
            matches!(out.status.code(), Some(1 | 8)),
            "exit {:?}: {err}",
            out.status.code()
        );
    }
    assert_eq!(verify_all(&store, &c), 1);
    assert!(dir_entries(&store.staging_dir(&c.id)).is_empty());
    assert_untouched(&c, "after 8 creates of one name");
}

#[test]
fn create_racing_rm_is_serialized_and_leaves_whole_checkpoints() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "r0"]),
        0,
        "first create",
    );
    for i in 1..=5 {
        let (new, old) = (format!("r{i}"), format!("r{}", i - 1));
        let outs = run_all(
            &store,
            &[
                vec!["create".into(), "--leave-running".into(), c.id.clone(), new.clone()],
                vec!["rm".into(), c.id.clone(), old.clone()],
            ],
        );
        expect_code(&outs[0], 0, &format!("create {new} racing rm {old}"));
        expect_code(&outs[1], 0, &format!("rm {old} racing create {new}"));
        assert!(store.find(&c.id, &old).is_none(), "{old} still listed");
        assert!(store.find(&c.id, &new).is_some(), "{new} not listed");
    }
    assert_eq!(verify_all(&store, &c), 1);
    assert!(dir_entries(&store.staging_dir(&c.id)).is_empty());
    assert_untouched(&c, "after create/rm races");
}

#[test]
fn create_racing_start_is_serialized_or_refused() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "base"]),
        0,
        "base create",
    );
    for round in 0..3 {
        let name = format!("stop{round}");
        let outs = run_all(
            &store,
            &[
                vec!["create".into(), c.id.clone(), name.clone()],
                vec!["start".into(), "--checkpoint".into(), "base".into(), c.id.clone()],
            ],
        );
        let (create, start) = (outs[0].status.code(), outs[1].status.code());
        // Either create stopped it and start restored it, or start came
        // first and was refused (the container was running) and create
        // then stopped it.
        assert_eq!(create, Some(0), "create {name}: {}", stderr(&outs[0]));
        match start {
            Some(0) => {
                assert!(c.is_running(), "start said ok, status {:?}", c.status());
                assert_untouched(&c, "after start won the race");
            }
            Some(3) => {
                assert!(stderr(&outs[1]).contains("is running"), "{}", stderr(&outs[1]));
                assert_cleanly_stopped(&c, "after create won the race");
                expect_code(&store.ckpt(["start", "--checkpoint", "base", &c.id]), 0, "start after");
            }
            other => panic!("start racing create: exit {other:?}\n{}", stderr(&outs[1])),
        }
        assert!(store.find(&c.id, &name).is_some());
    }
    verify_all(&store, &c);
    assert!(dir_entries(&store.staging_dir(&c.id)).is_empty());
}

// --------------------------------------------------------------- cycles --

#[test]
fn hundred_create_start_cycles_counter_rises_and_nothing_leaks() {
    if !prereqs() {
        return;
    }
    const CYCLES: usize = 100;
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(10, WARMUP).expect("counter warms up");
    let store_s = store.path().display().to_string();
    let mounts_before = (
        mount_lines_mentioning(&store_s),
        mount_lines_mentioning(&c.id),
        mount_lines_mentioning(".criu"),
    );
    let started = Instant::now();
    let mut last = 0u64;
    let mut relay_fds = None;
    for i in 0..CYCLES {
        let name = format!("cycle{i}");
        expect_code(&store.ckpt(["create", &c.id, &name]), 0, &format!("create {name}"));
        let saved = c.counter().expect("counter after create");
        assert!(saved >= last, "cycle {i}: counter went back from {last} to {saved}");
        expect_code(
            &store.ckpt(["start", "--checkpoint", &name, &c.id]),
            0,
            &format!("start {name}"),
        );
        last = c
            .wait_counter_above(saved, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("cycle {i}: counter stuck at {saved}"));
        if i > 0 {
            expect_code(&store.ckpt(["rm", &c.id, &format!("cycle{}", i - 1)]), 0, "rm previous");
        }
        let staging = dir_entries(&store.staging_dir(&c.id));
        assert!(staging.is_empty(), "cycle {i}: staging entries {staging:?}");
        let ckpts = ckpt_processes();
        assert!(ckpts.is_empty(), "cycle {i}: ckpt processes remain: {ckpts:?}");
        let relays = relays_of(store.path());
        assert!(
            wait_until(Duration::from_secs(5), || relays_of(store.path()).len() == 1),
            "cycle {i}: {} relays for one running container: {relays:?}",
            relays_of(store.path()).len()
        );
        let fds = fd_count(relays_of(store.path())[0].pid);
        assert!(
            relay_fds.is_none_or(|n| n == fds),
            "cycle {i}: relay has {fds} fds, first had {relay_fds:?}"
        );
        relay_fds = Some(fds);
    }
    let elapsed = started.elapsed();
    let mounts_after = (
        mount_lines_mentioning(&store_s),
        mount_lines_mentioning(&c.id),
        mount_lines_mentioning(".criu"),
    );
    assert_eq!(
        mounts_before, mounts_after,
        "mount lines (store, container id, .criu) before/after"
    );
    assert_eq!(store.ls(Some(&c.id)).len(), 1);
    verify_ok(&store, &c.id, &format!("cycle{}", CYCLES - 1));
    assert_untouched(&c, "after 100 cycles");
    Runtime::Runc.destroy(&c.id);
    assert!(
        wait_until(Duration::from_secs(5), || relays_of(store.path()).is_empty()),
        "relays outlive the container: {:?}",
        relays_of(store.path())
    );
    let _ = writeln!(std::io::stderr(), "{CYCLES} create/start cycles took {elapsed:?}");
}

/// Waits until the `ckpt create` in `child` has CRIU writing pages into
/// the staging dir of `name` (a pages image exists and is still growing);
/// false if ckpt finished first.
fn wait_mid_page_dump(child: &mut std::process::Child, store: &Store, id: &str, name: &str) -> bool {
    let ckpt_pid = child.id();
    let mut last = None;
    let mid = support::poll(Duration::from_secs(120), Duration::from_millis(1), || {
        if child.try_wait().unwrap().is_some() {
            return Some(false);
        }
        criu_dump_child(ckpt_pid)?;
        let pages = staging_of(store, id, name).as_deref().and_then(pages_size);
        let growing = matches!((last, pages), (Some(a), Some(b)) if b > a && b < BALLAST_BYTES * 3 / 4);
        last = pages;
        growing.then_some(true)
    });
    mid == Some(true)
}

// ---------------------------------------------------------------------------
// Incremental checkpoints (issue 13): ckpt SIGKILLed during an incremental
// create, an `rm` and a `prune`. Every published checkpoint must still
// verify (its chunks included), and after the next command (`prune`, which
// always collects) the chunk store holds exactly the chunks the remaining
// recipes use.

const CHUNK_WAIT: Duration = Duration::from_secs(10);
/// Smaller than [`BALLAST_MB`]: these tests make several checkpoints.
const CHUNK_BALLAST_MB: u32 = 16;

/// Every published checkpoint of `id` verifies (`ckpt verify`, chunks
/// included); the chunk store holds exactly the chunks their recipes use,
/// in packs only (no temp file left).
fn assert_chunks_exact(store: &Store, id: &str, what: &str) {
    use ckpt::chunks::{ChunkStore, Recipe};
    let mut used = std::collections::BTreeSet::new();
    for dir in dir_entries(&store.path().join(id).join("checkpoints")) {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        verify_ok(store, id, &name);
        let recipe = dir.join("pages.recipe");
        if recipe.is_file() {
            used.extend(Recipe::read(&recipe).unwrap().digests());
        }
    }
    let chunks = store.path().join(id).join("chunks");
    let stats = ChunkStore::open(&chunks).unwrap().reader(CHUNK_WAIT).unwrap().stats();
    assert_eq!(
        stats.chunks,
        used.len(),
        "{what}: chunks stored {stats:?}, used {}",
        used.len()
    );
    let files = dir_entries(&chunks.join("packs"));
    assert_eq!(files.len(), stats.packs, "{what}: files in packs/ {files:?}");
}

/// `ckpt prune --retain 100 ID`: removes nothing here, collects.
fn next_command(store: &Store, id: &str) {
    let chunks = store.path().join(id).join("chunks");
    let stats = ckpt::chunks::ChunkStore::open(&chunks)
        .unwrap()
        .reader(CHUNK_WAIT)
        .unwrap()
        .stats();
    eprintln!(
        "before the next command: {stats:?}, files in packs/ {:?}",
        dir_entries(&chunks.join("packs"))
    );
    expect_code(
        &store.ckpt(["prune", "--retain", "100", id]),
        0,
        "the next command (prune)",
    );
}

fn create_incremental(store: &Store, c: &Container, name: &str) {
    expect_code(
        &store.ckpt(["create", "--incremental", "-R", &c.id, name]),
        0,
        &format!("ckpt create --incremental {name}"),
    );
}

#[test]
fn ckpt_sigkilled_while_chunking_an_incremental_create_leaves_published_checkpoints_restorable() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    create_incremental(&store, &c, "one");
    let mut child = spawn(&store, &["create", "--incremental", "-R", &c.id, "two"]);
    let ckpt_pid = child.id();
    // CRIU has exited and the page files are still in staging: ckpt is
    // hashing them into chunks (a pack may be written, not yet published).
    let mut saw_criu = false;
    let hit = support::poll(Duration::from_secs(120), Duration::from_millis(1), || {
        if child.try_wait().unwrap().is_some() {
            return Some(false);
        }
        if criu_dump_child(ckpt_pid).is_some() {
            saw_criu = true;
            return None;
        }
        let staging = staging_of(&store, &c.id, "two")?;
        (saw_criu && pages_size(&staging).is_some()).then_some(true)
    });
    assert_eq!(hit, Some(true), "never saw ckpt chunking two's page files");
    assert!(sigkill(ckpt_pid as i32));
    let t0 = Instant::now();
    let _ = child.wait();
    assert_thawed_by_watchdog(&c, t0, "ckpt killed while chunking");
    assert!(c.is_running(), "status {:?}", c.status());
    verify_ok(&store, &c.id, "one");

    next_command(&store, &c.id);
    assert_chunks_exact(&store, &c.id, "after the killed create and a prune");
    // And a new incremental create works on the same chunk store.
    create_incremental(&store, &c, "three");
    assert_chunks_exact(&store, &c.id, "after the next create");
    assert_untouched(&c, "after the next create");
}

/// Runs `args`, SIGKILLs it once `gone` has left `checkpoints/` (a removal
/// under way: the next removals and the collection are still to come).
/// Returns false if ckpt exited before that was seen.
fn kill_once_removed(store: &Store, id: &str, args: &[&str], gone: &str) -> bool {
    let dir = store.checkpoint_dir(id, gone);
    let mut child = spawn(store, args);
    let hit = support::poll(Duration::from_secs(60), Duration::from_micros(200), || {
        if !dir.exists() {
            return Some(true);
        }
        child.try_wait().unwrap().is_some().then_some(false)
    });
    let killed = hit == Some(true) && sigkill(child.id() as i32);
    let status = child.wait().unwrap();
    eprintln!("{args:?}: {status} (killed: {killed})");
    killed && status.code().is_none()
}

#[test]
fn ckpt_sigkilled_during_rm_of_an_incremental_checkpoint_leaves_the_others_restorable() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(CHUNK_BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    create_incremental(&store, &c, "keep");

    // Killed while it waits for the chunk store's lock (the container's
    // lock taken, nothing removed yet): the test holds the chunk session.
    create_incremental(&store, &c, "victim0");
    let chunks = ckpt::chunks::ChunkStore::open(&store.path().join(&c.id).join("chunks")).unwrap();
    let held = chunks.session(CHUNK_WAIT).unwrap();
    let mut child = spawn(&store, &["rm", &c.id, "victim0"]);
    thread::sleep(Duration::from_millis(500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "rm did not wait for the chunk lock"
    );
    assert!(sigkill(child.id() as i32));
    let _ = child.wait();
    drop(held);
    verify_ok(&store, &c.id, "victim0");

    // Killed after the checkpoint left checkpoints/, before or while its
    // chunks are collected. A try the kill missed (rm was done) is repeated.
    let mut hit = false;
    for attempt in 0..3 {
        let name = format!("victim{}", attempt + 1);
        create_incremental(&store, &c, &name);
        if kill_once_removed(&store, &c.id, &["rm", &c.id, &name], &name) {
            hit = true;
            break;
        }
    }
    assert!(hit, "rm finished before the kill three times");
    verify_ok(&store, &c.id, "keep");
    next_command(&store, &c.id);
    assert_chunks_exact(&store, &c.id, "after the killed rm and a prune");
    assert_untouched(&c, "after the killed rm");
}

#[test]
fn ckpt_sigkilled_during_prune_leaves_the_retained_checkpoints_restorable() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(CHUNK_BALLAST_MB).start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let mut hit = false;
    for attempt in 0..3 {
        // Three checkpoints in creation order; prune --retain 1 removes
        // the older ones newest first, then collects: killed once the
        // first (n1) left.
        let names: Vec<String> = (0..3).map(|i| format!("a{attempt}n{i}")).collect();
        for n in &names {
            create_incremental(&store, &c, n);
            // created_at has one-second resolution: keep the order by time.
            thread::sleep(Duration::from_millis(1100));
        }
        if kill_once_removed(&store, &c.id, &["prune", "--retain", "1", &c.id], &names[1]) {
            hit = true;
            break;
        }
    }
    assert!(hit, "prune finished before the kill three times");
    assert_chunks_exact_after_next(&store, &c);
}

fn assert_chunks_exact_after_next(store: &Store, c: &Container) {
    // Before the next command every published checkpoint already verifies.
    for dir in dir_entries(&store.path().join(&c.id).join("checkpoints")) {
        verify_ok(store, &c.id, dir.file_name().unwrap().to_str().unwrap());
    }
    next_command(store, &c.id);
    assert_chunks_exact(store, &c.id, "after the killed prune and the next prune");
    assert_untouched(c, "after the killed prune");
}
