//! End-to-end tests of the real `ckpt` binary against real runc containers
//! and real CRIU. Root only: run with
//! `cargo test --test e2e_runc -- --test-threads=1` as root (see
//! scripts/test). Without root or criu/runc they print `SKIPPED:` and pass,
//! except under `CI=true`, where they fail.
//!
//! Each test asserts on the container itself (runtime state, freezer state,
//! the in-memory counter), not only on ckpt's exit code.

mod common;

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_continues_from, assert_untouched, children_named, dir_entries, expect_code, prereqs, stderr, unique_id,
    wait_until, Container, Runtime, Store,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Counter value a container reaches before it is checkpointed, so that a
/// restart (which writes 1) cannot be mistaken for a continuation.
const WARM: u64 = 10;
const WARMUP: Duration = Duration::from_secs(10);

#[test]
fn create_stops_container_and_start_continues_counter() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    let before = c.wait_counter_above(WARM, WARMUP).expect("counter warms up");

    expect_code(&store.ckpt(["create", &c.id, "one"]), 0, "ckpt create");

    let entry = store.find(&c.id, "one").expect("ls lists the new checkpoint");
    assert_eq!(entry["made_by"], "ckpt", "{entry}");
    assert_eq!(entry["leave_running"], false, "{entry}");
    assert!(entry["size_bytes"].as_u64().unwrap_or(0) > 0, "{entry}");
    assert!(store.checkpoint_dir(&c.id, "one").is_dir());

    assert!(
        !c.is_running(),
        "create without --leave-running left it {:?}",
        c.status()
    );
    assert!(!Runtime::Runc.list_shows_running(&c.id));
    let saved = c.counter().expect("counter file after dump");
    assert!(saved >= before, "counter went back from {before} to {saved}");
    thread::sleep(Duration::from_millis(500));
    assert_eq!(c.counter(), Some(saved), "something still writes the counter");

    expect_code(&store.ckpt(["start", "--checkpoint", "one", &c.id]), 0, "ckpt start");
    assert_continues_from(&c, saved);
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(
        Runtime::Runc.list_shows_running(&c.id),
        "runc list does not show it running"
    );

    // The restored process writes to <store>/<id>/output.log.
    let log = store.output_log(&c.id);
    assert!(
        wait_until(Duration::from_secs(5), || {
            fs::read_to_string(&log)
                .map(|t| t.lines().any(|l| l.trim().parse::<u64>().is_ok_and(|n| n > saved)))
                .unwrap_or(false)
        }),
        "{} never showed a count above {saved}",
        log.display()
    );

    // The runtime manages the restored container as its own.
    let killed = Command::new("runc").args(["kill", &c.id, "KILL"]).status().unwrap();
    assert!(killed.success(), "runc kill of the restored container failed");
    assert!(
        wait_until(Duration::from_secs(5), || !c.is_running()),
        "still {:?} after runc kill",
        c.status()
    );
    let at_kill = c.counter();
    thread::sleep(Duration::from_millis(500));
    assert_eq!(c.counter(), at_kill, "counter still moving after runc kill");
}

#[test]
fn leave_running_keeps_counting_and_checkpoint_restores() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    let before = c.wait_counter_above(WARM, WARMUP).expect("counter warms up");

    let mut child = store
        .command(["create", "--leave-running", &c.id, "live"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ckpt");
    let mut seen_during = vec![];
    while child.try_wait().unwrap().is_none() {
        seen_during.extend(c.counter());
        thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    expect_code(&out, 0, "ckpt create --leave-running");
    let after = c.counter().expect("counter after create");
    assert!(after >= before);

    assert!(c.is_running(), "--leave-running stopped it: {:?}", c.status());
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));
    assert!(
        c.wait_counter_above(after + 3, Duration::from_secs(5)).is_some(),
        "counter stuck"
    );
    assert!(
        seen_during.windows(2).all(|w| w[0] <= w[1]),
        "counter went backwards during the dump: {seen_during:?}"
    );
    let entry = store.find(&c.id, "live").expect("ls lists the checkpoint");
    assert_eq!(entry["leave_running"], true, "{entry}");
    assert_eq!(entry["made_by"], "ckpt", "{entry}");

    // Let the live counter run well past the checkpoint, then kill it and
    // blank the file: the restored value must come from the checkpoint.
    c.wait_counter_above(after + 10, Duration::from_secs(5))
        .expect("counter runs on");
    Runtime::Runc.destroy(&c.id);
    assert!(wait_until(Duration::from_secs(5), || c.status().is_none()));
    fs::write(c.rootfs.join("tmp/count"), "0\n").unwrap();

    expect_code(&store.ckpt(["start", "--checkpoint", "live", &c.id]), 0, "ckpt start");
    let first = c
        .wait_counter_above(0, Duration::from_secs(10))
        .expect("restored counter ticks");
    assert!(
        first > before && first <= after + 3,
        "restored counter {first} is not the checkpoint's (taken between {before} and {after})"
    );
    assert!(c.is_running(), "status {:?}", c.status());
    assert!(c.wait_counter_above(first, Duration::from_secs(5)).is_some());
}

