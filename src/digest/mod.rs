//! Hashing a checkpoint while CRIU writes it.
//!
//! Promises: [`Follower::spawn`] watches one directory while a writer
//! (CRIU) fills it, and feeds each file's new bytes to BLAKE3 as they land,
//! while they are still in the page cache; with [`FollowOptions::writeback`]
//! it also starts the kernel's writeback of each hashed range
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`), so that the final `fsync`
//! waits only for the tail. [`Follower::finish`], called once the writer is
//! done, returns the size and BLAKE3 of every regular file then in the
//! directory — always equal to a hash of the final file — and, if asked,
//! has fsynced each one.
//!
//! What it relies on, and what it checks instead of trusting: CRIU writes
//! each image once, by appending (`O_WRONLY|O_CREAT|O_TRUNC`, then buffered
//! `write` or `splice`; no `lseek`, `pwrite`, `ftruncate` or `fallocate` in
//! `criu/image.c`, `criu/page-xfer.c` or `criu/bfd.c` of CRIU 4.1.1), and
//! unlinks only images it never wrote. A file is hashed again from its
//! first byte at [`Follower::finish`] when the follower saw it
//! - shrink below what it had hashed (truncated, or reopened with `O_TRUNC`),
//! - closed by writers more than once (`IN_CLOSE_WRITE`: reopened for
//!   writing, whatever it wrote),
//! - replaced (the path's inode is not the one followed),
//! - or whenever inotify lost events (`IN_Q_OVERFLOW`), for every file.
//!
//! Not detected: an overwrite in place, within one open, of bytes already
//! hashed (CRIU does not do that; a writer that does must not be followed).
//!
//! Never writes to the files it follows, never follows a symlink
//! (`O_NOFOLLOW`), never blocks on a fifo (`O_NONBLOCK`), and never looks
//! outside the directory it was given.

mod file;
mod follow;
#[cfg(test)]
mod tests;

pub use file::{blake3_of, hash_file, GrowingFile};
pub use follow::{FollowOptions, FollowStats, Followed, Follower};

use std::path::PathBuf;

/// Size and lower-case hex BLAKE3 of one file's final contents (the same
/// values `ckpt.json` records per file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub size: u64,
    pub blake3: String,
}

/// Errors of following and hashing.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a regular file or directory; a checkpoint holds only those")]
    NotRegular { path: PathBuf },
    #[error("{path}: the name is not UTF-8; checkpoint file names go into JSON")]
    NotUtf8 { path: PathBuf },
    #[error("the thread that followed {dir} died")]
    ThreadDied { dir: PathBuf },
}

pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DigestError {
    let path = path.into();
    move |source| DigestError::Io { op, path, source }
}
