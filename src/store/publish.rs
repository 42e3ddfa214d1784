//! Writing checkpoints: staging, atomic publish by `rename(2)`, removal.
//!
//! Promises: a checkpoint appears in `checkpoints/` whole (every file
//! fsynced, `ckpt.json` written last, then one rename and an fsync of the
//! parent) or not at all; every directory it creates is 0700 and every file
//! it leaves is 0600, whatever the umask or the writer (CRIU) chose.
//! Removal renames the checkpoint out of `checkpoints/` first, so a crash
//! never leaves half a checkpoint listed.
//!
//! [`replace_file`] is the one way ckpt writes a file of its own outside a
//! checkpoint (the generated bundle, logs): a new 0600 file written and
//! fsynced under a staging name, then renamed over the old one, so a
//! reader sees the old file or the new one, and a symlink there is never
//! written through.
//!
//! Never follows a symlink inside the store (each directory on the way is
//! checked with `real_dir`, each file opened `O_NOFOLLOW`), and never
//! removes anything outside a container's `.ckpt-staging/` except through
//! [`remove`].
use super::files::{digest_open_file, open_no_follow, real_dir, walk, EntryKind, SYMLINK};
use super::metadata::{seal_of, FileDigest, META_FILE, SEAL_FILE};
use super::{io_err, CheckpointMeta, Layout, StoreError};
use crate::procfs::ProcRoot;
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of every directory the store creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in a published checkpoint.
pub const FILE_MODE: u32 = 0o600;

/// A checkpoint being written. Dropping it without [`Staging::publish`]
/// removes the staging directory.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    /// ckpt's own mountinfo, read before an unpublished dir is removed.
    mountinfo: PathBuf,
    root: PathBuf,
    staging_root: PathBuf,
    checkpoints_dir: PathBuf,
    container_id: String,
    name: String,
    published: bool,
}

impl Staging {
    /// Creates `<root>/<id>/.ckpt-staging/<name>.<pid>.<nonce>` (0700, and
    /// its missing parents 0700). The caller validates `container_id` and
    /// `name` first (see [`super::Store::begin`]).
    pub fn create(layout: &Layout, proc: &ProcRoot, container_id: &str, name: &str) -> Result<Staging, StoreError> {
        let root = layout.root();
        ensure_private_dir_in(root, &layout.container_dir(container_id))?;
        let staging_root = layout.staging_root(container_id);
        ensure_private_dir_in(root, &staging_root)?;
        let dir = staging_root.join(format!("{name}.{}.{}", std::process::id(), nonce()));
        // Not recursive: an existing dir of that name is an error, never reused.
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(write_err(root, "create", &dir))?;
        set_mode(root, &dir, DIR_MODE)?;
        Ok(Staging {
            dir,
            mountinfo: proc.own_mountinfo(),
            root: root.to_path_buf(),
            staging_root,
            checkpoints_dir: layout.checkpoints_dir(container_id),
            container_id: container_id.to_string(),
            name: name.to_string(),
            published: false,
        })
    }

