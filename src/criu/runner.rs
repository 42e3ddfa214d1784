//! The only place that spawns `criu`. A [`Monitor`] watches the run: it
//! forwards interrupts and bounds the wait (CRIU has no timeout of its own
//! once it has seized the tasks). Commands reach CRIU through [`Locate`]
//! and [`Runner`], so that their unit tests can stand a fake in its place.

use super::log;
use super::version::{CriuVersion, MINIMUM};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Errors of running CRIU.
#[derive(Debug, thiserror::Error)]
pub enum CriuError {
    #[error("criu is not installed (not found in PATH); install CRIU >= {MINIMUM} (e.g. scripts/setup)")]
    NotInstalled,
    #[error("criu {found} at {path} is too old; ckpt needs CRIU >= {MINIMUM}")]
    TooOld { found: CriuVersion, path: PathBuf },
    #[error("cannot tell the version of {path} (`criu --version` said {output:?})")]
    UnknownVersion { path: PathBuf, output: String },
    #[error("cannot run {path}")]
    Spawn {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// CRIU ran and failed; `errors` are the meaningful lines of its log.
    #[error("{}", failed_message(.action, .status, .log_path, .errors, .hint))]
    Failed {
        action: &'static str,
        status: String,
        log_path: PathBuf,
        errors: Vec<String>,
        hint: Option<&'static str>,
    },
    /// The monitor gave up waiting for CRIU.
    #[error("{reason}; log: {}", .log_path.display())]
    Stalled { reason: String, log_path: PathBuf },
}

/// Watches a running CRIU for [`Criu::run`].
pub trait Monitor {
    /// CRIU runs with this pid (for the watchdog).
    fn spawned(&mut self, pid: u32);
    /// Called every 5 ms while CRIU runs.
    fn tick(&mut self) -> Verdict;
}

/// What a [`Monitor`] wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// A signal is pending: ask CRIU to stop (once).
    Interrupt,
    /// Stop waiting for CRIU.
    GiveUp {
        reason: String,
        /// Stop CRIU (SIGALRM, its own timeout path, then SIGKILL). When
        /// false CRIU is left running: see [`crate::pause`] for when
        /// stopping it could kill the container.
        stop_criu: bool,
    },
}

/// How long CRIU gets to unwind after SIGALRM: its handler interrupts the
/// syscall CRIU waits in and re-arms itself 5 times, 1 s apart, before
/// CRIU gives up with BUG().
const UNWIND: Duration = Duration::from_secs(10);

fn failed_message(
    action: &str,
    status: &str,
    log_path: &Path,
    errors: &[String],
    hint: &Option<&'static str>,
) -> String {
    let mut m = format!("criu {action} failed ({status}); log: {}", log_path.display());
    for e in errors {
        m.push_str("\n    ");
        m.push_str(e);
    }
    if let Some(h) = hint {
        m.push_str("\n  hint: ");
        m.push_str(h);
    }
    m
}

/// Runs CRIU: [`Criu`], the real binary, or a fake in tests.
pub trait Runner {
    /// The version `criu --version` gave.
    fn version(&self) -> CriuVersion;
    /// Runs `criu <args>` and waits for it as `monitor` says (see [`Criu::run`]).
    fn run(
        &self,
        action: &'static str,
        args: &[OsString],
        log_path: &Path,
        monitor: &mut dyn Monitor,
    ) -> Result<(), CriuError>;
}

/// Finds the CRIU to run.
pub trait Locate {
    fn locate(&self) -> Result<Box<dyn Runner>, CriuError>;
}

/// `$CKPT_CRIU`, or `criu` in `PATH`, version-checked ([`Criu::locate`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct FromPath;

impl Locate for FromPath {
    fn locate(&self) -> Result<Box<dyn Runner>, CriuError> {
        Ok(Box::new(Criu::locate()?))
    }
}

impl Runner for Criu {
    fn version(&self) -> CriuVersion {
        self.version
    }

    fn run(
        &self,
        action: &'static str,
        args: &[OsString],
        log_path: &Path,
        monitor: &mut dyn Monitor,
    ) -> Result<(), CriuError> {
        Criu::run(self, action, args, log_path, monitor)
    }
}

/// A located, version-checked criu binary.
#[derive(Debug, Clone)]
pub struct Criu {
    pub path: PathBuf,
    pub version: CriuVersion,
}

