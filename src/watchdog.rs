//! A watchdog that outlives ckpt: if ckpt dies (even by SIGKILL) while it
//! has a container frozen, the watchdog kills the CRIU it was running and
//! thaws the container, within a bounded time and with no further command.
//!
//! The watchdog is `ckpt __watchdog`, started in its own session with a
//! pipe as stdin. ckpt writes `criu <pid>` when CRIU starts and `done`
//! when nothing is frozen any more. End of file without `done` means ckpt
//! died: the kernel closes the pipe whatever killed it.

use crate::discovery::cgroups::{CgroupVersion, FreezerDir};
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The running watchdog, from ckpt's side.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog for `freezer`. With `was_frozen` (the user had
    /// paused the container) it only kills CRIU and leaves the freezer be.
    pub fn spawn(freezer: &FreezerDir, was_frozen: bool) -> std::io::Result<Watchdog> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("__watchdog")
            .arg(&freezer.dir)
            .arg(match freezer.version {
                CgroupVersion::V1 => "v1",
                CgroupVersion::V2 => "v2",
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        if was_frozen {
            cmd.arg("--leave-frozen");
        }
        // SAFETY: setsid is async-signal-safe. Its own session keeps the
        // watchdog alive when the terminal's Ctrl-C hits ckpt's group.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid()?;
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let pipe = child.stdin.take();
        Ok(Watchdog { child, pipe })
    }

    /// Tells the watchdog which CRIU to kill should ckpt die.
    pub fn announce_criu(&mut self, pid: u32) {
        if let Some(p) = self.pipe.as_mut() {
            let _ = writeln!(p, "criu {pid}");
            let _ = p.flush();
        }
    }

    /// Nothing is frozen any more: the watchdog exits without acting.
    pub fn disarm(mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = writeln!(p, "done");
        }
        let _ = self.child.wait();
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Closing the pipe without "done" makes the watchdog check the
        // freezer itself, a harmless second look after ckpt's own thaw.
        drop(self.pipe.take());
        let _ = self.child.wait();
    }
}

/// What ckpt said before the pipe closed (PURE).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    pub criu: Option<i32>,
    pub done: bool,
}

/// Reads the protocol lines.
pub fn listen(input: impl BufRead) -> Heard {
    let mut heard = Heard::default();
    for line in input.lines().map_while(Result::ok) {
        let line = line.trim();
        if line == "done" {
            heard.done = true;
        } else if let Some(pid) = line.strip_prefix("criu ").and_then(|p| p.parse().ok()) {
            heard.criu = Some(pid);
        }
    }
    heard
}

/// The watchdog process's main: waits for ckpt to finish or die, then
/// kills CRIU and thaws if ckpt died.
pub fn run(dir: std::path::PathBuf, version: &str, leave_frozen: bool) -> anyhow::Result<()> {
    let heard = listen(std::io::stdin().lock());
    if heard.done {
        return Ok(());
    }
    if let Some(pid) = heard.criu {
        kill_criu(pid);
    }
    if leave_frozen {
        return Ok(());
    }
    let freezer = FreezerDir {
        dir,
        version: if version == "v2" {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        },
    };
    match crate::freezer::state(&freezer) {
        Ok(crate::freezer::State::Thawed) | Err(_) => Ok(()),
        Ok(_) => {
            crate::freezer::thaw(&freezer, Duration::from_secs(10))?;
            eprintln!(
                "ckpt watchdog: ckpt stopped while {} was frozen; thawed it",
                freezer.dir.display()
            );
            Ok(())
        }
    }
}

/// SIGKILLs `pid` if it is still a criu, and waits (bounded) for it to go:
/// a CRIU left running would re-freeze the container when it finishes.
fn kill_criu(pid: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let is_criu = || {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| c.trim() == "criu")
            .unwrap_or(false)
    };
    if !is_criu() {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        match state.and_then(|s| crate::discovery::parse_stat_state_and_start(&s)) {
            None | Some(('Z', _)) | Some(('X', _)) => return,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_to_the_protocol() {
        assert_eq!(
            listen("criu 42\ndone\n".as_bytes()),
            Heard {
                criu: Some(42),
                done: true
            }
        );
        assert_eq!(
            listen("criu 42\n".as_bytes()),
            Heard {
                criu: Some(42),
                done: false
            }
        );
        assert_eq!(
            listen("".as_bytes()),
            Heard::default(),
            "EOF at once: ckpt died before CRIU started"
        );
        assert_eq!(listen("garbage\ncriu x\n".as_bytes()), Heard::default());
    }
}
