//! `ckpt import`'s arguments, and the import flags `start --import` shares.

use clap::Args;
use std::path::PathBuf;

/// What an import may allow beyond the default policy, and where its
/// root filesystem comes from.
#[derive(Debug, Clone, Default, Args)]
pub struct ImportFlags {
    /// The checkpoint's name in the store (default: its name in the archive).
    #[arg(long = "as-checkpoint", value_name = "NAME")]
    pub as_checkpoint: Option<String>,
    /// The root filesystem to use: for an archive without one, in place;
    /// for one with a diff (Podman's rootfs-diff.tar), a copy with the diff
    /// laid over it.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Keep bind mounts whose source is below PREFIX (repeatable).
    #[arg(long = "allow-bind-source", value_name = "PREFIX")]
    pub allow_bind_sources: Vec<PathBuf>,
    /// Allow the host's namespaces (a spec without its own).
    #[arg(long)]
    pub allow_host_namespaces: bool,
    /// Allow capabilities beyond Docker's default set and host devices.
    #[arg(long)]
    pub allow_privileges: bool,
    /// Accept setuid and setgid files in the archive's root filesystem.
    #[arg(long)]
    pub allow_setuid: bool,
}

/// `ckpt import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Import as this container id instead of the archive's.
    #[arg(long, value_name = "NEW_ID")]
    pub name: Option<String>,
    #[command(flatten)]
    pub import: ImportFlags,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// The archive: ckpt's, or Podman's `--export`.
    pub file: PathBuf,
}
