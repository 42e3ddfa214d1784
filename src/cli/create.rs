//! `ckpt create`'s arguments.

use super::CriuFlags;
use clap::Args;

/// `ckpt create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Keep the container running after the checkpoint.
    #[arg(long, short = 'R')]
    pub leave_running: bool,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Also write the checkpoint as an archive to FILE (as `ckpt export`).
    #[arg(long, value_name = "FILE")]
    pub export: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub archive: super::ArchiveFlags,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Container id.
    pub container: String,
    /// Checkpoint name: [a-zA-Z0-9][a-zA-Z0-9_.-]*, not ending in '.'.
    pub name: String,
}
