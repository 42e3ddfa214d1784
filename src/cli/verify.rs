//! `ckpt verify`'s arguments.

use clap::Args;

/// `ckpt verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Verify every checkpoint of CONTAINER, or without CONTAINER of the
    /// whole store (--store); each chunk is checked once and a bad one is
    /// reported for every checkpoint that uses it.
    #[arg(long, conflicts_with = "name")]
    pub all: bool,
    /// With --all: also remove the chunks no checkpoint uses (and what a
    /// crashed command left in the chunk store). A chunk a checkpoint uses
    /// is never removed, even a corrupt one.
    #[arg(long)]
    pub repair: bool,
    /// Container id (or Docker name); optional with --all.
    #[arg(required_unless_present = "all")]
    pub container: Option<String>,
    /// Checkpoint name.
    #[arg(required_unless_present = "all")]
    pub name: Option<String>,
}
