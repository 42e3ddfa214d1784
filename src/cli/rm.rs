//! `ckpt rm`'s arguments.

use clap::Args;

/// `ckpt rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Container id.
    pub container: String,
    /// Checkpoint name.
    pub name: String,
}
