//! Watches a running `criu dump` for `ckpt create`: the progress bar, a
//! user's pause (lent to CRIU, then kept, see [`crate::pause`]), pending
//! interrupts, and the bound on the wait.
//!
//! **The bound is "no progress", not a total time.** A dump's length grows
//! with the container's memory (a 1 GiB dump takes seconds here, a large
//! one minutes) and with the disk, so any fixed or size-scaled limit is
//! either too short for some honest dump or far too long for a stuck one.
//! A dumping CRIU never goes quiet for long: at `-v4` it logs every step and
//! its images grow while it writes pages. So the bound is the time without
//! a byte added to the staging directory (log included): [`NO_PROGRESS`].
//! The longest quiet spell measured here was well under a second (see
//! docs/reliability.md), whatever the image size; 60 s leaves room for a
//! slow or busy disk. A user's pause that ckpt cannot lend to CRIU (the
//! thaw does not take, e.g. a frozen parent cgroup) has its own, shorter
//! bound, [`PAUSED_NO_PROGRESS`].
//!
//! Reads only, except the thaw of a lend; never kills anything itself.

use crate::cgroups::FreezerDir;
use crate::criu::runner::{Monitor, Verdict};
use crate::freezer::{self, FreezeGuard, State};
use crate::pause::{self, Phase, Step};
use crate::progress::DirProgress;
use crate::watchdog::Watchdog;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// CRIU is stopped after this long without progress.
pub const NO_PROGRESS: Duration = Duration::from_secs(60);
/// A pause ckpt could not lend to CRIU ends the wait after this long
/// without progress (CRIU cannot progress while its parasite is frozen).
pub const PAUSED_NO_PROGRESS: Duration = Duration::from_secs(10);
/// How often the freezer, the log and the staging directory are read.
const EVERY: Duration = Duration::from_millis(100);

/// Why the wait ends, from how long nothing has moved (PURE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Frozen by the user and the lend did not help: CRIU is left running.
    Paused,
    /// Nothing moved for [`NO_PROGRESS`]: CRIU is stopped.
    Stuck,
}

/// PURE: whether to stop waiting, given the time since the staging
/// directory last grew and whether the user has the cgroup frozen now.
pub fn stall(idle: Duration, frozen_by_user: bool) -> Option<Stall> {
    if frozen_by_user && idle >= PAUSED_NO_PROGRESS {
        Some(Stall::Paused)
    } else if idle >= NO_PROGRESS {
        Some(Stall::Stuck)
    } else {
        None
    }
}

/// The monitor of one dump.
pub struct DumpWatch<'a> {
    pub id: String,
    pub freezer: FreezerDir,
    pub staging: PathBuf,
    pub log_path: PathBuf,
    pub guard: &'a mut FreezeGuard,
    pub watchdog: &'a mut Watchdog,
    pub progress: &'a mut DirProgress,
    phase: Phase,
    log_seen: u64,
    log_tail: String,
    paused_since: Option<Instant>,
    lent: bool,
    told_paused: bool,
    last_look: Option<Instant>,
    size: u64,
    grew_at: Instant,
    /// The longest time the staging directory did not grow (logged, for
    /// the measurement behind [`NO_PROGRESS`]).
    pub longest_idle: Duration,
}

impl<'a> DumpWatch<'a> {
    /// A monitor for the dump of container `id` into `staging`.
    pub fn new(
        id: &str,
        freezer: &FreezerDir,
        staging: PathBuf,
        log_path: PathBuf,
        guard: &'a mut FreezeGuard,
        watchdog: &'a mut Watchdog,
        progress: &'a mut DirProgress,
    ) -> DumpWatch<'a> {
        DumpWatch {
            id: id.to_string(),
            freezer: freezer.clone(),
            staging,
            log_path,
            guard,
            watchdog,
            progress,
            phase: Phase::Seizing,
            log_seen: 0,
            log_tail: String::new(),
            paused_since: None,
            lent: false,
            told_paused: false,
            last_look: None,
            size: 0,
            grew_at: Instant::now(),
            longest_idle: Duration::ZERO,
        }
    }

    /// Whether ckpt lent a paused container to CRIU during this dump.
    pub fn lent(&self) -> bool {
        self.lent
    }

    /// Reads what CRIU logged since the last look and advances the phase.
    /// Only the new bytes are read; a short tail is kept so that a marker
    /// split between two reads is still found.
    fn read_log(&mut self) {
        let Ok(mut f) = std::fs::File::open(&self.log_path) else {
            return;
        };
        if f.seek(SeekFrom::Start(self.log_seen)).is_err() {
            return;
        }
        let mut new = Vec::new();
        if f.read_to_end(&mut new).is_err() || new.is_empty() {
            return;
        }
        self.log_seen += new.len() as u64;
        let text = format!("{}{}", self.log_tail, String::from_utf8_lossy(&new));
        self.phase = self.phase.max(pause::phase_of_log(&text));
        let keep = text.len().saturating_sub(64);
        let keep = (keep..=text.len())
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(text.len());
        self.log_tail = text[keep..].to_string();
    }

    fn staging_size(&self) -> u64 {
        std::fs::read_dir(&self.staging)
            .map(|d| d.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    }

    /// Thaws a container the user paused so that CRIU can finish; CRIU
    /// holds every task stopped, and re-freezes before it releases them.
    fn lend(&mut self) {
        if !self.lent {
            log::warn!(
                "container {} was paused while CRIU dumped it; CRIU cannot finish while it is paused, so ckpt thaws it for CRIU (its processes stay stopped, held by CRIU) and leaves it paused afterwards",
                self.id
            );
        }
        self.lent = true;
        if let Err(e) = freezer::thaw(&self.freezer, Duration::from_secs(1)) {
            log::warn!("{e}");
        }
    }
}