#[test]
fn print_stats_reports_criu_and_ckpt_timings() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(WARM, WARMUP).expect("counter warms up");

    let out = store.ckpt(["create", "--leave-running", "--print-stats", "--json", &c.id, "s1"]);
    expect_code(&out, 0, "ckpt create --print-stats --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("create prints JSON");
    let stats = &v["stats"];
    let total = stats["ckpt_checkpoint_duration"].as_u64().unwrap_or(0);
    let cs = &stats["container_statistics"][0];
    assert_eq!(cs["id"], c.id.as_str(), "{stats}");
    let criu = &cs["criu_statistics"];
    for k in [
        "freezing_time",
        "frozen_time",
        "memdump_time",
        "memwrite_time",
        "pages_scanned",
        "pages_written",
    ] {
        assert!(
            criu[k].as_u64().unwrap_or(0) > 0,
            "criu_statistics.{k} is not positive: {stats}"
        );
    }
    for k in ["preflight", "dump", "publish"] {
        assert!(
            cs["phases"][k].as_u64().unwrap_or(0) > 0,
            "phases.{k} is not positive: {stats}"
        );
    }
    let runtime = cs["runtime_checkpoint_duration"].as_u64().unwrap_or(0);
    assert!(
        runtime > 0 && total > runtime,
        "total {total} vs criu run {runtime}: {stats}"
    );
    // CRIU's frozen time lies within ckpt's own dump phase.
    assert!(
        criu["frozen_time"].as_u64().unwrap() <= cs["phases"]["dump"].as_u64().unwrap(),
        "{stats}"
    );
    assert!(c.is_running(), "--leave-running stopped it: {:?}", c.status());
    assert_eq!(c.freezer_state().as_deref(), Some("THAWED"));

    // The text form: the same fields, each a positive number.
    let out = store.ckpt(["create", "--leave-running", "--print-stats", &c.id, "s2"]);
    expect_code(&out, 0, "ckpt create --print-stats");
    let text = String::from_utf8_lossy(&out.stdout);
    for k in ["frozen_time", "memdump_time", "memwrite_time"] {
        let prefix = format!("container_statistics[0].criu_statistics.{k}: ");
        let n: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{text}"));
        assert!(n > 0, "{k} is 0:\n{text}");
    }
    let now = c.counter().expect("counter");
    assert!(
        c.wait_counter_above(now + 2, Duration::from_secs(5)).is_some(),
        "counter stuck after the dumps"
    );
}

#[test]
fn start_print_stats_reports_criu_restore_and_ckpt_timings() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    let before = c.wait_counter_above(WARM, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "s1"]), 0, "ckpt create");
    assert!(wait_until(Duration::from_secs(5), || c.status().is_none()));

    let out = store.ckpt(["start", "--checkpoint", "s1", "--print-stats", "--json", &c.id]);
    expect_code(&out, 0, "ckpt start --print-stats --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("start prints JSON");
    let stats = &v["stats"];
    let cs = &stats["container_statistics"][0];
    assert_eq!(cs["id"], c.id.as_str(), "{stats}");
    // CRIU's stats-restore, read from the restore's work dir.
    let criu = &cs["criu_statistics"];
    for k in ["forking_time", "restore_time", "pages_restored"] {
        assert!(
            criu[k].as_u64().unwrap_or(0) > 0,
            "criu_statistics.{k} is not positive: {stats}"
        );
    }
    let runtime = cs["runtime_restore_duration"].as_u64().unwrap_or(0);
    let total = stats["ckpt_restore_duration"].as_u64().unwrap_or(0);
    assert!(
        criu["restore_time"].as_u64().unwrap() < runtime && runtime < total,
        "CRIU's restore lies within runc's, runc's within ckpt's: {stats}"
    );
    for k in ["verify", "plan", "prepare", "restore", "confirm"] {
        assert!(
            cs["phases"][k].as_u64().unwrap_or(0) > 0,
            "phases.{k} is not positive: {stats}"
        );
    }
    assert_eq!(cs["phases"]["import"], 0, "{stats}");
    // The restore itself is what it always is.
    assert_continues_from(&c, before);
    assert!(c.is_running(), "status {:?}", c.status());
}

