//! The store's one write path. Every file ckpt writes into a store is
//! made here: created new (`O_EXCL`, `O_NOFOLLOW`) with mode 0600, written,
//! fsynced, and renamed into place where it replaces something
//! ([`replace_file`]); every directory is made 0700 after checking each one
//! on the way ([`ensure_private_dir_in`]). A full disk is reported as
//! [`StoreError::NoSpace`], naming the store ([`write_err`]).
//!
//! Never follows a symlink inside the store, and never writes outside it.
use super::files::{open_no_follow, real_dir};
use super::layout::StagingKind;
use super::{io_err, Layout, StoreError};
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every directory the store creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the store.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode 0700. Refuses (as
/// [`StoreError::UnsafeStore`]) a `dir` that is a symlink, not a directory,
/// or writable by group or others. Existing directories keep their mode
/// (Docker's container dirs are not ours to chmod).
pub fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    ensure_private_dir_in(dir, dir)
}

/// [`ensure_private_dir`] for a `dir` below the store `root`, naming `root`
/// if the filesystem is full. Every directory between `root` and `dir`
/// must be a real directory too (missing ones are created).
pub(super) fn ensure_private_dir_in(root: &Path, dir: &Path) -> Result<(), StoreError> {
    create_private_dir_in(root, dir).map(drop)
}

/// [`ensure_private_dir_in`], saying whether this call created `dir`
/// (false if it existed, or another process created it meanwhile).
pub(super) fn create_private_dir_in(root: &Path, dir: &Path) -> Result<bool, StoreError> {
    if let Some(parent) = dir.parent().filter(|_| dir != root && dir.starts_with(root)) {
        real_dir(root, parent)?;
    }
    match fs::symlink_metadata(dir) {
        Ok(m) => return check_private_dir(dir, &m).map(|()| false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", dir)(e)),
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if fs::symlink_metadata(parent).is_err() {
            ensure_private_dir_in(root, parent)?;
        }
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => set_mode(root, dir, DIR_MODE).map(|()| true),
        // Someone else created it meanwhile: judge theirs like any existing dir.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let m = fs::symlink_metadata(dir).map_err(io_err("inspect", dir))?;
            check_private_dir(dir, &m).map(|()| false)
        }
        Err(e) => Err(write_err(root, "create", dir)(e)),
    }
}

fn check_private_dir(dir: &Path, m: &Metadata) -> Result<(), StoreError> {
    let unsafe_store = |reason| StoreError::UnsafeStore {
        path: dir.to_path_buf(),
        reason,
    };
    if m.file_type().is_symlink() {
        return Err(unsafe_store("it is a symlink"));
    }
    if !m.is_dir() {
        return Err(unsafe_store("it is not a directory"));
    }
    if m.mode() & 0o022 != 0 {
        return Err(unsafe_store("it is writable by group or others"));
    }
    Ok(())
}

/// Maps an error of a step that may fill the disk: `ENOSPC` and `EDQUOT`
/// become [`StoreError::NoSpace`] naming the store root.
pub(super) fn write_err(root: &Path, op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let (root, path) = (root.to_path_buf(), path.to_path_buf());
    move |source| match source.raw_os_error() {
        Some(libc::ENOSPC | libc::EDQUOT) => StoreError::NoSpace { root, op, path },
        _ => StoreError::Io { op, path, source },
    }
}

/// Replaces `path` (a file of container `container_id`, from the
/// [`Layout`]) with `bytes`: written 0600 and fsynced as
/// `.ckpt-staging/<file name>.<pid>.<nonce>` (so a crash leaves only a stale
/// staging entry, cleaned like any other), renamed into place, and the
/// directory fsynced. Missing directories on the way are created 0700;
/// symlinks on the way are refused. A symlink at `path` itself is replaced,
/// never written through.
pub(super) fn replace_file(layout: &Layout, container_id: &str, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let root = layout.root();
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(StoreError::Io {
            op: "write",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        });
    };
    ensure_private_dir_in(root, dir)?;
    ensure_private_dir_in(root, &layout.staging_root(container_id))?;
    let tmp = layout.staging_entry(
        container_id,
        StagingKind::Replacement(&file_name.to_string_lossy()),
        std::process::id(),
        &nonce(),
    );
    let written = write_new_file(root, &tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path).map_err(write_err(root, "rename", path)));
    if let Err(e) = written {
        // A full disk must not leave a half-written staging entry behind.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fsync_dir(root, dir)
}

/// Creates `path` (which must not exist: `O_EXCL`, never through a
/// symlink) with mode 0600, writes `bytes` and fsyncs it.
pub(super) fn write_new_file(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = create_new(root, path)?;
    file.write_all(bytes).map_err(write_err(root, "write", path))?;
    file.sync_all().map_err(write_err(root, "fsync", path))
}

pub(super) fn set_mode(root: &Path, path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(root, "chmod", path))
}

pub(super) fn fsync_dir(root: &Path, dir: &Path) -> Result<(), StoreError> {
    let d = File::open(dir).map_err(io_err("open", dir))?;
    d.sync_all().map_err(write_err(root, "fsync", dir))
}

/// Copies the regular file `from` (opened `O_NOFOLLOW`) to a new file
/// `path`, as [`write_new_file`] writes one: 0600 whatever the umask, and
/// fsynced.
pub(super) fn copy_new_file(root: &Path, from: &Path, path: &Path) -> Result<(), StoreError> {
    let mut src = open_no_follow(from)?;
    if !src.metadata().map_err(io_err("inspect", from))?.is_file() {
        return Err(StoreError::UnsafeStore {
            path: from.to_path_buf(),
            reason: "it is not a regular file",
        });
    }
    let mut file = create_new(root, path)?;
    file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
        .map_err(write_err(root, "chmod", path))?;
    io::copy(&mut src, &mut file).map_err(write_err(root, "write", path))?;
    file.sync_all().map_err(write_err(root, "fsync", path))
}

fn create_new(root: &Path, path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(write_err(root, "create", path))
}

/// A process-unique, never-repeating suffix: time in ns and a counter, in
/// hex so that it never contains a `.`.
pub(super) fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_differ_and_have_no_dot() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert!(!a.contains('.') && !b.contains('.'));
    }
}
