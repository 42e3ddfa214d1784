//! Walking, hashing and opening files in the store without following
//! symlinks.
//!
//! Shared by publishing (which records sizes and BLAKE3 digests) and
//! verifying (which compares against them), and by every command that
//! opens a file below the store root. Every open here is `O_NOFOLLOW`, and
//! [`real_dir`] checks each directory from the store root down, so that a
//! symlink planted inside the store is refused by name
//! ([`StoreError::UnsafeStore`]) instead of followed. Never writes, except
//! [`open_append_private`], which appends and sets mode 0600.
//!
//! BLAKE3 rather than SHA-256: checkpoints are as large as the memory they
//! hold, every create hashes them and every start hashes them again, and
//! BLAKE3 hashes several times faster here (and in parallel over 16 MiB
//! chunks), which keeps ckpt's cost close to CRIU's own.
use super::metadata::FileDigest;
use super::{io_err, StoreError};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Hashing reads files in chunks of this many bytes; each chunk is hashed
/// on all cores.
const HASH_CHUNK: usize = 16 << 20;

/// The reason given for a symlink found where the store expects a file
/// or directory of its own.
pub(super) const SYMLINK: &str = "it is a symlink";

/// Opens `path` for reading, refusing a symlink as [`StoreError::UnsafeStore`].
/// `O_NONBLOCK` so that opening a fifo planted in the store cannot hang
/// (callers check that they got a regular file; reads of one never block).
pub(super) fn open_no_follow(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(open_err("open", path))
}

/// Maps an open error: `ELOOP` under `O_NOFOLLOW` means the last
/// component is a symlink.
pub(super) fn open_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| match source.raw_os_error() {
        Some(libc::ELOOP) => StoreError::UnsafeStore { path, reason: SYMLINK },
        _ => StoreError::Io { op, path, source },
    }
}

/// Whether every directory from below `root` down to `dir` (inclusive)
/// exists as a real directory: `Ok(false)` if one is missing, an
/// [`StoreError::UnsafeStore`] naming the first that is a symlink or not a
/// directory. `root` itself was checked by `Store::open`. A path outside
/// `root` is refused: callers only pass paths from the layout.
pub(super) fn real_dir(root: &Path, dir: &Path) -> Result<bool, StoreError> {
    let rel = dir.strip_prefix(root).map_err(|_| StoreError::UnsafeStore {
        path: dir.to_path_buf(),
        reason: "it is outside the store",
    })?;
    let mut path = root.to_path_buf();
    for part in rel.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => return Err(StoreError::UnsafeStore { path, reason: SYMLINK }),
            Ok(m) if !m.is_dir() => {
                return Err(StoreError::UnsafeStore {
                    path,
                    reason: "it is not a directory",
                })
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err("inspect", &path)(e)),
        }
    }
    Ok(true)
}

/// Refuses an existing `path` that is a symlink, or that is neither a
/// regular file nor a directory; a missing `path` is fine. For files ckpt
/// is about to (re)write, so that a planted link is reported before any
/// work starts rather than silently replaced.
pub(super) fn not_a_link(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(StoreError::UnsafeStore {
            path: path.to_path_buf(),
            reason: SYMLINK,
        }),
        Ok(m) if !m.is_file() && !m.is_dir() => Err(StoreError::UnsafeStore {
            path: path.to_path_buf(),
            reason: "it is neither a regular file nor a directory",
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// Opens (creating with mode 0600) `path` for appending: `O_NOFOLLOW`, and
/// `O_NONBLOCK` so that a fifo planted there cannot hang the caller. The
/// result must be a regular file; one left with another mode is made 0600.
pub fn open_append_private(path: &Path) -> Result<File, StoreError> {
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(open_err("open", path))?;
    let meta = file.metadata().map_err(io_err("inspect", path))?;
    if !meta.is_file() {
        return Err(StoreError::UnsafeStore {
            path: path.to_path_buf(),
            reason: "it is not a regular file",
        });
    }
    if meta.mode() & 0o7777 != 0o600 {
        file.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err("chmod", path))?;
    }
    Ok(file)
}

/// Size and lower-case hex BLAKE3 of a file's contents.
pub(super) fn digest_open_file(file: &File, path: &Path) -> Result<FileDigest, StoreError> {
    let (size, blake3) = crate::digest::blake3_of(file, HASH_CHUNK).map_err(io_err("read", path))?;
    Ok(FileDigest { size, blake3 })
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
    walk_skipping(dir, &[])
}

/// [`walk`], not entering the top-level directories named in `skip` (an
/// imported checkpoint's root filesystem, whose names need not be UTF-8
/// and whose files are not the checkpoint's); they are listed as
/// directories.
pub(super) fn walk_skipping(dir: &Path, skip: &[&str]) -> Result<Vec<WalkEntry>, StoreError> {
    let mut out = Vec::new();
    walk_into(dir, "", skip, &mut out)?;
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// One entry directly in a directory.
#[derive(Debug, Clone)]
pub(super) struct TopEntry {
    pub name: String,
    pub path: PathBuf,
    pub is_dir: bool,
    pub is_file: bool,
}

/// An entry's path and name; a name that is not UTF-8 is refused (the
/// store's names are validated UTF-8, so such an entry is not ckpt's).
fn utf8_entry(entry: &fs::DirEntry) -> Result<(PathBuf, String), StoreError> {
    let path = entry.path();
    match entry.file_name().to_str() {
        Some(name) => Ok((path, name.to_string())),
        None => Err(StoreError::UnsafeStore {
            path,
            reason: "its name is not UTF-8",
        }),
    }
}

/// The entries directly in `dir`, not followed, sorted; a name that is not
/// UTF-8 is refused.
pub(super) fn walk_top(dir: &Path) -> Result<Vec<TopEntry>, StoreError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let (path, name) = utf8_entry(&entry)?;
        let meta = fs::symlink_metadata(&path).map_err(io_err("inspect", &path))?;
        out.push(TopEntry {
            name,
            path,
            is_dir: meta.is_dir(),
            is_file: meta.is_file(),
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

fn walk_into(dir: &Path, prefix: &str, skip: &[&str], out: &mut Vec<WalkEntry>) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(io_err("read", dir))? {
        let entry = entry.map_err(io_err("read", dir))?;
        let (path, name) = utf8_entry(&entry)?;
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
        if kind == EntryKind::Dir && !(prefix.is_empty() && skip.contains(&key.as_str())) {
            walk_into(&path, &format!("{key}/"), &[], out)?;
        }
    }
    Ok(())
}
