//! `ckpt start`'s arguments.

use super::ImportFlags;
use clap::Args;
use std::path::PathBuf;

/// `ckpt start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// The checkpoint to restore; `latest`: the newest complete one (a
    /// checkpoint literally named `latest` is still that one).
    #[arg(
        long,
        value_name = "NAME",
        required_unless_present = "import",
        conflicts_with = "import"
    )]
    pub checkpoint: Option<String>,
    /// Restore as a new container with this id instead of the original
    /// (with --import: import as this id, then restore it).
    #[arg(long, value_name = "NEW_ID")]
    pub name: Option<String>,
    /// Docker's `--checkpoint-dir`: the checkpoints are in
    /// `DIR/<id>/checkpoints` (DIR a store root); the container's own
    /// `<base>/<id>/checkpoints` is accepted too.
    #[arg(long, value_name = "DIR")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// Import this archive (as `ckpt import`), then restore it.
    #[arg(long, value_name = "FILE")]
    pub import: Option<PathBuf>,
    #[command(flatten)]
    pub import_flags: ImportFlags,
    /// Restore established TCP connections closed (CRIU --tcp-close; runc
    /// and crun get it through a CRIU config file in a generated bundle).
    /// Not for Docker containers.
    #[arg(long)]
    pub tcp_close: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print CRIU's restore statistics and ckpt's phases, in
    /// microseconds (Podman's --print-stats; with --json under "stats").
    #[arg(long)]
    pub print_stats: bool,
    /// Container id the checkpoint belongs to.
    #[arg(required_unless_present = "import", conflicts_with = "import")]
    pub container: Option<String>,
}
