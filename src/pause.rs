//! **Pure.** Whose freeze is it: the user's pause, or ckpt's and CRIU's
//! own? ckpt and the watchdog both decide with these functions, so that
//! they never disagree about a container the user paused.
//!
//! What the decision rests on (CRIU 4.1 `criu/seize.c`, `cr-dump.c`, and
//! runs on this host):
//! - ckpt freezes the cgroup itself before CRIU starts (unless the user
//!   had paused it). CRIU then finds it FROZEN, seizes every task with
//!   ptrace and **thaws the cgroup again** while the tasks stay
//!   ptrace-stopped; its log then shows `Seized task`. From there until
//!   `Unlock network` (logged just before CRIU re-freezes the cgroup and
//!   lets the tasks go) CRIU does not touch the freezer: a freeze seen in
//!   that [`Phase::Dumping`] is somebody else's, a user's `runc pause` or
//!   `docker pause`.
//! - Because CRIU found the cgroup frozen, it restores FROZEN before it
//!   releases the tasks, on success and on its own error paths. The
//!   container's own code therefore never runs between ckpt's freeze and
//!   ckpt's decision after CRIU exits.
//! - A cgroup frozen during the dump stops CRIU's parasite inside the
//!   tasks, and CRIU waits for it forever. Killing CRIU then is not safe:
//!   a task frozen while it executes a syscall CRIU injected keeps CRIU's
//!   code and registers, and dies of SIGTRAP once thawed (seen here: the
//!   counter died after the thaw). Thawing is safe: the tasks are held by
//!   ptrace, so only CRIU's parasite runs, CRIU finishes, re-freezes and
//!   releases them frozen. So ckpt *lends* a paused container to CRIU
//!   ([`Step::Lend`]) and leaves it paused afterwards ([`settle`]).
//!
//! What stays ambiguous: a pause in the few milliseconds of
//! [`Phase::Seizing`] or [`Phase::Finishing`] (the freezer is ckpt's or
//! CRIU's then, so a pause there is not seen), and a `runc resume` while
//! ckpt lends the container (the cgroup is already thawed, so the resume
//! changes nothing ckpt can see; the container is left paused and ckpt
//! says so). Docker records pauses itself (`State.Paused`), and for Docker
//! containers that record decides.

use std::time::Duration;

/// Where CRIU's dump is, as its log shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Before CRIU has seized every task and thawed the cgroup: a freeze
    /// is ckpt's (or CRIU's).
    Seizing,
    /// CRIU holds the tasks with ptrace and the cgroup thawed: a freeze is
    /// the user's, and it stops CRIU's parasite.
    Dumping,
    /// CRIU is restoring the freezer state it found and releasing the
    /// tasks, or has exited: a freeze is CRIU's restore of ckpt's freeze.
    Finishing,
}

/// The phase a dump log shows. Only ever moves forward, so a caller may
/// keep the maximum of what it saw.
pub fn phase_of_log(log: &str) -> Phase {
    if log.contains("Unlock network") || log.contains("Unfreezing tasks into") {
        Phase::Finishing
    } else if log.contains("Seized task") {
        Phase::Dumping
    } else {
        Phase::Seizing
    }
}

/// Whether a frozen cgroup, read in `phase`, was frozen by the user.
pub fn frozen_by_user(phase: Phase, frozen: bool) -> bool {
    frozen && phase == Phase::Dumping
}

/// What ckpt has learnt of the user's wish about the freezer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Will {
    /// The container was paused when ckpt started.
    pub paused_before: bool,
    /// The user paused it during the dump (and has not resumed it since,
    /// as far as ckpt can see).
    pub paused_during: bool,
    /// Docker's record of a pause, for Docker containers; it overrides
    /// what the freezer suggests.
    pub docker_paused: Option<bool>,
}

impl Will {
    /// Updates `paused_during` from one reading of the freezer in `phase`.
    /// Only a reading in [`Phase::Dumping`] says anything about the user:
    /// frozen means paused, thawed means resumed, unless ckpt itself lent
    /// the container to CRIU (then a thawed cgroup is ckpt's doing).
    pub fn observe(&mut self, phase: Phase, frozen: bool, lent: bool) {
        if phase != Phase::Dumping {
            return;
        }
        if frozen {
            self.paused_during = true;
        } else if !lent {
            self.paused_during = false;
        }
    }

    /// Whether the container must be left paused.
    pub fn wants_paused(&self) -> bool {
        self.docker_paused.unwrap_or(self.paused_before || self.paused_during)
    }
}

/// How long a user's pause during the dump is left alone before ckpt lends
/// the container to CRIU: a pause and resume within it goes unnoticed.
pub const LEND_AFTER: Duration = Duration::from_secs(1);

