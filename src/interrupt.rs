//! SIGINT/SIGTERM/SIGHUP while ckpt works: remember the signal instead of
//! dying, so that the code holding a frozen container can thaw it, clean up
//! its staging directory and then exit with 128+signal.

use std::sync::atomic::{AtomicI32, Ordering};

static PENDING: AtomicI32 = AtomicI32::new(0);

extern "C" fn remember(sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    PENDING.store(sig, Ordering::SeqCst);
}

/// Installs the handlers. Call once, early.
pub fn install() {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(remember), SaFlags::SA_RESTART, SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores into an atomic, which is
        // async-signal-safe, and it is installed before any thread starts.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// The signal received since start, if any.
pub fn pending() -> Option<i32> {
    match PENDING.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// The error returned when an interrupt stopped a command.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by signal {0}; the container was left as it was before ckpt started")]
pub struct Interrupted(pub i32);
