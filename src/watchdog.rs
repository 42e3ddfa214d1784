//! A watchdog that outlives ckpt: if ckpt dies (even by SIGKILL) while it
//! has a container frozen, the watchdog kills the CRIU it was running and
//! thaws the container, within a bounded time and with no further command.
//!
//! The watchdog is `ckpt __watchdog`, started in its own session with a
//! pipe as stdin. ckpt writes `log <path>` (CRIU's dump log), `criu <pid>`
//! when CRIU starts, `paused`/`resumed` when it sees the user pause or
//! resume the container during the dump, and `done` when nothing is
//! frozen any more. End of file without `done` means ckpt died: the kernel
//! closes the pipe whatever killed it.
//!
//! The watchdog then applies ckpt's own rules ([`crate::pause`]): a
//! container the user paused is thawed only for as long as it takes to
//! stop CRIU safely, and is left paused.

use crate::cgroups::{CgroupVersion, FreezerDir};
use crate::freezer::FreezerError;
use crate::pause;
use crate::procfs::ProcRoot;
use std::io::{BufRead, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// The running watchdog, from ckpt's side.
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    pipe: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts a watchdog for `freezer`: ckpt's own binary `exe` as
    /// `__watchdog`. With `paused_before` (the user had
    /// paused the container) it leaves the container paused whatever else
    /// happens.
    pub fn spawn(
        exe: Option<&std::path::Path>,
        freezer: &FreezerDir,
        paused_before: bool,
    ) -> std::io::Result<Watchdog> {
        let exe = exe.ok_or(std::io::ErrorKind::NotFound)?;
        let mut cmd = Command::new(exe);
        cmd.arg("__watchdog")
            .arg(&freezer.dir)
            .arg(match freezer.version {
                CgroupVersion::V1 => "v1",
                CgroupVersion::V2 => "v2",
            })
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        if paused_before {
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
        self.say(&format!("criu {pid}"));
    }

    /// Tells the watchdog where CRIU logs, so that it can tell the phase
    /// of the dump itself (see [`crate::pause::phase_of_log`]).
    pub fn announce_log(&mut self, path: &std::path::Path) {
        self.say(&format!("log {}", path.display()));
    }

    /// Tells the watchdog whether the user wants the container paused.
    pub fn announce_paused(&mut self, paused: bool) {
        self.say(if paused { "paused" } else { "resumed" });
    }

    fn say(&mut self, line: &str) {
        if let Some(p) = self.pipe.as_mut() {
            let _ = writeln!(p, "{line}");
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
    pub log: Option<PathBuf>,
    /// The last `paused`/`resumed`: whether the user paused it mid-dump.
    pub paused: bool,
    pub done: bool,
}

/// Reads the protocol lines.
pub fn listen(input: impl BufRead) -> Heard {
    let mut heard = Heard::default();
    for line in input.lines().map_while(Result::ok) {
        let line = line.trim();
        match line {
            "done" => heard.done = true,
            "paused" => heard.paused = true,
            "resumed" => heard.paused = false,
            _ => {
                if let Some(pid) = line.strip_prefix("criu ").and_then(|p| p.parse().ok()) {
                    heard.criu = Some(pid);
                } else if let Some(path) = line.strip_prefix("log ") {
                    heard.log = Some(PathBuf::from(path));
                }
            }
        }
    }
    heard
}

/// The watchdog process's main: waits for ckpt to finish or die; if ckpt
/// died, stops its CRIU and leaves the container as the user wants it.
pub fn run(proc: &ProcRoot, dir: PathBuf, version: &str, paused_before: bool) -> Result<(), FreezerError> {
    let heard = listen(std::io::stdin().lock());
    if heard.done {
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
    let frozen = || crate::freezer::state(&freezer).map(|s| s != crate::freezer::State::Thawed);
    let phase = || {
        heard
            .log
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| pause::phase_of_log(&t))
            .unwrap_or(pause::Phase::Seizing)
    };
    let mut will = pause::Will {
        paused_before,
        paused_during: heard.paused,
        docker_paused: None,
    };
    if let Some(pid) = heard.criu.filter(|&p| is_criu(proc, p)) {
        let (phase, now_frozen) = (phase(), frozen().unwrap_or(false));
        will.observe(phase, now_frozen, false);
        if pause::thaw_before_stopping_criu(phase, now_frozen) {
            // The user's pause stops CRIU's parasite; killing CRIU then can
            // kill the task it was injecting into. Let the tasks (held by
            // CRIU) get back to CRIU first.
            let _ = crate::freezer::thaw(&freezer, Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(200));
        }
        kill_criu(proc, pid);
    }
    let Ok(now_frozen) = frozen() else { return Ok(()) };
    match pause::settle(&will, now_frozen) {
        pause::Action::Leave => {}
        pause::Action::Thaw => {
            crate::freezer::thaw(&freezer, Duration::from_secs(10))?;
            eprintln!(
                "ckpt watchdog: ckpt stopped while {} was frozen; thawed it",
                freezer.dir.display()
            );
        }
        pause::Action::Freeze => {
            crate::freezer::freeze(&freezer, Duration::from_secs(10))?;
            eprintln!(
                "ckpt watchdog: ckpt stopped while the user had {} paused; left it paused",
                freezer.dir.display()
            );
        }
    }
    Ok(())
}

fn is_criu(proc: &ProcRoot, pid: i32) -> bool {
    proc.process(pid)
        .comm()
        .ok()
        .flatten()
        .is_some_and(|c| c.trim() == "criu")
}

/// SIGKILLs `pid` if it is still a criu, and waits (bounded) for it to go:
/// a CRIU left running would re-freeze the container when it finishes.
fn kill_criu(proc: &ProcRoot, pid: i32) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if !is_criu(proc, pid) {
        return;
    }
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        match proc.process(pid).stat() {
            Err(_) => return,
            Ok(s) if s.is_dead() => return,
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
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
                done: true,
                ..Heard::default()
            }
        );
        assert_eq!(
            listen("log /s/dump.log\ncriu 42\npaused\n".as_bytes()),
            Heard {
                criu: Some(42),
                log: Some(PathBuf::from("/s/dump.log")),
                paused: true,
                done: false
            }
        );
        assert!(!listen("paused\nresumed\n".as_bytes()).paused);
        assert_eq!(
            listen("".as_bytes()),
            Heard::default(),
            "EOF at once: ckpt died before CRIU started"
        );
        assert_eq!(listen("garbage\ncriu x\n".as_bytes()), Heard::default());
    }
}
