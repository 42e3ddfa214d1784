//! Fault injection, for tests that cut an operation at every step.
//!
//! Every step of the chunk store that changes the disk (create, write,
//! fsync, rename, unlink) first calls [`Faults::step`]. [`FailAt`] fails
//! step *n* and every step after it, which is what a crash at that point
//! looks like from the disk: nothing after it happens. The error is
//! [`ChunkError::Injected`], and no step of the chunk store cleans up
//! after an error (a crashed process would not either); the next session
//! sweeps what was left. Production code uses [`NoFaults`].
use super::ChunkError;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Called before each step that changes the disk.
pub trait Faults: Send + Sync + std::fmt::Debug {
    /// `Err` to make the step (and the operation) fail before it happens.
    fn step(&self, step: &'static str) -> Result<(), ChunkError>;
}

/// Never fails.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFaults;

impl Faults for NoFaults {
    fn step(&self, _step: &'static str) -> Result<(), ChunkError> {
        Ok(())
    }
}

/// Fails the step with index `at` (0-based, counted over every step seen)
/// and all later ones; records the names of the steps it let through.
#[derive(Debug)]
pub struct FailAt {
    at: usize,
    seen: AtomicUsize,
    passed: Mutex<Vec<&'static str>>,
}

impl FailAt {
    /// Fails from step `at` on. `usize::MAX` never fails (to count steps).
    pub fn new(at: usize) -> FailAt {
        FailAt {
            at,
            seen: AtomicUsize::new(0),
            passed: Mutex::new(Vec::new()),
        }
    }

    /// Whether a step has been failed.
    pub fn fired(&self) -> bool {
        self.seen.load(Ordering::SeqCst) > self.at
    }

    /// The steps that happened, in order.
    pub fn passed(&self) -> Vec<&'static str> {
        self.passed.lock().expect("not poisoned").clone()
    }
}

impl Faults for FailAt {
    fn step(&self, step: &'static str) -> Result<(), ChunkError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if n >= self.at {
            return Err(ChunkError::Injected { step });
        }
        self.passed.lock().expect("not poisoned").push(step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_from_the_chosen_step_on() {
        let f = FailAt::new(2);
        assert!(f.step("a").is_ok() && f.step("b").is_ok());
        assert!(!f.fired());
        assert!(matches!(f.step("c"), Err(ChunkError::Injected { step: "c" })));
        assert!(f.step("d").is_err(), "a crashed process takes no more steps");
        assert!(f.fired());
        assert_eq!(f.passed(), vec!["a", "b"]);
    }
}
