//! `ckpt inspect`'s arguments.

use super::CriuFlags;
use clap::Args;

/// `ckpt inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print the whole inventory and verdict (or the checkpoint's
    /// contents) as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Container id.
    pub container: String,
    /// A checkpoint of the container: show what it holds (processes,
    /// fds, memory, CRIU and kernel, options, sizes) instead of the
    /// running container's preflight.
    pub checkpoint: Option<String>,
}
