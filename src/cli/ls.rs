//! `ckpt ls`'s arguments.

use clap::Args;

/// `ckpt ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON (an array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Only this container's checkpoints.
    pub container: Option<String>,
}
