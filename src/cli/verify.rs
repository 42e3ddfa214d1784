//! `ckpt verify`'s arguments.

use clap::Args;

/// `ckpt verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Container id (or Docker name).
    pub container: String,
    /// Checkpoint name.
    pub name: String,
}
