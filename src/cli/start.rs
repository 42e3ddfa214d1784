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
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root); the container's own
    /// `<base>/<id>/checkpoints` is accepted too.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Container id the checkpoint belongs to.
    pub container: String,
}
