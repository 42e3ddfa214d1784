//! Shared harness for the root-only end-to-end tests (`e2e_runc`,
//! `e2e_crun`, `e2e_docker`): prerequisite checks, real containers
//! (`container`), the busybox bundle builder (`rootfs`), a console-socket
//! receiver (`console`), a private containerd + dockerd (`docker`) and a
//! runner for the `ckpt` binary with a private store per test.
//!
//! Every test owns its store, container ids and cleanup, so tests can run in
//! any order; they still run with `--test-threads=1` to keep CRIU timings
//! predictable. Nothing here may leave a container or mount behind: every
//! container is killed and deleted on drop.
#![allow(dead_code)] // each test file uses a different part of the harness

pub mod chain;
pub mod console;
pub mod container;
pub mod docker;
pub mod rootfs;
pub mod runc_root;

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

pub use container::{Container, Runtime, Stdin};

/// The binary under test.
pub const CKPT: &str = env!("CARGO_BIN_EXE_ckpt");

/// Checks what the root tests need: root, `criu`, `runc`, `/bin/busybox`
/// and the binaries in `extra` (names looked up in PATH, or absolute paths). Returns true when all are present. When one
/// is missing: under `CI=true` it panics (a CI run must not pass by skipping);
/// otherwise it prints a loud `SKIPPED:` line and returns false, and the
/// caller returns early.
pub fn prereqs_with(extra: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        missing.push("not running as root".to_owned());
    }
    for bin in ["criu", "runc"].iter().chain(extra) {
        if find_in_path(bin).is_none() {
            let where_ = if bin.starts_with('/') {
                "missing"
            } else {
                "not found in PATH"
            };
            missing.push(format!("`{bin}` {where_}"));
        }
    }
    if !Path::new("/bin/busybox").is_file() {
        missing.push("/bin/busybox missing (busybox-static)".to_owned());
    }
    if missing.is_empty() {
        return true;
    }
    let reason = missing.join("; ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("prerequisite missing under CI=true: {reason} (run `sudo bash scripts/setup`)");
    }
    // Written to the real stderr: libtest captures eprintln! of passing
    // tests, and a skip must be seen.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: {reason} — run as root after `bash scripts/setup` !!!!!!!!\n"
    );
    false
}

/// [`prereqs_with`] for the runc tests.
pub fn prereqs() -> bool {
    prereqs_with(&[])
}

fn find_in_path(bin: &str) -> Option<PathBuf> {
    if bin.starts_with('/') {
        return Some(PathBuf::from(bin)).filter(|p| p.is_file());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| p.is_file())
}

/// A container id unique to this test process: `ckpt-t-<pid>-<n>`.
pub fn unique_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("ckpt-t-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst))
}

/// A private checkpoint store (a tempdir) and a `ckpt` runner that uses it.
pub struct Store {
    dir: TempDir,
    /// `--runtime` passed to every command, if set.
    runtime: Option<Runtime>,
}

impl Store {
    /// A fresh, empty store; ckpt picks the runtime itself (`auto`).
    pub fn new() -> Store {
        let dir = tempfile::Builder::new()
            .prefix("ckpt-store-")
            .tempdir()
            .expect("create store tempdir");
        Store { dir, runtime: None }
    }

    /// A fresh store whose commands pass `--runtime <rt>`.
    pub fn with_runtime(rt: Runtime) -> Store {
        Store {
            runtime: Some(rt),
            ..Store::new()
        }
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `<store>/<container>/checkpoints/<name>`.
    pub fn checkpoint_dir(&self, container: &str, name: &str) -> PathBuf {
        self.path().join(container).join("checkpoints").join(name)
    }

    /// `<store>/<container>/.ckpt-staging`.
    pub fn staging_dir(&self, container: &str) -> PathBuf {
        self.path().join(container).join(".ckpt-staging")
    }

    /// `<store>/<container>/output.log`, where a restored container writes.
    pub fn output_log(&self, container: &str) -> PathBuf {
        self.path().join(container).join("output.log")
    }

    /// `ckpt --store <store> [--runtime R] -v ARGS…`, ready to run or spawn.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(CKPT);
        cmd.env_remove("CKPT_STORE").arg("--store").arg(self.path());
        if let Some(rt) = self.runtime {
            cmd.args(["--runtime", rt.name()]);
        }
        cmd.arg("-v").args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs ckpt to completion and returns its output (never panics on a
    /// non-zero exit; use [`expect_code`]).
    pub fn ckpt<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command(args).output().expect("run the ckpt binary")
    }

    /// `ckpt ls --json [container]`, parsed; panics unless it exits 0 with a
    /// JSON array.
    pub fn ls(&self, container: Option<&str>) -> Vec<Value> {
        let mut args = vec!["ls", "--json"];
        args.extend(container);
        let out = self.ckpt(&args);
        expect_code(&out, 0, "ckpt ls --json");
        parse_json_array(&out.stdout)
    }

    /// The `ls --json` entry for `container`/`name`, if listed.
    pub fn find(&self, container: &str, name: &str) -> Option<Value> {
        self.ls(Some(container))
            .into_iter()
            .find(|e| e["container"] == container && e["name"] == name)
    }
}

/// Parses ckpt's JSON array output, panicking with the text when it is not one.
pub fn parse_json_array(stdout: &[u8]) -> Vec<Value> {
    match serde_json::from_slice::<Value>(stdout) {
        Ok(Value::Array(a)) => a,
        other => panic!(
            "expected a JSON array, got {other:?} from:\n{}",
            String::from_utf8_lossy(stdout)
        ),
    }
}

/// Asserts ckpt exited with `code`, showing both streams when it did not.
pub fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}, got {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ckpt's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` every 50 ms until it returns true; false after `timeout`.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of the live children of `parent` whose command name is `comm`
/// (from `/proc/<pid>/stat`: the name is in parentheses, the ppid is the
/// second field after it).
pub fn children_named(parent: u32, comm: &str) -> Vec<i32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                return false;
            };
            let name = &stat[open + 1..close];
            let mut rest = stat[close + 1..].split_whitespace();
            let state = rest.next();
            let ppid = rest.next().and_then(|p| p.parse::<u32>().ok());
            name == comm && ppid == Some(parent) && !matches!(state, Some("Z" | "X"))
        })
        .collect()
}