    /// The staging directory (0700) to write files into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `bytes` to `<staging>/<file>` with mode 0600 and fsyncs it.
    /// `file` must be a plain file name; an existing file is an error.
    pub fn write_file(&self, file: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        let mut parts = Path::new(file).components();
        if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
            return Err(StoreError::Io {
                op: "create",
                path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name"),
            });
        }
        write_new_file(&self.root, &path, bytes)
    }

    /// Fills `meta.files` and `meta.size_bytes` with every file of the
    /// staging dir (making each 0600), writes `ckpt.json`, fsyncs
    /// everything, and renames the dir into `checkpoints/<name>`. Returns
    /// the published path. `meta.container_id` and `meta.name` are set to
    /// the staging's own, so the metadata always matches its directory.
    pub fn publish(mut self, mut meta: CheckpointMeta) -> Result<PathBuf, StoreError> {
        let root = self.root.clone();
        let entries = walk(&self.dir)?;
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        for entry in &entries {
            match entry.kind {
                EntryKind::Dir => {
                    set_mode(&root, &entry.path, DIR_MODE)?;
                    fsync_dir(&root, &entry.path)?;
                }
                EntryKind::File(_) if entry.key == META_FILE || entry.key == SEAL_FILE => {
                    return Err(StoreError::Io {
                        op: "publish",
                        path: entry.path.clone(),
                        source: io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            "ckpt.json and its seal are written by publish, not by the caller",
                        ),
                    });
                }
                EntryKind::File(_) => {
                    let digest = digest_and_privatise(&root, &entry.path)?;
                    total += digest.size;
                    files.insert(entry.key.clone(), digest);
                }
                EntryKind::Other => {
                    return Err(StoreError::UnsafeStore {
                        path: entry.path.clone(),
                        reason: "a checkpoint may hold only regular files and directories",
                    })
                }
            }
        }
        meta.container_id = self.container_id.clone();
        meta.name = self.name.clone();
        meta.files = files;
        meta.size_bytes = total;
        let json = meta.to_json();
        write_new_file(&root, &self.dir.join(META_FILE), json.as_bytes())?;
        // Only a schema that promises a seal gets one (a copy of a schema-1
        // checkpoint stays unsealed: nothing vouched for its ckpt.json).
        if meta.is_sealed() {
            write_new_file(&root, &self.dir.join(SEAL_FILE), seal_of(json.as_bytes()).as_bytes())?;
        }
        fsync_dir(&root, &self.dir)?;

        ensure_private_dir_in(&root, &self.checkpoints_dir)?;
        let target = self.checkpoints_dir.join(&self.name);
        let already = || StoreError::AlreadyExists {
            container: self.container_id.clone(),
            name: self.name.clone(),
        };
        if fs::symlink_metadata(&target).is_ok() {
            return Err(already());
        }
        if let Err(e) = fs::rename(&self.dir, &target) {
            // Lost a race with another publisher (who did not hold the lock).
            if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) {
                return Err(already());
            }
            return Err(write_err(&root, "rename", &self.dir)(e));
        }
        self.published = true;
        fsync_dir(&root, &self.checkpoints_dir)?;
        fsync_dir(&root, &self.staging_root)?;
        log::info!(
            "published checkpoint {} of {} ({} bytes)",
            self.name,
            self.container_id,
            total
        );
        Ok(target)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.published {
            // Not through a `.ckpt-staging` swapped for a symlink meanwhile.
            if let Err(e) = real_dir(&self.root, &self.staging_root) {
                log::warn!("leaving unpublished staging dir {}: {e}", self.dir.display());
                return;
            }
            // CRIU killed mid-dump may leave mounts in its work dir (this
            // one): unmount them rather than delete through them.
            if let Err(e) = crate::mounts::remove_leftover_tree(&self.mountinfo, &self.dir) {
                log::warn!("cannot remove unpublished staging dir {}: {e}", self.dir.display());
            }
        }
    }
}

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

/// Removes `.ckpt-staging/*` entries left by ckpt processes that no longer
/// exist (`<proc>/<pid>` is missing). Entries of live pids are kept: they
/// may be another command's work in progress. (A reused pid only delays
/// the cleanup to a later run.) Failures to remove one entry are logged,
/// not returned, so one stuck directory never blocks new checkpoints.
pub fn clean_stale_staging(layout: &Layout, proc: &ProcRoot, container_id: &str) -> Result<(), StoreError> {
    let staging_root = layout.staging_root(container_id);
    // A symlinked `.ckpt-staging` would make "dead pids' entries" of
    // whatever it points to.
    if !real_dir(layout.root(), &staging_root)? {
        return Ok(());
    }
    let read = fs::read_dir(&staging_root).map_err(io_err("read", &staging_root))?;
    for entry in read {
        let entry = entry.map_err(io_err("read", &staging_root))?;
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(staging_pid) else {
            log::debug!("leaving unknown staging entry {}", entry.path().display());
            continue;
        };
        if i32::try_from(pid).is_ok_and(|p| proc.exists(p)) {
            continue;
        }
        let path = entry.path();
        // A dead restore's work dir may hold CRIU's cgroup yard (the host's
        // cgroup hierarchies): unmount what is below, never delete through it.
        let removed = crate::mounts::remove_leftover_tree(&proc.own_mountinfo(), &path);
        match removed {
            Ok(()) => log::info!("removed stale staging dir {} of dead pid {pid}", path.display()),
            Err(e) => log::warn!("cannot remove stale staging dir {}: {e}", path.display()),
        }
    }
    Ok(())
}

/// The `<pid>` of a staging entry `<name>.<pid>.<nonce>` or
/// `<name>.rm.<pid>.<nonce>` (names may contain dots; nonces never do).
fn staging_pid(entry: &str) -> Option<u32> {
    let mut parts = entry.rsplitn(3, '.');
    let (_nonce, pid, _rest) = (parts.next()?, parts.next()?, parts.next()?);
    pid.parse().ok().filter(|&p| p > 0)
}

