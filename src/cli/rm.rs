//! `ckpt rm`'s arguments.

use clap::Args;

/// `ckpt rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root); the container's own
    /// `<base>/<id>/checkpoints` is accepted too.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Container id.
    pub container: String,
    /// Checkpoint name.
    pub name: String,
}