#[test]
fn start_tcp_close_restores_through_a_criu_config_runc_reads() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    let before = c.wait_counter_above(WARM, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "t1"]), 0, "ckpt create");
    assert!(wait_until(Duration::from_secs(5), || c.status().is_none()));

    expect_code(
        &store.ckpt(["start", "--checkpoint", "t1", "--tcp-close", &c.id]),
        0,
        "ckpt start --tcp-close",
    );
    // runc restored from the generated bundle, whose annotation names the
    // CRIU config file with tcp-close.
    let state = Runtime::Runc.state(&c.id).expect("runc knows the restored container");
    let bundle = Path::new(state["bundle"].as_str().expect("a bundle")).to_path_buf();
    assert_eq!(bundle, store.path().join(&c.id).join("bundle"), "{state}");
    let spec: serde_json::Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let config = spec["annotations"]["org.criu.config"]
        .as_str()
        .expect("the annotation")
        .to_string();
    assert_eq!(Path::new(&config), bundle.join("criu.conf"));
    assert_eq!(fs::read_to_string(&config).unwrap(), "tcp-close\n");
    // CRIU itself read it (its restore.log, kept by ckpt, says so).
    let log = fs::read_to_string(store.path().join(&c.id).join("restore.log")).unwrap_or_default();
    assert!(
        log.contains(&format!("Parsing config file {config}")),
        "CRIU never read {config}:\n{log}"
    );
    assert_continues_from(&c, before);
    assert!(c.is_running(), "status {:?}", c.status());
}

#[test]
fn inspect_of_a_checkpoint_shows_the_dumped_processes() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(WARM, WARMUP).expect("counter warms up");
    expect_code(
        &store.ckpt(["create", "--leave-running", &c.id, "i1"]),
        0,
        "ckpt create",
    );

    let out = store.ckpt(["inspect", "--json", &c.id, "i1"]);
    expect_code(&out, 0, "ckpt inspect C N --json");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("inspect prints JSON");
    assert_eq!(
        (v["made_by"].as_str(), v["source"].as_str()),
        (Some("ckpt"), Some("recorded")),
        "{v}"
    );
    let version = String::from_utf8_lossy(&Command::new("criu").arg("--version").output().unwrap().stdout)
        .lines()
        .find_map(|l| l.strip_prefix("Version: ").map(str::to_string))
        .unwrap();
    assert_eq!(v["criu_version"].as_str(), Some(version.trim()), "{v}");
    assert_eq!(v["options"]["leave_running"], true);
    let init = &v["processes"][0];
    assert_eq!(init["pid"], 1, "{v}");
    assert!(init["cmdline"].as_array().is_some_and(|c| !c.is_empty()), "{init}");
    assert!(init["memory"]["rss"].as_u64().unwrap_or(0) > 0, "{init}");
    assert!(!init["fds"].as_array().unwrap().is_empty(), "{init}");
    let images = v["images"].as_array().unwrap();
    let pages = images.iter().find(|i| i["kind"] == "pages").expect("pages images");
    assert!(pages["bytes"].as_u64().unwrap() > 0, "{v}");
    let sum: u64 = images.iter().map(|i| i["bytes"].as_u64().unwrap()).sum();
    assert_eq!(sum, v["size_bytes"].as_u64().unwrap(), "{v}");
    // Inspecting changed nothing: the container runs on.
    assert!(c.is_running());
    let now = c.counter().expect("counter");
    assert!(
        c.wait_counter_above(now + 2, Duration::from_secs(5)).is_some(),
        "counter stuck"
    );
}

#[test]
fn start_with_name_restores_as_a_new_container() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(WARM, WARMUP).expect("counter warms up");
    expect_code(&store.ckpt(["create", &c.id, "snap"]), 0, "ckpt create");
    assert!(!c.is_running());
    let saved = c.counter().unwrap();

    let new_id = unique_id();
    // Adopted before starting so it is cleaned up whatever happens.
    let restored = Container::adopt(Runtime::Runc, &new_id, &c.rootfs);
    expect_code(
        &store.ckpt(["start", "--checkpoint", "snap", "--name", &new_id, &c.id]),
        0,
        "ckpt start --name",
    );
    assert_eq!(restored.status().as_deref(), Some("running"));
    assert!(Runtime::Runc.list_shows_running(&new_id));
    assert!(!c.is_running(), "the source id came back too: {:?}", c.status());
    assert_continues_from(&restored, saved);
}