impl Monitor for DumpWatch<'_> {
    fn spawned(&mut self, pid: u32) {
        self.watchdog.announce_criu(pid);
    }

    fn tick(&mut self) -> Verdict {
        self.progress.tick();
        let interrupted = crate::interrupt::pending().is_some();
        if !interrupted && self.last_look.is_some_and(|t| t.elapsed() < EVERY) {
            return Verdict::Go;
        }
        self.last_look = Some(Instant::now());
        // The freezer first, then the log: a freeze read before the log
        // still shows Dumping happened before CRIU's own re-freeze.
        let frozen = freezer::state(&self.freezer).is_ok_and(|s| s != State::Thawed);
        self.read_log();
        let by_user = pause::frozen_by_user(self.phase, frozen);
        self.guard.will_mut().observe(self.phase, frozen, self.lent);
        let wants = self.guard.will().wants_paused();
        if wants != self.told_paused {
            self.watchdog.announce_paused(wants);
            self.told_paused = wants;
        }
        let now = Instant::now();
        let paused_for = if by_user {
            Some(now - *self.paused_since.get_or_insert(now))
        } else {
            self.paused_since = None;
            None
        };
        if interrupted {
            if pause::thaw_before_stopping_criu(self.phase, frozen) {
                self.lend();
                // Let a task frozen in CRIU's injected code get back to CRIU
                // before CRIU is ended.
                std::thread::sleep(Duration::from_millis(200));
            }
            return Verdict::Interrupt;
        }
        if pause::during_dump(paused_for) == Step::Lend {
            self.lend();
        }
        let size = self.staging_size();
        if size != self.size {
            self.size = size;
            self.grew_at = now;
        }
        let idle = now - self.grew_at;
        self.longest_idle = self.longest_idle.max(idle);
        match stall(idle, by_user) {
            None => Verdict::Go,
            Some(Stall::Paused) => Verdict::GiveUp {
                reason: format!(
                    "the container {id} was paused while CRIU dumped it, and ckpt could not thaw it for CRIU (is a parent cgroup frozen?): CRIU made no progress for {}s. CRIU was left running, waiting for the paused processes, because stopping it now could kill the process it is working in. Resume the container (`runc resume {id}`, `docker unpause {id}`, or thaw the parent cgroup); CRIU then fails on its own and releases it. Nothing was saved",
                    PAUSED_NO_PROGRESS.as_secs(),
                    id = self.id
                ),
                stop_criu: false,
            },
            Some(Stall::Stuck) => Verdict::GiveUp {
                reason: format!(
                    "CRIU made no progress for {}s (no log line, no image byte) and was stopped; its log shows the step it was stuck at",
                    NO_PROGRESS.as_secs()
                ),
                stop_criu: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_is_bounded_by_progress() {
        let s = Duration::from_secs;
        // (idle, frozen by the user) -> verdict
        let table = [
            (s(0), false, None),
            (s(9), true, None),
            (s(10), true, Some(Stall::Paused)),
            (s(10), false, None),
            (s(59), false, None),
            (s(60), false, Some(Stall::Stuck)),
            (s(60), true, Some(Stall::Paused)),
        ];
        for (idle, paused, verdict) in table {
            assert_eq!(stall(idle, paused), verdict, "{idle:?} paused={paused}");
        }
    }
}