impl Criu {
    /// Finds criu in `$CKPT_CRIU` or `PATH` and checks its version.
    pub fn locate() -> Result<Criu, CriuError> {
        let path = match std::env::var_os("CKPT_CRIU") {
            Some(p) => PathBuf::from(p),
            None => find_in_path("criu").ok_or(CriuError::NotInstalled)?,
        };
        let out = Command::new(&path)
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .map_err(|source| CriuError::Spawn {
                path: path.clone(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let version = CriuVersion::parse(&text).ok_or_else(|| CriuError::UnknownVersion {
            path: path.clone(),
            output: text.trim().to_string(),
        })?;
        if version < MINIMUM {
            return Err(CriuError::TooOld { found: version, path });
        }
        Ok(Criu { path, version })
    }

    /// Runs `criu <args>` (a dump) and waits for it, as `monitor` says.
    /// `log_path` is where the arguments send CRIU's log. On an interrupt
    /// CRIU gets SIGTERM, which ends it (the tasks it held are released by
    /// the kernel and CRIU's parasite cures itself).
    pub fn run(
        &self,
        action: &'static str,
        args: &[OsString],
        log_path: &Path,
        monitor: &mut dyn Monitor,
    ) -> Result<(), CriuError> {
        ::log::debug!(
            "running {} {}",
            self.path.display(),
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ")
        );
        let mut child = Command::new(&self.path)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| CriuError::Spawn {
                path: self.path.clone(),
                source,
            })?;
        monitor.spawned(child.id());
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let mut forwarded = false;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => {}
                Err(source) => {
                    return Err(CriuError::Spawn {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
            match monitor.tick() {
                Verdict::Go => {}
                Verdict::Interrupt => {
                    if !forwarded {
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
                        forwarded = true;
                    }
                }
                Verdict::GiveUp { reason, stop_criu } => {
                    if stop_criu {
                        stop(&mut child, pid);
                    } else {
                        ::log::warn!("criu (pid {pid}) is left running");
                    }
                    return Err(CriuError::Stalled {
                        reason,
                        log_path: log_path.to_path_buf(),
                    });
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if status.success() {
            return Ok(());
        }
        let stderr = child.stderr.take().map(read_what_is_there).unwrap_or_default();
        let log_text = std::fs::read_to_string(log_path).unwrap_or_default();
        let mut errors = log::error_lines(&log_text);
        if errors.is_empty() {
            errors = stderr
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string)
                .collect();
        }
        Err(CriuError::Failed {
            action,
            status: describe_status(status),
            log_path: log_path.to_path_buf(),
            hint: log::hint(&log_text),
            errors,
        })
    }
}

/// What CRIU left in its stderr pipe, read without waiting for the end
/// of the pipe: CRIU has exited, but a child it forked may hold the write
/// end for ever (CRIU killed during its kernel-feature probes leaves a
/// ptrace test child stopped, never to run again), so reading to EOF could
/// wait for ever. What CRIU wrote is in the pipe already.
fn read_what_is_there(pipe: std::process::ChildStderr) -> String {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    let nonblocking = nix::fcntl::fcntl(
        pipe.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
    let mut bytes = Vec::new();
    if nonblocking.is_ok() {
        let mut pipe = pipe;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // WouldBlock: nothing more, though the pipe is still open.
                Err(_) => break,
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Asks CRIU to give up the way its own timeout does (SIGALRM: the
/// current syscall fails with EINTR and CRIU unwinds, curing its parasite
/// and releasing the tasks), then SIGKILLs it if it is still there.
fn stop(child: &mut std::process::Child, pid: nix::unistd::Pid) {
    use nix::sys::signal::{kill, Signal};
    let _ = kill(pid, Signal::SIGALRM);
    let deadline = std::time::Instant::now() + UNWIND;
    while std::time::Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = kill(pid, Signal::SIGKILL);
    let _ = child.wait();
}

fn describe_status(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit status {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => status.to_string(),
    }
}

/// The first executable `name` in `PATH`.
pub fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| {
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    struct Quiet;
    impl Monitor for Quiet {
        fn spawned(&mut self, _pid: u32) {}
        fn tick(&mut self) -> Verdict {
            Verdict::Go
        }
    }

    /// Regression: CRIU SIGKILLed during its kernel-feature probes leaves
    /// the ptrace test child it forked stopped for ever, and that child
    /// still holds CRIU's stderr; ckpt read stderr to EOF after CRIU exited
    /// and so hung for ever (seen in e2e_runc's criu_killed_mid_dump on a
    /// loaded host). A script stands in for CRIU: it forks a child that
    /// stops itself holding stderr, says an error, and exits.
    #[test]
    fn criu_exit_with_a_stopped_child_holding_stderr_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        let (script, pid_file) = (dir.path().join("criu"), dir.path().join("child.pid"));
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\nsh -c 'echo $$ > {}; kill -STOP $$' &\nwhile [ ! -s {} ]; do sleep 0.01; done\n\
                 echo 'Error (criu/kerndat.c:1): probe killed' >&2\nexit 3\n",
                pid_file.display(),
                pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let criu = Criu {
            path: script,
            version: MINIMUM,
        };
        let log = dir.path().join("dump.log");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(criu.run("dump", &[], &log, &mut Quiet));
        });
        let outcome = rx.recv_timeout(Duration::from_secs(20));
        let child: Option<i32> = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        if let Some(pid) = child {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        match outcome.expect("Criu::run still waits for a pipe a stopped child holds") {
            Err(CriuError::Failed { status, errors, .. }) => {
                assert_eq!(status, "exit status 3");
                assert_eq!(errors, vec!["Error (criu/kerndat.c:1): probe killed".to_string()]);
            }
            other => panic!("{other:?}"),
        }
    }
}