/// Entries of `dir`, empty when it does not exist.
pub fn dir_entries(dir: &Path) -> Vec<PathBuf> {
    match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| Some(e.ok()?.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// How long a restored counter may take to tick after `ckpt start` returns.
pub const RESTORE_TICK: Duration = Duration::from_secs(10);

/// Asserts that a container restored from a checkpoint taken when
/// `/tmp/count` held `saved` continues from it: the first new value is
/// above `saved` (a fresh start would write 1, and `saved` is far above 1)
/// and the counter keeps increasing. Returns the last value seen.
pub fn assert_continues_from(c: &Container, saved: u64) -> u64 {
    assert!(saved > 5, "test bug: checkpoint taken too early (counter {saved})");
    let first = c
        .wait_counter_change(saved, RESTORE_TICK)
        .unwrap_or_else(|| panic!("restored counter never moved from {saved}; status {:?}", c.status()));
    assert!(
        first > saved,
        "restored counter restarted instead of continuing: {first} after checkpoint at {saved}"
    );
    let later = c
        .wait_counter_above(first, RESTORE_TICK)
        .unwrap_or_else(|| panic!("restored counter stopped at {first}; status {:?}", c.status()));
    assert!(later > first);
    later
}

/// Asserts the container is running, not frozen, and its counter advances:
/// the state a refused or failed `ckpt create` must leave behind.
pub fn assert_untouched(c: &Container, what: &str) {
    assert!(
        c.is_running(),
        "{what}: container not running (status {:?})",
        c.status()
    );
    assert_eq!(
        c.freezer_state().as_deref(),
        Some("THAWED"),
        "{what}: container left frozen"
    );
    let v = c.counter().unwrap_or(0);
    assert!(
        c.wait_counter_above(v, Duration::from_secs(5)).is_some(),
        "{what}: counter stuck at {v}"
    );
}

/// The cgroup2 hierarchy as ckpt's runtimes see it here: the hybrid host's
/// `/sys/fs/cgroup/unified`, or `/sys/fs/cgroup` itself on a pure v2 view
/// (scripts/in-cgroup2).
pub fn unified_cgroup_root() -> PathBuf {
    let hybrid = Path::new("/sys/fs/cgroup/unified");
    match hybrid.join("cgroup.stat").exists() {
        true => hybrid.to_path_buf(),
        false => PathBuf::from("/sys/fs/cgroup"),
    }
}

/// How many cgroups lie below `dir` (`nr_descendants` of its cgroup.stat).
pub fn cgroup_descendants(dir: &Path) -> u64 {
    let stat = std::fs::read_to_string(dir.join("cgroup.stat")).expect("cgroup.stat");
    stat.lines()
        .find_map(|l| l.strip_prefix("nr_descendants "))
        .and_then(|n| n.trim().parse().ok())
        .expect("nr_descendants in cgroup.stat")
}

/// Empty cgroups made beside the containers' (`<root>/ckpt-t-marker-PID/
/// {a,b,c}`), removed on drop: a restore that copies the host's cgroup
/// tree into the container's copies these too, which a count shows.
pub struct CgroupMarkers {
    top: PathBuf,
}

impl CgroupMarkers {
    pub fn new(root: &Path) -> CgroupMarkers {
        let top = root.join(format!("ckpt-t-marker-{}", std::process::id()));
        for child in ["a", "b", "c"] {
            std::fs::create_dir_all(top.join(child)).expect("make a marker cgroup");
        }
        CgroupMarkers { top }
    }
}

impl Drop for CgroupMarkers {
    fn drop(&mut self) {
        for child in ["a", "b", "c"] {
            let _ = std::fs::remove_dir(self.top.join(child));
        }
        let _ = std::fs::remove_dir(&self.top);
    }
}
