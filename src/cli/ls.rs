//! `ckpt ls`'s arguments.

use clap::{Args, ValueEnum};

/// `ckpt ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON (an array of objects) instead of a table; the same as
    /// --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format: `table` (columns CONTAINER NAME CREATED SIZE FROZEN
    /// RUNNING BY, in that order) or `json`. With the global -q/--quiet,
    /// ls prints names only instead.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<LsFormat>,
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root); the container's own
    /// `<base>/<id>/checkpoints` is accepted too.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Only this container's checkpoints.
    pub container: Option<String>,
}

/// `ls --format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LsFormat {
    /// Fixed columns, a header line first.
    Table,
    /// An array of objects, oldest first.
    Json,
}
