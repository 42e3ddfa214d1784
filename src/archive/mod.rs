//! Checkpoint archives: one file (or one OCI image layer) that carries a
//! checkpoint to another machine, in the layout Podman, CRI-O and
//! checkpointctl already use, plus ckpt's own manifest. The full
//! description, with the facts it was decided from, is
//! docs/archive-format.md.
//!
//! ```text
//! <archive>.tar[.zst|.gz]            zstd by default; gzip; none (detected by magic on read)
//! ├── ckpt.json                      FIRST entry: the manifest (schema, what the archive holds,
//! │                                  every later file's size and BLAKE3, entry and byte counts)
//! ├── config.dump                    CRI-O/containerd's reduced config + ckpt's own fields
//! ├── spec.dump                      the OCI runtime spec the container ran with
//! ├── stats-dump                     CRIU's dump statistics (copy; checkpointctl --stats)
//! ├── deleted.files                  Docker: JSON list of paths deleted from the image
//! ├── checkpoint/                    directory entry (checkpointctl requires one)
//! │   ├── *.img, descriptors.json    the checkpoint directory of the store, verbatim,
//! │   ├── dump.log, stats-dump, …    including its own sealed ckpt.json + ckpt.json.blake3
//! │   └── ckpt.json(.blake3)
//! └── rootfs.tar | rootfs-diff.tar   an uncompressed tar nested inside: runc/crun: the whole
//!                                    root filesystem; Docker: the writable layer over the
//!                                    named image (Podman's rootfs-diff.tar)
//! ```
//!
//! Promises:
//! - [`write_archive`] streams: memory stays at a few MiB of buffers
//!   whatever the size, every checkpoint file is checked against its
//!   recorded size and BLAKE3 while it is copied, and the manifest comes
//!   first so that a reader knows every size before it reads any data.
//! - [`read_archive`] treats its input as hostile: it refuses, naming the
//!   entry, anything that could write outside the staging directory, any
//!   entry the manifest does not declare or whose size or checksum differs,
//!   devices and fifos outside a root filesystem part, setuid files unless
//!   asked, tar bombs, and truncated or corrupt streams. It creates every
//!   file relative to a directory fd without following a symlink
//!   ([`staging`]), so nothing is written outside the staging directory.
//! - [`policy::check_spec`] says, without acting, what an imported spec
//!   asks for that it must not get (hooks, host binds, host namespaces,
//!   privileges).
//!
//! Never: touches the store, runs a runtime or CRIU, or follows a link
//! found in an archive.

pub mod apply;
pub mod compress;
pub mod manifest;
pub mod names;
pub mod policy;
mod reader;
mod rootfs_tar;
pub mod staging;
mod streams;
mod tarwalk;
mod unpack;
mod writer;

#[cfg(test)]
mod tests;

pub use compress::Compression;
pub use manifest::{ArchiveKind, ConfigDump, EntryDigest, ImageRef, Manifest, RootfsDecl, RootfsKind};
pub use names::Limits;
pub use reader::{read_archive, FoundFile, ReadOptions, Report, RootfsFound};
pub use unpack::NestedStats;
pub use writer::{write_archive, write_tar, CheckpointFiles, ExportSource, Progress, RootfsSource, WriteSummary};

use std::io;

/// Why an archive was refused. Each names what it found, so that the
/// message says what to look at; the entry is in [`ArchiveError::Refused`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("its name has a `..` component")]
    DotDot,
    #[error("its name is an absolute path")]
    Absolute,
    #[error("its name is not a clean relative path ({0})")]
    BadName(&'static str),
    #[error("its name is not UTF-8")]
    NotUtf8,
    #[error("it is a symlink to {target:?}, which points outside {root}")]
    SymlinkOutside { target: String, root: String },
    #[error("it is a hard link to {target:?}, which is outside {root}")]
    HardlinkOutside { target: String, root: String },
    #[error("it is a {kind}, which is allowed only inside a root filesystem part")]
    SpecialOutsideRootfs { kind: &'static str },
    #[error("it is a {kind}, which an archive never needs")]
    UnsupportedType { kind: String },
    #[error("it is setuid or setgid (mode {mode:o}); pass allow_setuid to accept it")]
    Setuid { mode: u32 },
    #[error("its size is {found} bytes, but ckpt.json declares {declared}")]
    SizeMismatch { declared: u64, found: u64 },
    #[error("its BLAKE3 is {found}, but ckpt.json declares {declared}")]
    ChecksumMismatch { declared: String, found: String },
    #[error("ckpt.json does not declare it")]
    Undeclared,
    #[error("ckpt.json declares it, but the archive does not have it")]
    Missing,
    #[error("it appears twice, or something else is already in its place")]
    Duplicate,
    #[error("a path on the way to it is not a directory (a symlink or a file is in the way)")]
    NotADirectory,
    #[error("ckpt.json must be the archive's first entry")]
    ManifestNotFirst,
    #[error("it is not valid: {0}")]
    Invalid(String),
    #[error("the archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("the archive expands to more than {limit} bytes")]
    TooManyBytes { limit: u64 },
    #[error("ckpt.json declares {declared} {what}, the archive has {found}")]
    CountMismatch {
        what: &'static str,
        declared: u64,
        found: u64,
    },
    #[error("the stream is truncated: {0}")]
    Truncated(String),
    #[error("the stream is not {0}")]
    Corrupt(String),
    #[error("the input is not a tar, gzip or zstd stream{0}")]
    UnknownFormat(String),
    #[error("there is data after the end of the archive")]
    TrailingData,
    #[error("it is not a checkpoint archive: {0}")]
    NotACheckpoint(&'static str),
}

/// Errors of writing and reading archives.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive is refused: hostile, damaged or inconsistent. Nothing
    /// from it may be used; the caller removes the staging directory.
    #[error("archive refused: {}{reason}", entry.as_ref().map(|e| format!("entry {e}: ")).unwrap_or_default())]
    Refused { entry: Option<String>, reason: Refusal },
    /// A source file of an export is not what the checkpoint recorded, or
    /// changed while it was exported; the output is incomplete.
    #[error("cannot export {path}: {reason}")]
    Source { path: String, reason: String },
    /// An I/O step failed (the input, the output, the staging directory).
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
}

impl ArchiveError {
    /// The refusal, if this error is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            ArchiveError::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// The entry a refusal names.
    pub fn entry(&self) -> Option<&str> {
        match self {
            ArchiveError::Refused { entry, .. } => entry.as_deref(),
            _ => None,
        }
    }
}

/// A refusal of `entry`.
pub(crate) fn refused(entry: impl Into<String>, reason: Refusal) -> ArchiveError {
    ArchiveError::Refused {
        entry: Some(entry.into()),
        reason,
    }
}

/// A refusal of the archive as a whole.
pub(crate) fn refused_archive(reason: Refusal) -> ArchiveError {
    ArchiveError::Refused { entry: None, reason }
}

/// An I/O error of step `op` on `path`.
pub(crate) fn io_err(op: &'static str, path: impl Into<String>) -> impl FnOnce(io::Error) -> ArchiveError {
    let path = path.into();
    move |source| ArchiveError::Io { op, path, source }
}
