//! `ckpt start`'s arguments.

use clap::Args;

/// `ckpt start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The checkpoint to restore.
    #[arg(long, value_name = "NAME")]
    pub checkpoint: String,
    /// Restore as a new container with this id instead of the original.
    #[arg(long, value_name = "NEW_ID")]
    pub name: Option<String>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Container id the checkpoint belongs to.
    pub container: String,
}
