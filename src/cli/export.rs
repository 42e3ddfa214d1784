//! `ckpt export`'s arguments, and the export flags `create --export` shares.

use clap::{Args, ValueEnum};
use std::path::PathBuf;

/// `--compress` values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum CompressArg {
    /// zstd, level 3, with frame checksums.
    #[default]
    Zstd,
    /// gzip.
    Gzip,
    /// A plain tar.
    None,
}

impl CompressArg {
    pub fn compression(self) -> crate::archive::Compression {
        match self {
            CompressArg::Zstd => crate::archive::Compression::Zstd,
            CompressArg::Gzip => crate::archive::Compression::Gzip,
            CompressArg::None => crate::archive::Compression::None,
        }
    }
}

/// How an archive is written (`export`, `create --export`).
#[derive(Debug, Clone, Default, Args)]
pub struct ArchiveFlags {
    /// Compression of the archive.
    #[arg(long, value_enum, default_value_t = CompressArg::Zstd)]
    pub compress: CompressArg,
    /// Leave the root filesystem out (the target has it). --ignore-rootfs
    /// is Podman's name for it. Volumes (bind-mount sources) are never
    /// exported, so there is no --ignore-volumes.
    #[arg(long, visible_alias = "ignore-rootfs")]
    pub no_rootfs: bool,
}

/// `ckpt export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive to write (replaced whole once complete, never half-written).
    #[arg(short, long, value_name = "FILE")]
    pub output: PathBuf,
    #[command(flatten)]
    pub archive: ArchiveFlags,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Container id.
    pub container: String,
    /// Checkpoint name.
    pub checkpoint: String,
}
