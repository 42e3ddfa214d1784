//! `ckpt prune`'s arguments.

use clap::Args;
use std::time::Duration;

/// `ckpt prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep the newest N complete checkpoints of the container (N ≥ 1).
    #[arg(long, value_name = "N")]
    pub retain: Option<usize>,
    /// Remove only checkpoints created more than DURATION ago (e.g. 7d,
    /// 12h, 30m). With --retain, a checkpoint goes only when both say so.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub older_than: Option<Duration>,
    /// Only say what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root).
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Container id.
    pub container: String,
}

/// A duration as humantime reads it (`7d`, `12h 30m`, `90s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 7d, 12h or 30m)"))
}
