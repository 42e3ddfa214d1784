//! A runc state root of a test's own (`runc --root`): "another host"'s
//! runtime state, cleaned up on drop.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

/// A runc state root of its own; every container still in it is killed
/// and deleted on drop.
pub struct RuncRoot {
    dir: tempfile::TempDir,
    /// `runc` or `crun` (both take `--root`).
    bin: &'static str,
}

impl RuncRoot {
    pub fn new() -> RuncRoot {
        RuncRoot::of("runc")
    }

    /// A state root of its own for `bin` (`runc` or `crun`).
    pub fn of(bin: &'static str) -> RuncRoot {
        RuncRoot {
            dir: tempfile::Builder::new().prefix("ckpt-runtime-root-").tempdir().unwrap(),
            bin,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn runc(&self, args: &[&str]) -> std::process::Output {
        Command::new(self.bin)
            .arg("--root")
            .arg(self.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run the runtime")
    }

    pub fn status(&self, id: &str) -> Option<String> {
        let out = self.runc(&["state", id]);
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["status"].as_str().map(str::to_string)
    }
}

impl Drop for RuncRoot {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.path()) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            // SIGKILL: the counter is PID 1 of its namespace.
            let _ = self.runc(&["kill", &id, "KILL"]);
            let _ = self.runc(&["delete", "-f", &id]);
        }
    }
}