/// Removes a published checkpoint: renames `checkpoints/<name>` to
/// `.ckpt-staging/<name>.rm.<pid>.<nonce>`, then deletes that. A crash in
/// between leaves only a stale staging entry, cleaned by the next `begin`.
pub fn remove(layout: &Layout, container_id: &str, name: &str) -> Result<(), StoreError> {
    let root = layout.root();
    let dir = layout.checkpoint_dir(container_id, name);
    let not_found = || StoreError::NotFound {
        container: container_id.to_string(),
        name: name.to_string(),
    };
    // Through a symlinked `checkpoints/` (or container dir) the rename and
    // delete below would act on whatever it points to.
    if !real_dir(root, &layout.checkpoints_dir(container_id))? {
        return Err(not_found());
    }
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(StoreError::UnsafeStore {
                path: dir,
                reason: SYMLINK,
            })
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(io_err("inspect", &dir)(e)),
    }
    let staging_root = layout.staging_root(container_id);
    ensure_private_dir_in(root, &staging_root)?;
    let trash = staging_root.join(format!("{name}.rm.{}.{}", std::process::id(), nonce()));
    fs::rename(&dir, &trash).map_err(write_err(root, "rename", &dir))?;
    fsync_dir(root, &layout.checkpoints_dir(container_id))?;
    // A checkpoint never has mounts below it; should one be there, this
    // stops at it instead of deleting what it shows.
    crate::mounts::remove_tree(&trash).map_err(|e| StoreError::Io {
        op: "remove",
        path: trash.clone(),
        source: std::io::Error::other(e),
    })?;
    log::info!("removed checkpoint {name} of {container_id}");
    Ok(())
}

/// A process-unique, never-repeating suffix: time in ns and a counter, in
/// hex so that it never contains a `.`.
fn nonce() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
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

/// Replaces `<root>/<id>/<rel>` (`rel` a relative path chosen by ckpt, e.g.
/// `bundle/config.json`) with `bytes`: written 0600 and fsynced as
/// `.ckpt-staging/<file name>.<pid>.<nonce>` (so a crash leaves only a stale
/// staging entry, cleaned like any other), renamed into place, and the
/// directory fsynced. Missing directories on the way are created 0700;
/// symlinks on the way are refused. A symlink at `rel` itself is replaced,
/// never written through.
pub fn replace_file(layout: &Layout, container_id: &str, rel: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
    let root = layout.root();
    let path = layout.container_dir(container_id).join(rel);
    let (Some(dir), Some(file_name)) = (path.parent(), path.file_name()) else {
        return Err(StoreError::Io {
            op: "write",
            path,
            source: io::Error::new(io::ErrorKind::InvalidInput, "not a file path"),
        });
    };
    ensure_private_dir_in(root, dir)?;
    let staging_root = layout.staging_root(container_id);
    ensure_private_dir_in(root, &staging_root)?;
    let tmp = staging_root.join(format!(
        "{}.{}.{}",
        file_name.to_string_lossy(),
        std::process::id(),
        nonce()
    ));
    let written = write_new_file(root, &tmp, bytes)
        .and_then(|()| fs::rename(&tmp, &path).map_err(write_err(root, "rename", &path)));
    if let Err(e) = written {
        // A full disk must not leave a half-written staging entry behind.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fsync_dir(root, dir)?;
    Ok(path)
}

fn write_new_file(root: &Path, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
        .map_err(write_err(root, "create", path))?;
    file.write_all(bytes).map_err(write_err(root, "write", path))?;
    file.sync_all().map_err(write_err(root, "fsync", path))
}

fn set_mode(root: &Path, path: &Path, mode: u32) -> Result<(), StoreError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(write_err(root, "chmod", path))
}

pub(super) fn fsync_dir(root: &Path, dir: &Path) -> Result<(), StoreError> {
    let d = File::open(dir).map_err(io_err("open", dir))?;
    d.sync_all().map_err(write_err(root, "fsync", dir))
}

/// Hashes a staged file, makes it 0600 if it is not, and fsyncs it (CRIU
/// may not have).
fn digest_and_privatise(root: &Path, path: &Path) -> Result<FileDigest, StoreError> {
    let file = open_no_follow(path)?;
    let mode = file.metadata().map_err(io_err("inspect", path))?.mode();
    if mode & 0o7777 != FILE_MODE {
        file.set_permissions(fs::Permissions::from_mode(FILE_MODE))
            .map_err(write_err(root, "chmod", path))?;
    }
    let digest = digest_open_file(&file, path)?;
    file.sync_all().map_err(write_err(root, "fsync", path))?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_pid_reads_the_pid_from_the_right() {
        assert_eq!(staging_pid("cp1.42.abc"), Some(42));
        assert_eq!(staging_pid("v1.2.3.42.abc"), Some(42));
        assert_eq!(staging_pid("cp1.rm.42.abc"), Some(42));
        assert_eq!(staging_pid("cp1.abc"), None);
        assert_eq!(staging_pid("cp1.x42.abc"), None);
        assert_eq!(staging_pid("cp1.0.abc"), None);
        assert_eq!(staging_pid("not-ours"), None);
    }

    #[test]
    fn nonces_differ_and_have_no_dot() {
        let (a, b) = (nonce(), nonce());
        assert_ne!(a, b);
        assert!(!a.contains('.') && !b.contains('.'));
        assert_eq!(staging_pid(&format!("cp1.7.{a}")), Some(7));
    }
}
