//! Content-addressed page chunks: what incremental checkpoints are made of.
//!
//! CRIU writes a process's memory as `pages-<n>.img` (raw 4 KiB pages,
//! described by `pagemap-*.img`). Successive checkpoints of one container
//! mostly hold the same pages, so an incremental checkpoint keeps, instead
//! of its page files, a *recipe*: for each page file its name, size,
//! whole-file BLAKE3 and the ordered list of its chunks. The chunks
//! themselves, named by their BLAKE3, are stored once per container in a
//! chunk store shared by all of its checkpoints:
//!
//! ```text
//! <container dir>/chunks/                  0700  passed in by the caller
//!   .lock                                  0600  flock: LOCK_EX to write or collect, LOCK_SH to read
//!   .tmp/                                  0700  packs being written; swept by the next writer
//!   packs/<64 hex>.pack                    0600  chunk data + sorted index + footer; the name is
//!                                                the BLAKE3 of the index (see `pack`)
//! <checkpoint dir>/pages.recipe            0600  the checkpoint's recipe (see `recipe`)
//! ```
//!
//! Chunks are page-aligned and cut at virtual-address multiples of the
//! chunk size within each run of contiguous present pages
//! ([`split::ChunkRule::Address`]), because CRIU moves pages to other
//! file offsets whenever an earlier mapping changes; the chunk size is
//! 4 KiB by measurement (docs/incremental.md). Chunks are not stored one
//! file each: a file per 4 KiB chunk took 31-41 s per GiB to create (a
//! whole full checkpoint: 3-6 s) and minutes to delete. Each create
//! appends its new chunks to one new pack.
//!
//! Reference counts are derived state, never stored: a chunk is referenced
//! by the recipes that list it, and [`refs`] recomputes counts from the
//! recipes whenever they are needed. So there is no count that a crash
//! could leave out of step; the only crash leftovers are chunks nobody
//! references yet or any more, which [`store::Session::collect`]
//! removes.
//!
//! What this module promises:
//! - a recipe never refers to a chunk that is not durably in a pack before
//!   [`store::Writer::commit`] returns (the caller publishes the recipe
//!   after that, while it still holds the [`store::Session`] it returns);
//! - collection deletes only chunks that no recipe given to it references,
//!   and only under the exclusive lock that every writer holds from its
//!   first look-up to its caller's publish, so a concurrent create's
//!   chunks are never collected;
//! - a missing or corrupt chunk is an error naming the chunk, never a
//!   silently wrong page file;
//! - every pack is 0600 and written under a temp name, fsynced and
//!   renamed; every directory is 0700; every open is `O_NOFOLLOW`; a
//!   symlink in the chunk store is refused by name.
//!
//! It never runs CRIU, never touches processes, and never reads or writes
//! outside the chunk directory and the directories passed to it.

pub mod faults;
pub mod images;
pub mod index;
pub mod pack;
pub mod pagemap;
pub mod recipe;
pub mod refs;
pub mod retention;
pub mod split;
pub mod store;

mod digest;
mod fsutil;
mod map;

pub use digest::Digest;
pub use index::{ChunkProblem, Packs, Problem, Reassembly, StoreStats};
pub use recipe::{ChunkRef, FileRecipe, Recipe, RECIPE_FILE};
pub use split::{ChunkRule, CHUNK_SIZE};
pub use store::{ChunkStore, CollectPolicy, CollectReport, Reader, Session, WriteStats, Writer};

use std::path::PathBuf;

/// Errors of the chunk store. Each names what it was about: the file, the
/// chunk, the step.
#[derive(Debug, thiserror::Error)]
pub enum ChunkError {
    /// An I/O step failed; `op` names it.
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another command holds the chunk store's lock.
    #[error("another ckpt command is using the chunk store {path}")]
    Busy { path: PathBuf },
    /// A path in the chunk store is not what ckpt would have created.
    #[error("refusing to use {path}: {reason}")]
    Unsafe { path: PathBuf, reason: &'static str },
    /// A pack's header, index or footer is damaged.
    #[error("pack {path} is corrupt: {reason}")]
    BadPack { path: PathBuf, reason: String },
    /// A recipe cannot be read.
    #[error("recipe {path} is corrupt: {reason}")]
    BadRecipe { path: PathBuf, reason: String },
    /// A recipe was written by a newer ckpt.
    #[error("recipe {path} has version {found}, this ckpt understands up to {supported}; upgrade ckpt")]
    FutureRecipe { path: PathBuf, found: u32, supported: u32 },
    /// A chunk a recipe needs is in no pack.
    #[error("chunk {digest} of {file} is missing from the chunk store")]
    MissingChunk { file: String, digest: Digest },
    /// A chunk's bytes do not hash to its name.
    #[error("chunk {digest} of {file} is corrupt (in {pack})")]
    CorruptChunk {
        file: String,
        digest: Digest,
        pack: PathBuf,
    },
    /// A reassembled file does not match the whole-file digest of its recipe.
    #[error("{file} reassembled to BLAKE3 {found}, its recipe records {expected}")]
    FileMismatch {
        file: String,
        expected: Digest,
        found: Digest,
    },
    /// A fault injected by a test (see [`faults`]), standing for a crash.
    #[error("injected fault at step {step}")]
    Injected { step: &'static str },
}

impl ChunkError {
    /// Whether the error means stored data is damaged or missing (the
    /// caller's exit 7), as opposed to an environment failure.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            ChunkError::BadPack { .. }
                | ChunkError::BadRecipe { .. }
                | ChunkError::FutureRecipe { .. }
                | ChunkError::MissingChunk { .. }
                | ChunkError::CorruptChunk { .. }
                | ChunkError::FileMismatch { .. }
        )
    }
}

/// Convenience for [`ChunkError::Io`].
pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ChunkError {
    let path = path.into();
    move |source| ChunkError::Io { op, path, source }
}

#[cfg(test)]
mod crash_tests;
#[cfg(test)]
mod tests;
