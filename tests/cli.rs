//! Unprivileged tests of ckpt's command line: they run the real binary in a
//! fresh temp dir and need neither root, CRIU nor a container runtime.

use std::process::{Command, Output};

fn ckpt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ckpt"))
        .env_remove("CKPT_STORE")
        .args(args)
        .output()
        .expect("run the ckpt binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn assert_ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        stdout(out),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_lists_every_command() {
    let out = ckpt(&["--help"]);
    assert_ok(&out, "ckpt --help");
    let text = stdout(&out);
    for cmd in ["create", "ls", "rm", "start", "inspect"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(cmd)),
            "`ckpt --help` does not list `{cmd}`:\n{text}"
        );
    }
}

#[test]
fn create_help_mentions_leave_running() {
    let out = ckpt(&["create", "--help"]);
    assert_ok(&out, "ckpt create --help");
    assert!(stdout(&out).contains("--leave-running"), "{}", stdout(&out));
}

#[test]
fn ls_json_of_an_empty_store_is_an_empty_array() {
    let store = tempfile::tempdir().unwrap();
    let out = ckpt(&["ls", "--json", "--store", store.path().to_str().unwrap()]);
    assert_ok(&out, "ckpt ls --json");
    let v: serde_json::Value =
        serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", stdout(&out)));
    assert_eq!(v, serde_json::json!([]));
}

/// Regression: a closed stdout (`ckpt inspect C | head`) made ckpt exit 0
/// from inside its output code, whatever the command had decided, so a
/// refused container looked checkpointable to `ckpt inspect C | head -1 &&
/// ckpt create C x`. The command's own code must survive its reader going
/// away. A `sleep` child stands in for the container: a runc state file
/// names it as init, and its spec asks for a terminal, which the preflight
/// refuses (exit 3). Nothing runs as root and nothing is written.
#[test]
fn inspect_of_a_refused_container_exits_3_even_when_its_reader_went_away() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sleep = Command::new("sleep")
        .arg("30")
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = sleep.id() as i32;
    let start = ckpt::procfs::ProcRoot::host()
        .process(pid)
        .stat()
        .unwrap()
        .start_time
        .unwrap();
    let bundle = tmp.path().join("bundle");
    std::fs::create_dir_all(bundle.join("rootfs")).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion": "1.0.2", "root": {"path": "rootfs"},
            "process": {"terminal": true, "cwd": "/", "args": ["sleep"], "user": {"uid": 0, "gid": 0}}}"#,
    )
    .unwrap();
    let state_dir = tmp.path().join("runc/tty-c");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(
        state_dir.join("state.json"),
        serde_json::json!({
            "id": "tty-c", "init_process_pid": pid, "init_process_start": start,
            "config": {"rootfs": bundle.join("rootfs"), "labels": [format!("bundle={}", bundle.display())]}
        })
        .to_string(),
    )
    .unwrap();
    let run = |stdout: std::process::Stdio| {
        Command::new(env!("CARGO_BIN_EXE_ckpt"))
            .env_remove("CKPT_STORE")
            .args(["--runtime", "runc", "--runtime-root"])
            .arg(tmp.path().join("runc"))
            .arg("--store")
            .arg(tmp.path().join("store"))
            .args(["inspect", "tty-c"])
            .stdout(stdout)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap()
    };
    // Read in full, it is refused as such.
    let out = run(std::process::Stdio::piped());
    let report = stdout(&out);
    assert_eq!(out.status.code(), Some(3), "{report}");
    assert!(report.contains("verdict: refused"), "{report}");
    // With its reader gone before ckpt writes a byte: still 3, and nothing
    // said about the pipe.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let out = run(std::process::Stdio::from(write));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert_eq!(out.status.code(), Some(3), "{said}");
    assert!(said.contains("cannot be checkpointed as is"), "{said}");
    assert!(!said.contains("cannot write to stdout"), "{said}");
    assert!(!tmp.path().join("store").exists(), "inspect wrote the store");
}
