//! Walking and hashing the files of a checkpoint directory.
//!
//! Shared by publishing (which records sizes and BLAKE3 digests) and
//! verifying (which compares against them). Never follows a symlink and
//! never writes.
//!
//! BLAKE3 rather than SHA-256: checkpoints are as large as the memory they
//! hold, every create hashes them and every start hashes them again, and
//! BLAKE3 hashes several times faster here (and in parallel over 16 MiB
//! chunks), which keeps ckpt's cost close to CRIU's own.
use super::metadata::FileDigest;
use super::{io_err, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Hashing reads files in chunks of this many bytes; each chunk is hashed
/// on all cores.
const HASH_CHUNK: usize = 16 << 20;

/// Opens `path` for reading, refusing a symlink (`ELOOP`).
pub(super) fn open_no_follow(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(io_err("open", path))
}

/// Size and lower-case hex BLAKE3 of a file's contents.
pub(super) fn digest_open_file(mut file: &File, path: &Path) -> Result<FileDigest, StoreError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_err("read", path)(e)),
        };
        hasher.update_rayon(&buf[..n]);
        size += n as u64;
    }
    Ok(FileDigest {
        size,
        blake3: hasher.finalize().to_hex().to_string(),
    })
}

/// What [`walk`] found at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EntryKind {
    /// A directory (walked into; its entries follow it).
    Dir,
    /// A regular file, with its size.
    File(u64),
    /// A symlink, fifo, socket or device: never part of a checkpoint.
    Other,
}

/// One entry under a checkpoint directory.
#[derive(Debug, Clone)]
pub(super) struct WalkEntry {
    /// Path relative to the walked dir, `/`-separated.
    pub key: String,
    pub path: PathBuf,
    pub kind: EntryKind,
}

/// Every entry under `dir`, recursively, without following symlinks,
/// sorted by key. Non-UTF-8 names are refused: keys go into JSON.
pub(super) fn walk(dir: &Path) -> Result<Vec<WalkEntry>, StoreError> {
    let mut out = Vec::new();
    walk_into(dir, "", &mut out)?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

fn walk_into(dir: &Path, prefix: &str, out: &mut Vec<WalkEntry>) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            return Err(StoreError::UnsafeStore {
                path,
                reason: "its name is not UTF-8",
            });
        };
        let key = format!("{prefix}{name}");
        let meta = fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
        let kind = if meta.is_dir() {
            EntryKind::Dir
        } else if meta.is_file() {
            EntryKind::File(meta.len())
        } else {
            EntryKind::Other
        };
        out.push(WalkEntry {
            key: key.clone(),
            path: path.clone(),
            kind,
        });
        if kind == EntryKind::Dir {
            walk_into(&path, &format!("{key}/"), out)?;
        }
    }
    Ok(())
}
