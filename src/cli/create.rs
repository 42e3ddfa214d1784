//! `ckpt create`'s arguments.

use super::CriuFlags;
use clap::Args;

/// `ckpt create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Keep the container running after the checkpoint.
    #[arg(long, short = 'R')]
    pub leave_running: bool,
    /// Store the page files as content-addressed chunks shared with the
    /// container's other incremental checkpoints (only new chunks take
    /// space). Not for Docker containers.
    #[arg(long)]
    pub incremental: bool,
    /// After the checkpoint is published, keep only the newest N
    /// checkpoints of the container (as `ckpt prune --retain N`; the one
    /// just made is always kept).
    #[arg(long, value_name = "N")]
    pub retain: Option<usize>,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Also write the checkpoint as an archive to FILE (as `ckpt export`).
    #[arg(long, value_name = "FILE")]
    pub export: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub archive: super::ArchiveFlags,
    /// Print the result as JSON.
    /// Docker's `--checkpoint-dir`: write the checkpoint into
    /// `DIR/<id>/checkpoints/NAME` (DIR a store root) instead of --store.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    #[arg(long)]
    pub json: bool,
    /// When the dump fails, keep its whole directory (CRIU's log, work
    /// files and partial images) in <store>/<id>/dump-failed/ for
    /// debugging, instead of only the log (dump-failed.log). A successful
    /// checkpoint always keeps CRIU's dump.log and stats-dump.
    #[arg(long)]
    pub keep: bool,
    /// Also print CRIU's dump statistics and ckpt's phases, in
    /// microseconds (Podman's --print-stats; with --json under "stats").
    #[arg(long)]
    pub print_stats: bool,
    /// Container id.
    pub container: String,
    /// Checkpoint name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, not ending in '.'.
    pub name: String,
}
