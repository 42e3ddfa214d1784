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
