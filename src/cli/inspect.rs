//! `ckpt inspect`'s arguments.

use super::CriuFlags;
use clap::Args;

/// `ckpt inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Print the whole inventory and verdict as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub criu: CriuFlags,
    /// Container id.
    pub container: String,
}
