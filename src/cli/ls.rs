//! `ckpt ls`'s arguments.

use clap::Args;

/// `ckpt ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON (an array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root); the container's own
    /// `<base>/<id>/checkpoints` is accepted too.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Only this container's checkpoints.
    pub container: Option<String>,
}