/// What to do, during the dump, about a freeze.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Wait,
    /// Thaw the cgroup so that CRIU's parasite can run (the tasks stay
    /// held by CRIU) and CRIU can finish; leave it paused afterwards.
    Lend,
}

/// During the dump: `paused_for` is how long the cgroup has read frozen
/// by the user (see [`frozen_by_user`]), `None` when it does not.
pub fn during_dump(paused_for: Option<Duration>) -> Step {
    match paused_for {
        Some(d) if d >= LEND_AFTER => Step::Lend,
        _ => Step::Wait,
    }
}

/// What to do with the freezer once CRIU is gone (or about to be stopped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Leave,
    Thaw,
    /// Pause it again: CRIU thawed it while it held the tasks and was
    /// stopped before it could restore the pause.
    Freeze,
}

/// The freezer action that leaves the container as the user wants it.
pub fn settle(will: &Will, frozen: bool) -> Action {
    match (will.wants_paused(), frozen) {
        (true, false) => Action::Freeze,
        (false, true) => Action::Thaw,
        _ => Action::Leave,
    }
}

/// Before CRIU is stopped (killed, or signalled to unwind): thaw first if
/// the user froze it in [`Phase::Dumping`], since a task frozen while it
/// runs CRIU's injected code dies when CRIU is gone (see the module
/// header). The freeze is restored afterwards by [`settle`].
pub fn thaw_before_stopping_criu(phase: Phase, frozen: bool) -> bool {
    frozen_by_user(phase, frozen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    #[test]
    fn the_log_shows_the_phase() {
        assert_eq!(phase_of_log(""), Seizing);
        assert_eq!(
            phase_of_log("(00.14) freezing processes: 1 attempts done\n(00.14) SEIZE 5 (comm x): success\n"),
            Seizing
        );
        assert_eq!(phase_of_log("(00.15) Seized task 22530, state 1\n"), Dumping);
        assert_eq!(
            phase_of_log("(00.15) Seized task 1, state 1\n(00.29) net: Unlock network\n"),
            Finishing
        );
        assert_eq!(phase_of_log("(00.35) Unfreezing tasks into 1\n"), Finishing);
    }

    #[test]
    fn only_a_freeze_while_criu_dumps_is_the_users() {
        // (phase, frozen) -> the user's?
        let table = [
            (Seizing, false, false),
            (Seizing, true, false),
            (Dumping, false, false),
            (Dumping, true, true),
            (Finishing, false, false),
            (Finishing, true, false),
        ];
        for (phase, frozen, users) in table {
            assert_eq!(frozen_by_user(phase, frozen), users, "{phase:?} frozen={frozen}");
            assert_eq!(thaw_before_stopping_criu(phase, frozen), users);
        }
    }

    #[test]
    fn the_will_follows_the_freezer_only_while_criu_dumps() {
        let mut w = Will::default();
        w.observe(Seizing, true, false);
        assert!(!w.wants_paused(), "ckpt's own freeze");
        w.observe(Dumping, true, false);
        assert!(w.wants_paused(), "paused during the dump");
        w.observe(Dumping, false, false);
        assert!(!w.wants_paused(), "resumed before ckpt lent it");
        w.observe(Dumping, true, false);
        w.observe(Dumping, false, true);
        assert!(w.wants_paused(), "thawed by ckpt's lend, still the user's pause");
        w.observe(Finishing, false, true);
        assert!(w.wants_paused());
        let before = Will {
            paused_before: true,
            ..Will::default()
        };
        assert!(before.wants_paused());
    }

    #[test]
    fn docker_record_decides_for_docker_containers() {
        let w = Will {
            paused_before: false,
            paused_during: true,
            docker_paused: Some(false),
        };
        assert!(!w.wants_paused(), "docker unpause while ckpt lent it");
        let w = Will {
            docker_paused: Some(true),
            ..Will::default()
        };
        assert!(w.wants_paused(), "docker pause ckpt could not see");
    }

    #[test]
    fn a_pause_is_lent_after_a_second() {
        assert_eq!(during_dump(None), Step::Wait);
        assert_eq!(during_dump(Some(Duration::from_millis(300))), Step::Wait);
        assert_eq!(during_dump(Some(LEND_AFTER)), Step::Lend);
    }

    #[test]
    fn settle_leaves_it_as_the_user_wants() {
        let paused = Will {
            paused_during: true,
            ..Will::default()
        };
        let running = Will::default();
        // (will, frozen now) -> action
        let table = [
            (running, false, Action::Leave),
            (running, true, Action::Thaw),
            (paused, true, Action::Leave),
            (paused, false, Action::Freeze),
        ];
        for (will, frozen, action) in table {
            assert_eq!(settle(&will, frozen), action, "{will:?} frozen={frozen}");
        }
    }
}
