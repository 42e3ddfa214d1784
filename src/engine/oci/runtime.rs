//! Driving the container runtime binaries (runc, crun): delete a stopped
//! container, restore one from images, ask its state. Restores go through
//! the runtime so that it keeps managing the container afterwards (state
//! file, cgroups, `kill`/`delete`), exactly as after `runc restore` — the
//! same path Docker takes, which keeps ckpt's images honest.

use crate::engine::RuntimeKind;
use crate::plan::DumpOptions;
use crate::procfs::ProcRoot;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Errors of runtime commands.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("{runtime} is not installed (not found in PATH); install it (e.g. scripts/setup)")]
    NotInstalled { runtime: &'static str },
    #[error("{runtime} is not a runtime ckpt runs itself; its containers are restored through it")]
    NotDriven { runtime: &'static str },
    #[error("cannot run {runtime}")]
    Spawn {
        runtime: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to run `{runtime} delete --force {id}`")]
    MountsBelow {
        runtime: &'static str,
        id: String,
        #[source]
        source: crate::mounts::MountError,
    },
    #[error("`{runtime} {action} {id}` failed: {message}")]
    Failed {
        runtime: &'static str,
        action: &'static str,
        id: String,
        message: String,
    },
}

/// A runtime binary and the state root to use.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub kind: RuntimeKind,
    pub binary: PathBuf,
    pub root: PathBuf,
    /// Where ckpt's own mounts are read before a delete.
    pub proc: ProcRoot,
}

/// What to restore and how.
#[derive(Debug, Clone)]
pub struct RestoreRequest<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub images: &'a Path,
    pub work_dir: &'a Path,
    pub pid_file: &'a Path,
    pub options: DumpOptions,
}