#[test]
fn rm_removes_checkpoint_and_unknown_names_are_not_found() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    expect_code(&store.ckpt(["create", "--leave-running", &c.id, "gone"]), 0, "create");
    let dir = store.checkpoint_dir(&c.id, "gone");
    assert!(dir.is_dir());
    assert!(store.find(&c.id, "gone").is_some());

    expect_code(&store.ckpt(["rm", &c.id, "gone"]), 0, "ckpt rm");
    assert!(store.find(&c.id, "gone").is_none(), "still listed after rm");
    assert!(store.ls(None).is_empty());
    assert!(!dir.exists(), "{} still on disk", dir.display());

    expect_code(&store.ckpt(["rm", &c.id, "never-made"]), 4, "rm of an unknown name");
    // As `docker checkpoint ls`: an id nobody knows is not an empty list.
    let out = store.ckpt(["ls", "ckpt-t-no-such-container"]);
    expect_code(&out, 4, "ls of an id no runtime or store knows");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such container \"ckpt-t-no-such-container\""),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A container gone from the runtime with checkpoints still lists them.
    expect_code(&store.ckpt(["create", "--leave-running", &c.id, "kept"]), 0, "create");
    Runtime::Runc.destroy(&c.id);
    assert!(
        store.find(&c.id, "kept").is_some(),
        "a stopped container's checkpoint is not listed"
    );
    expect_code(&store.ckpt(["rm", &c.id, "kept"]), 0, "rm");

    // The store knows the container, the checkpoint does not exist.
    expect_code(
        &store.ckpt(["start", "--checkpoint", "never-made", &c.id]),
        4,
        "start from an unknown checkpoint",
    );
    expect_code(
        &store.ckpt(["start", "--checkpoint", "x", "ckpt-t-no-such-container"]),
        4,
        "start of an unknown container",
    );
}

#[test]
fn tty_container_is_refused_untouched() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().tty().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");

    let out = store.ckpt(["create", &c.id, "tty"]);
    expect_code(&out, 3, "create of a TTY container");
    let err = stderr(&out).to_lowercase();
    assert!(err.contains("terminal") || err.contains("tty"), "stderr: {err}");

    assert_untouched(&c, "after TTY refusal");
    assert!(store.ls(Some(&c.id)).is_empty());
    assert!(!store.checkpoint_dir(&c.id, "tty").exists());
}

#[test]
fn host_file_stdout_is_refused_untouched() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().stdout_to_host_file().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");
    let host_file = c.host_stdout_path().unwrap().display().to_string();

    let out = store.ckpt(["create", &c.id, "hostfile"]);
    expect_code(&out, 3, "create with stdout on a host file");
    let err = stderr(&out);
    assert!(err.contains("fd 1"), "stderr does not name fd 1: {err}");
    assert!(err.contains(&host_file), "stderr does not name {host_file}: {err}");

    assert_untouched(&c, "after host-file refusal");
    assert!(store.ls(Some(&c.id)).is_empty());
}

#[test]
fn criu_killed_mid_dump_leaves_container_running_and_store_clean() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().ballast_mb(300).start();
    c.wait_counter_above(3, Duration::from_secs(30)).expect("counter runs");

    let mut child = store
        .command(["create", &c.id, "big"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ckpt");
    // Kill the first criu child of ckpt that lives 100 ms: short-lived
    // helpers (`criu --version`, `criu check`) are gone by then; the dump
    // of 300 MiB is not.
    let mut first_seen: HashMap<i32, Instant> = HashMap::new();
    let mut killed = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while killed.is_none() && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        for pid in children_named(child.id(), "criu") {
            let seen = *first_seen.entry(pid).or_insert_with(Instant::now);
            if seen.elapsed() >= Duration::from_millis(100) {
                if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                    killed = Some(pid);
                }
                break;
            }
        }
        thread::sleep(Duration::from_millis(5));
    }
    if killed.is_none() {
        let _ = child.kill();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        killed.is_some(),
        "never caught a criu child of ckpt alive for 100 ms (criu pids seen: {:?}); ckpt: {:?}\n{}",
        first_seen.keys().collect::<Vec<_>>(),
        out.status,
        stderr(&out)
    );
    assert!(!out.status.success(), "ckpt succeeded although its criu was killed");
    expect_code(&out, 6, "ckpt create with criu killed");

    assert_untouched(&c, "after criu was killed");
    assert!(
        store.ls(None).is_empty(),
        "a checkpoint was published: {:?}",
        store.ls(None)
    );
    let staging = store.staging_dir(&c.id);
    assert!(
        dir_entries(&staging).is_empty(),
        "staging left behind: {:?}",
        dir_entries(&staging)
    );
    assert!(!store.checkpoint_dir(&c.id, "big").exists());

    // The failure left nothing that blocks the next attempt (no lock, no
    // half-written checkpoint).
    expect_code(&store.ckpt(["create", &c.id, "big"]), 0, "create after the killed one");
    assert!(store.find(&c.id, "big").is_some());
}

