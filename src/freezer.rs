//! cgroup freezer: read the state, freeze, thaw, and a guard that leaves
//! the container as the user wants it on every exit path.
//!
//! ckpt freezes the container before CRIU runs (`--freeze-cgroup` then
//! finds it frozen, seizes the tasks, thaws, and re-freezes before it lets
//! them go). A CRIU that is killed can leave the cgroup frozen, or thawed
//! when the user had paused it, so whoever runs CRIU holds a
//! [`FreezeGuard`]: when it is dropped (success, error, or an interrupt that
//! unwinds) it thaws or re-freezes as [`crate::pause::settle`] decides, and
//! never thaws a container the user paused.
//! Functions take the cgroup directory, so tests use fixture trees.

use crate::cgroups::{CgroupVersion, FreezerDir};
use crate::pause::{self, Action, Will};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of the freezer.
#[derive(Debug, thiserror::Error)]
pub enum FreezerError {
    #[error("cannot {op} freezer file {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the cgroup {dir} is still frozen after {waited:?}; thaw it with `echo THAWED > {dir}/freezer.state` (v1) or `echo 0 > {dir}/cgroup.freeze` (v2)")]
    StillFrozen { dir: PathBuf, waited: Duration },
    #[error("the container's cgroup {dir} did not freeze within {waited:?} (a task in uninterruptible sleep?); it was thawed again")]
    NotFrozen { dir: PathBuf, waited: Duration },
}

/// The freezer state as the kernel reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum State {
    Thawed,
    Freezing,
    Frozen,
}

fn state_file(f: &FreezerDir) -> PathBuf {
    match f.version {
        CgroupVersion::V1 => f.dir.join("freezer.state"),
        CgroupVersion::V2 => f.dir.join("cgroup.freeze"),
    }
}

/// Reads the current state.
pub fn state(f: &FreezerDir) -> Result<State, FreezerError> {
    let path = state_file(f);
    let text = std::fs::read_to_string(&path).map_err(|source| FreezerError::Io {
        op: "read",
        path: path.clone(),
        source,
    })?;
    Ok(match f.version {
        CgroupVersion::V1 => parse_v1(&text),
        CgroupVersion::V2 => {
            if text.trim() == "1" {
                // cgroup.freeze says what was asked; cgroup.events says
                // whether the kernel got there.
                let events = std::fs::read_to_string(f.dir.join("cgroup.events")).unwrap_or_default();
                if events.lines().any(|l| l.trim() == "frozen 1") {
                    State::Frozen
                } else {
                    State::Freezing
                }
            } else {
                State::Thawed
            }
        }
    })
}

/// Parses v1 `freezer.state`.
pub fn parse_v1(text: &str) -> State {
    match text.trim() {
        "FROZEN" => State::Frozen,
        "FREEZING" => State::Freezing,
        _ => State::Thawed,
    }
}