impl Runtime {
    /// Locates the runtime binary in PATH.
    /// `kind` is runc or crun: Docker's containers are Docker's to run
    /// (a Docker checkpoint restored from ckpt's store is restored with
    /// runc by the restore plan's choice, not by a remap here).
    pub fn locate(kind: RuntimeKind, root: &Path, proc: &ProcRoot) -> Result<Runtime, RuntimeError> {
        if kind == RuntimeKind::Docker {
            return Err(RuntimeError::NotDriven { runtime: kind.name() });
        }
        let binary = crate::criu::runner::find_in_path(kind.name())
            .ok_or(RuntimeError::NotInstalled { runtime: kind.name() })?;
        Ok(Runtime {
            kind,
            binary,
            root: root.to_path_buf(),
            proc: proc.clone(),
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.binary);
        c.arg("--root").arg(&self.root);
        if self.kind == RuntimeKind::Crun && crun_needs_private_cgroup_view() {
            // crun refuses "hybrid" hosts whose cgroup2 mount at
            // /sys/fs/cgroup/unified holds a controller. In a private mount
            // namespace without that mount it sees a plain v1 host, which is
            // what runc uses there too. Only crun's own view changes.
            // SAFETY: between fork and exec only async-signal-safe syscalls
            // (unshare, mount, umount2) are made, no allocation.
            unsafe {
                c.pre_exec(|| {
                    use nix::mount::{mount, umount2, MntFlags, MsFlags};
                    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
                    mount(
                        None::<&str>,
                        "/",
                        None::<&str>,
                        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
                        None::<&str>,
                    )?;
                    umount2("/sys/fs/cgroup/unified", MntFlags::MNT_DETACH)?;
                    Ok(())
                });
            }
        }
        c
    }

    fn run_quiet(&self, action: &'static str, id: &str, args: &[OsString]) -> Result<(), RuntimeError> {
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| RuntimeError::Spawn {
                runtime: self.kind.name(),
                source,
            })?;
        if out.status.success() {
            return Ok(());
        }
        Err(RuntimeError::Failed {
            runtime: self.kind.name(),
            action,
            id: id.to_string(),
            message: one_line(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// `delete --force ID`: removes a stopped container's state and cgroups.
    ///
    /// The runtime removes `<root>/<id>` recursively, and a restore killed
    /// part-way leaves the container's rootfs bind-mounted at
    /// `<root>/<id>/criu-root` (runc): that delete would empty the rootfs.
    /// So whatever is mounted below the state dir (only a runtime's or
    /// CRIU's leftover can be: the dir is going away) is lazily unmounted
    /// first, and the delete is refused while anything stays mounted there.
    pub fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        crate::mounts::detach_below(&self.proc.own_mountinfo(), &self.root.join(id)).map_err(|source| {
            RuntimeError::MountsBelow {
                runtime: self.kind.name(),
                id: id.to_string(),
                source,
            }
        })?;
        // Safe: nothing is mounted below <root>/<id> (checked just above).
        self.run_quiet("delete", id, &["delete".into(), "--force".into(), id.into()])
    }

    /// `restore --detach ...` with `stdio` as the runtime's fds 0–2, which
    /// it hands CRIU for the recorded stdio pipes (`plan::stdio`). The
    /// runtime's own messages therefore go to a log file of its own.
    pub fn restore(&self, req: &RestoreRequest, stdio: [Stdio; 3]) -> Result<(), RuntimeError> {
        let args = restore_args(self.kind, req);
        let spawn_err = |source| RuntimeError::Spawn {
            runtime: self.kind.name(),
            source,
        };
        let log_file = req.work_dir.join("runtime.log");
        let [stdin, stdout, stderr] = stdio;
        let mut cmd = self.command();
        cmd.arg("--log").arg(&log_file).arg("--log-format").arg("json");
        let mut child = cmd
            .args(&args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(spawn_err)?;
        // Drop the Command: it holds copies of the stdio pipes' ends.
        drop(cmd);
        let status = wait_through_interrupts(&mut child, self.kind.name(), req.id).map_err(spawn_err)?;
        if status.success() {
            return Ok(());
        }
        let log_text = std::fs::read_to_string(&log_file).unwrap_or_default();
        let restore_log = std::fs::read_to_string(req.work_dir.join("restore.log")).unwrap_or_default();
        let mut message = runtime_error_message(&log_text);
        let criu_errors = crate::criu::log::error_lines(&restore_log);
        if !criu_errors.is_empty() {
            message.push_str("; CRIU said:");
            for e in criu_errors {
                message.push_str("\n    ");
                message.push_str(&e);
            }
        }
        Err(RuntimeError::Failed {
            runtime: self.kind.name(),
            action: "restore",
            id: req.id.to_string(),
            message,
        })
    }
}

/// Waits for the runtime to exit. A SIGINT, SIGTERM or SIGHUP that ckpt
/// receives meanwhile does not stop the wait: a runtime killed mid-restore
/// leaves mounts and half-restored processes behind, and one left alone
/// finishes as an orphan nobody reports on. The caller decides, once the
/// runtime is done, whether to keep or undo the restore.
fn wait_through_interrupts(
    child: &mut std::process::Child,
    runtime: &str,
    id: &str,
) -> std::io::Result<std::process::ExitStatus> {
    let mut told = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if let (false, Some(sig)) = (told, crate::interrupt::pending()) {
            log::warn!("got signal {sig}: letting {runtime} finish the restore of {id}, then undoing it");
            told = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// PURE: the runtime's restore arguments.
pub fn restore_args(kind: RuntimeKind, req: &RestoreRequest) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["restore".into(), "--detach".into()];
    a.extend(["--image-path".into(), req.images.into()]);
    a.extend(["--work-path".into(), req.work_dir.into()]);
    a.extend(["--bundle".into(), req.bundle.into()]);
    a.extend(["--pid-file".into(), req.pid_file.into()]);
    if kind == RuntimeKind::Runc {
        // ckpt is not a subreaper; let the restored init be reparented.
        a.push("--no-subreaper".into());
    }
    let flags = [
        (req.options.tcp_established, "--tcp-established"),
        (req.options.file_locks, "--file-locks"),
        (req.options.ext_unix_sk, "--ext-unix-sk"),
    ];
    a.extend(flags.iter().filter(|(on, _)| *on).map(|(_, f)| OsString::from(f)));
    a.push(req.id.into());
    a
}

/// The last `msg` of runc's JSON/text log, or the log's last line.
fn runtime_error_message(log: &str) -> String {
    let from_json = log.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l).ok()?;
        (v["level"] == "error" || v["level"] == "fatal").then(|| v["msg"].as_str().unwrap_or_default().to_string())
    });
    from_json.unwrap_or_else(|| one_line(log))
}

fn one_line(s: &str) -> String {
    s.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or("(no message)")
        .trim()
        .to_string()
}

/// True on hosts where crun must not see /sys/fs/cgroup/unified: a v1
/// layout whose cgroup2 mount there has controllers enabled.
pub fn crun_needs_private_cgroup_view() -> bool {
    let unified = Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    match std::fs::read_to_string(unified) {
        Ok(c) => !c.trim().is_empty(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(opts: DumpOptions) -> Vec<String> {
        let r = RestoreRequest {
            id: "c1",
            bundle: Path::new("/b"),
            images: Path::new("/s/c1/checkpoints/x"),
            work_dir: Path::new("/w"),
            pid_file: Path::new("/w/pid"),
            options: opts,
        };
        restore_args(RuntimeKind::Runc, &r)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn restore_arguments() {
        let a = req(DumpOptions::default());
        assert_eq!(&a[..2], &["restore", "--detach"]);
        assert!(a.windows(2).any(|w| w == ["--image-path", "/s/c1/checkpoints/x"]));
        assert!(a.windows(2).any(|w| w == ["--bundle", "/b"]));
        assert!(a.windows(2).any(|w| w == ["--pid-file", "/w/pid"]));
        assert_eq!(a.last().unwrap(), "c1");
        assert!(!a.contains(&"--tcp-established".to_string()));
    }

    #[test]
    fn restore_repeats_dump_options() {
        let a = req(DumpOptions {
            tcp_established: true,
            file_locks: true,
            ext_unix_sk: true,
            leave_running: true,
        });
        for f in ["--tcp-established", "--file-locks", "--ext-unix-sk"] {
            assert!(a.contains(&f.to_string()), "{f}");
        }
        assert!(!a.contains(&"--leave-running".to_string()));
    }

    #[test]
    fn runc_json_log_message() {
        let log = r#"{"level":"info","msg":"x"}
{"level":"error","msg":"criu failed: type RESTORE errno 0"}"#;
        assert_eq!(runtime_error_message(log), "criu failed: type RESTORE errno 0");
        assert_eq!(runtime_error_message("plain\nlast line\n"), "last line");
    }

    #[test]
    fn docker_is_never_run_as_a_runtime_binary() {
        let e = Runtime::locate(RuntimeKind::Docker, Path::new("/r"), &ProcRoot::host()).unwrap_err();
        assert!(matches!(e, RuntimeError::NotDriven { runtime: "docker" }), "{e}");
    }
}
