//! The few filesystem steps the chunk store takes, each `O_NOFOLLOW` and
//! each error naming its step and path. (The same rules as `store/files.rs`
//! and `store/publish.rs`, kept separate so that this module does not
//! depend on store internals that are being reshaped.)
use super::{io_err, ChunkError};
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory the chunk store creates.
pub(crate) const DIR_MODE: u32 = 0o700;
/// Mode of every file it writes.
pub(crate) const FILE_MODE: u32 = 0o600;
/// Recipes and pack indexes are read whole; refuse anything larger.
const SMALL_FILE_MAX: u64 = 1 << 30;

const SYMLINK: &str = "it is a symlink";

fn open_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> ChunkError {
    let path = path.to_path_buf();
    move |source| match source.raw_os_error() {
        Some(libc::ELOOP) => ChunkError::Unsafe { path, reason: SYMLINK },
        _ => ChunkError::Io { op, path, source },
    }
}

/// Opens a regular file for reading: `O_NOFOLLOW`, and `O_NONBLOCK` so a
/// planted fifo cannot hang the caller.
pub(crate) fn open_read(path: &Path) -> Result<File, ChunkError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(open_err("open", path))?;
    let meta = file.metadata().map_err(io_err("inspect", path))?;
    if !meta.is_file() {
        return Err(ChunkError::Unsafe {
            path: path.to_path_buf(),
            reason: "it is not a regular file",
        });
    }
    Ok(file)
}

/// Reads a whole (small) regular file.
pub(crate) fn read_small_file(path: &Path) -> Result<Vec<u8>, ChunkError> {
    let mut file = open_read(path)?;
    let len = file.metadata().map_err(io_err("inspect", path))?.len();
    if len > SMALL_FILE_MAX {
        return Err(ChunkError::Io {
            op: "read",
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidData, "larger than 1 GiB"),
        });
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes).map_err(io_err("read", path))?;
    Ok(bytes)
}

/// Creates a new 0600 file (`O_CREAT|O_EXCL|O_NOFOLLOW`) for writing.
pub(crate) fn create_new(path: &Path) -> Result<File, ChunkError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(open_err("create", path))
}

/// Makes sure `dir` is a real directory that only its owner can write,
/// creating it (0700) if it is missing. Refuses a symlink, a non-directory
/// or a group- or world-writable directory by name.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), ChunkError> {
    match fs::symlink_metadata(dir) {
        Ok(m) => return check_private_dir(dir, &m),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", dir)(e)),
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(io_err("chmod", dir)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let m = fs::symlink_metadata(dir).map_err(io_err("inspect", dir))?;
            check_private_dir(dir, &m)
        }
        Err(e) => Err(io_err("create", dir)(e)),
    }
}

fn check_private_dir(dir: &Path, m: &fs::Metadata) -> Result<(), ChunkError> {
    let refuse = |reason| {
        Err(ChunkError::Unsafe {
            path: dir.to_path_buf(),
            reason,
        })
    };
    if m.file_type().is_symlink() {
        return refuse(SYMLINK);
    }
    if !m.is_dir() {
        return refuse("it is not a directory");
    }
    if m.mode() & 0o022 != 0 {
        return refuse("it is writable by group or others");
    }
    Ok(())
}

/// fsyncs a directory, so that renames and unlinks in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), ChunkError> {
    let d = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_DIRECTORY)
        .open(dir)
        .map_err(open_err("open", dir))?;
    d.sync_all().map_err(io_err("fsync", dir))
}

/// Reads exactly `buf.len()` bytes at `offset`.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64, path: &Path) -> Result<(), ChunkError> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset).map_err(io_err("read", path))
}