/// Writes the freezer's target state until the kernel reports it, for at
/// most `timeout`; `Ok(false)` on timeout. (v1 may need the write repeated
/// while a task is in an uninterruptible sleep.)
fn drive(f: &FreezerDir, frozen: bool, timeout: Duration) -> Result<bool, FreezerError> {
    let path = state_file(f);
    let (value, goal) = match (f.version, frozen) {
        (CgroupVersion::V1, true) => ("FROZEN", State::Frozen),
        (CgroupVersion::V1, false) => ("THAWED", State::Thawed),
        (CgroupVersion::V2, true) => ("1", State::Frozen),
        (CgroupVersion::V2, false) => ("0", State::Thawed),
    };
    let start = Instant::now();
    loop {
        std::fs::write(&path, value).map_err(|source| FreezerError::Io {
            op: "write",
            path: path.clone(),
            source,
        })?;
        if state(f)? == goal {
            return Ok(true);
        }
        if start.elapsed() >= timeout {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Thaws the cgroup and waits (up to `timeout`) until it reads THAWED.
pub fn thaw(f: &FreezerDir, timeout: Duration) -> Result<(), FreezerError> {
    if drive(f, false, timeout)? {
        Ok(())
    } else {
        Err(FreezerError::StillFrozen {
            dir: f.dir.clone(),
            waited: timeout,
        })
    }
}

/// Freezes the cgroup and waits (up to `timeout`) until every task is
/// frozen. On timeout the cgroup is thawed again before returning the error,
/// so a failed freeze never leaves the container half frozen.
pub fn freeze(f: &FreezerDir, timeout: Duration) -> Result<(), FreezerError> {
    if drive(f, true, timeout)? {
        return Ok(());
    }
    let _ = thaw(f, Duration::from_secs(5));
    Err(FreezerError::NotFrozen {
        dir: f.dir.clone(),
        waited: timeout,
    })
}

/// The pids in the cgroup (`cgroup.procs`).
pub fn pids(f: &FreezerDir) -> Result<Vec<i32>, FreezerError> {
    let path = f.dir.join("cgroup.procs");
    let text = std::fs::read_to_string(&path).map_err(|source| FreezerError::Io {
        op: "read",
        path,
        source,
    })?;
    Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

/// Leaves the cgroup, on drop, as the user wants it: paused if it was
/// paused when the guard was made or the user paused it during the dump
/// (see [`crate::pause`]), thawed otherwise. ckpt's own freezes and
/// CRIU's are undone; a user's pause never is.
#[derive(Debug)]
pub struct FreezeGuard {
    freezer: FreezerDir,
    will: Will,
}

impl FreezeGuard {
    /// Records whether the user has the container paused now.
    pub fn new(freezer: FreezerDir) -> Result<FreezeGuard, FreezerError> {
        let paused_before = state(&freezer)? != State::Thawed;
        Ok(FreezeGuard {
            freezer,
            will: Will {
                paused_before,
                ..Will::default()
            },
        })
    }

    /// Whether the cgroup was frozen (paused by the user) before ckpt started.
    pub fn paused_before(&self) -> bool {
        self.will.paused_before
    }

    /// What ckpt knows of the user's wish, to update as the dump goes.
    pub fn will_mut(&mut self) -> &mut Will {
        &mut self.will
    }

    /// What ckpt knows of the user's wish.
    pub fn will(&self) -> Will {
        self.will
    }

    /// Thaws or re-freezes now as [`pause::settle`] says; returns what it did.
    pub fn settle(&self) -> Result<Action, FreezerError> {
        let frozen = match state(&self.freezer) {
            Ok(s) => s != State::Thawed,
            // A vanished cgroup (container stopped by the dump) has nothing to do.
            Err(FreezerError::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Action::Leave)
            }
            Err(e) => return Err(e),
        };
        let action = pause::settle(&self.will, frozen);
        match action {
            Action::Leave => {}
            Action::Thaw => thaw(&self.freezer, Duration::from_secs(10))?,
            Action::Freeze => freeze(&self.freezer, Duration::from_secs(10))?,
        }
        Ok(action)
    }

    /// The directory guarded.
    pub fn dir(&self) -> &Path {
        &self.freezer.dir
    }
}

impl Drop for FreezeGuard {
    fn drop(&mut self) {
        match self.settle() {
            Ok(Action::Thaw) => log::warn!("thawed {} (it was left frozen)", self.freezer.dir.display()),
            Ok(Action::Freeze) => log::warn!(
                "paused {} again (the user had paused it; CRIU was stopped before it could restore the pause)",
                self.freezer.dir.display()
            ),
            Ok(Action::Leave) => {}
            Err(e) => log::error!("{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1(dir: &Path, state: &str) -> FreezerDir {
        std::fs::write(dir.join("freezer.state"), state).unwrap();
        FreezerDir {
            dir: dir.to_path_buf(),
            version: CgroupVersion::V1,
        }
    }

    #[test]
    fn parses_v1_states() {
        assert_eq!(parse_v1("FROZEN\n"), State::Frozen);
        assert_eq!(parse_v1("FREEZING\n"), State::Freezing);
        assert_eq!(parse_v1("THAWED\n"), State::Thawed);
    }

    #[test]
    fn guard_thaws_what_it_did_not_find_frozen() {
        let d = tempfile::tempdir().unwrap();
        let f = v1(d.path(), "THAWED\n");
        let g = FreezeGuard::new(f.clone()).unwrap();
        std::fs::write(d.path().join("freezer.state"), "FROZEN\n").unwrap();
        drop(g);
        // A plain file stands in for the kernel file: the write is the thaw.
        assert_eq!(state(&f).unwrap(), State::Thawed);
    }

    #[test]
    fn guard_leaves_a_user_paused_container_paused() {
        let d = tempfile::tempdir().unwrap();
        let f = v1(d.path(), "FROZEN\n");
        let g = FreezeGuard::new(f.clone()).unwrap();
        assert!(g.paused_before());
        drop(g);
        assert_eq!(state(&f).unwrap(), State::Frozen);
    }

    #[test]
    fn guard_keeps_a_pause_made_during_the_dump_and_restores_one_criu_lost() {
        let d = tempfile::tempdir().unwrap();
        let f = v1(d.path(), "THAWED\n");
        let mut g = FreezeGuard::new(f.clone()).unwrap();
        g.will_mut().observe(pause::Phase::Dumping, true, false);
        std::fs::write(d.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert_eq!(g.settle().unwrap(), Action::Leave, "the user's pause is kept");
        // CRIU killed while it held the thawed tasks: pause them again.
        std::fs::write(d.path().join("freezer.state"), "THAWED\n").unwrap();
        assert_eq!(g.settle().unwrap(), Action::Freeze);
        drop(g);
        assert_eq!(state(&f).unwrap(), State::Frozen);
    }

    #[test]
    fn v2_reads_events() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("cgroup.freeze"), "1\n").unwrap();
        std::fs::write(d.path().join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        let f = FreezerDir {
            dir: d.path().to_path_buf(),
            version: CgroupVersion::V2,
        };
        assert_eq!(state(&f).unwrap(), State::Frozen);
        thaw(&f, Duration::from_millis(100)).unwrap_or(());
        assert_eq!(std::fs::read_to_string(d.path().join("cgroup.freeze")).unwrap(), "0");
    }

    #[test]
    fn vanished_cgroup_needs_no_thaw() {
        let d = tempfile::tempdir().unwrap();
        let f = v1(d.path(), "THAWED\n");
        let g = FreezeGuard::new(f).unwrap();
        std::fs::remove_file(d.path().join("freezer.state")).unwrap();
        assert_eq!(g.settle().unwrap(), Action::Leave);
    }
}
