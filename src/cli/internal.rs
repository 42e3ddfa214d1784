//! The arguments of ckpt's hidden helpers, `__relay` and `__watchdog`:
//! processes ckpt starts itself, never a user.

use clap::Args;
use std::path::PathBuf;

/// `ckpt __watchdog`.
#[derive(Debug, Args)]
pub struct WatchdogArgs {
    /// The freezer cgroup directory.
    pub dir: PathBuf,
    /// `v1` or `v2`.
    pub cgroup_version: String,
    /// The user had the container paused: do not thaw it.
    #[arg(long)]
    pub leave_frozen: bool,
}

/// `ckpt __relay`.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// File to append to.
    pub output: PathBuf,
}