#[test]
fn invalid_name_is_a_usage_error_and_creates_nothing() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let c = Container::runc().start();
    c.wait_counter_above(3, WARMUP).expect("counter runs");

    let out = store.ckpt(["create", &c.id, "../x"]);
    expect_code(&out, 2, "create with name ../x");
    assert_untouched(&c, "after an invalid name");
    assert!(store.ls(None).is_empty());
    assert!(
        !any_entry_named(store.path(), "x"),
        "something named x appeared under {}",
        store.path().display()
    );
    assert!(dir_entries(&store.path().join(&c.id).join("checkpoints")).is_empty());
}

/// Whether any file or directory under `dir` (recursively) is called `name`.
fn any_entry_named(dir: &Path, name: &str) -> bool {
    dir_entries(dir)
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == name) || (p.is_dir() && any_entry_named(p, name)))
}

/// issue 9: Docker's `--checkpoint-dir` trap. A checkpoint made with
/// `--checkpoint-dir=/x` is started with `--checkpoint-dir=/x/<id>/checkpoints`
/// (the form Docker users are told to use) and continues its counter;
/// `ls` and `rm` take both forms; `--store` stays empty.
#[test]
fn checkpoint_dir_made_with_base_starts_with_the_per_container_form() {
    if !prereqs() {
        return;
    }
    let store = Store::new();
    let custom = tempfile::tempdir().expect("a tempdir for --checkpoint-dir");
    let base = custom.path().join("x");
    let c = Container::runc().start();
    c.wait_counter_above(WARM, WARMUP).expect("counter warms up");
    let base_arg = format!("--checkpoint-dir={}", base.display());
    let per = base.join(&c.id).join("checkpoints");
    let per_arg = format!("--checkpoint-dir={}", per.display());

    expect_code(
        &store.ckpt(["create", &base_arg, &c.id, "one"]),
        0,
        "ckpt create --checkpoint-dir=/x",
    );
    assert!(per.join("one/ckpt.json").is_file(), "not under /x/<id>/checkpoints");
    assert!(!c.is_running(), "create left it {:?}", c.status());
    let saved = c.counter().expect("counter file after dump");
    for arg in [&base_arg, &per_arg] {
        let out = store.ckpt(["ls", "--json", arg.as_str(), &c.id]);
        expect_code(&out, 0, &format!("ls {arg}"));
        let rows = common::parse_json_array(&out.stdout);
        assert!(rows.iter().any(|r| r["name"] == "one"), "ls {arg}: {rows:?}");
    }
    assert!(store.ls(None).is_empty(), "--store got the checkpoint");

    expect_code(
        &store.ckpt(["start", &per_arg, "--checkpoint", "one", &c.id]),
        0,
        "ckpt start --checkpoint-dir=/x/<id>/checkpoints",
    );
    assert_continues_from(&c, saved);
    assert!(c.is_running(), "status {:?}", c.status());

    expect_code(
        &store.ckpt(["rm", &per_arg, &c.id, "one"]),
        0,
        "rm --checkpoint-dir=/x/<id>/checkpoints",
    );
    assert!(!per.join("one").exists(), "rm left the checkpoint");
    // A hostile form is a usage error and writes nothing.
    let climb = format!("--checkpoint-dir={}/../y", base.display());
    expect_code(&store.ckpt(["create", "-R", &climb, &c.id, "two"]), 2, "create with ..");
    assert_untouched(&c, "after a refused --checkpoint-dir");
    assert!(!custom.path().join("y").exists());
    drop(c);
}

/// Regression (issue 9): a container ckpt restored could not be
/// checkpointed again when its stdin was a pipe: `start` gave the restored
/// init the host's `/dev/null` as fd 0, and the next `create` refused it as
/// a file outside the container's mounts. The whole chain, for every kind
/// of stdin a caller gives.
#[test]
fn restored_container_with_any_stdin_is_checkpointed_again() {
    if !prereqs() {
        return;
    }
    for stdin in common::Stdin::ALL {
        common::chain::checkpoint_chain(Runtime::Runc, stdin);
    }
}
