//! Writing checkpoints: a staging directory, and its atomic publication by
//! `rename(2)`; the copy of a checkpoint into another container; a
//! restore's work directory.
//!
//! Promises: a checkpoint appears in `checkpoints/` whole (every file
//! fsynced, `ckpt.json` written last, then one rename and an fsync of the
//! parent) or not at all; every directory it creates is 0700 and every file
//! it leaves is 0600, whatever the umask or the writer (CRIU) chose. Every
//! directory here is a staging entry (see [`StagingKind`]), so what a
//! killed ckpt leaves is cleaned by the next command (`stale.rs`).
//!
//! Never follows a symlink inside the store, and never deletes through a
//! mount (CRIU and runtimes killed part-way leave mounts in their work
//! directories).
use super::files::{digest_open_file, open_no_follow, real_dir, walk, EntryKind};
use super::layout::StagingKind;
use super::metadata::{seal_of, FileDigest, META_FILE, SEAL_FILE};
use super::write::{
    copy_new_file, ensure_private_dir_in, fsync_dir, nonce, set_mode, write_err, write_new_file, DIR_MODE, FILE_MODE,
};
use super::{io_err, CheckpointEntry, CheckpointMeta, Layout, StoreError};
use crate::procfs::ProcRoot;
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

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
        let dir = new_private_dir(
            layout,
            &layout.staging_entry(
                container_id,
                StagingKind::Checkpoint(name),
                std::process::id(),
                &nonce(),
            ),
            container_id,
        )?;
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

    /// Removes `<staging>/<file>` (a plain file name): the page files an
    /// incremental create has stored as chunks. Their page-cache copies
    /// never need to reach the disk.
    pub fn remove_file(&self, file: &str) -> Result<(), StoreError> {
        let path = self.dir.join(file);
        let mut parts = Path::new(file).components();
        if !matches!((parts.next(), parts.next()), (Some(Component::Normal(_)), None)) {
            return Err(StoreError::Io {
                op: "remove",
                path,
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a plain file name"),
            });
        }
        fs::remove_file(&path).map_err(write_err(&self.root, "remove", &path))
    }

    /// Fills `meta.files` and `meta.size_bytes` with every file of the
    /// staging dir (making each 0600), writes `ckpt.json`, fsyncs
    /// everything, and renames the dir into `checkpoints/<name>`. Returns
    /// the published path. `meta.container_id` and `meta.name` are set to
    /// the staging's own, so the metadata always matches its directory.
    pub fn publish(self, mut meta: CheckpointMeta) -> Result<PathBuf, StoreError> {
        let root = self.root.clone();
        let mut files = BTreeMap::new();
        let mut total = 0u64;
        for entry in &walk(&self.dir)? {
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
        let (name, id) = (self.name.clone(), self.container_id.clone());
        let target = self.finish(Some(&meta))?;
        log::info!("published checkpoint {name} of {id} ({total} bytes)");
        Ok(target)
    }

    /// Writes `meta` (when there is one) as `ckpt.json`, sealed if its
    /// schema is, fsyncs the directory and renames it into
    /// `checkpoints/<name>`.
    fn finish(mut self, meta: Option<&CheckpointMeta>) -> Result<PathBuf, StoreError> {
        let root = self.root.clone();
        if let Some(meta) = meta {
            let json = meta.to_json();
            write_new_file(&root, &self.dir.join(META_FILE), json.as_bytes())?;
            // Only a schema that promises a seal gets one (a copy of a schema-1
            // checkpoint stays unsealed: nothing vouched for its ckpt.json).
            if meta.is_sealed() {
                write_new_file(&root, &self.dir.join(SEAL_FILE), seal_of(json.as_bytes()).as_bytes())?;
            }
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
        Ok(target)
    }
}

impl Staging {
    /// Keeps this unpublished directory at `to` (replacing what a former
    /// failed dump kept there) instead of removing it: `create --keep`.
    /// `to` must be in the container's directory; a symlink there is
    /// refused, never followed or replaced.
    pub fn keep(mut self, to: &Path) -> Result<PathBuf, StoreError> {
        let parent = to.parent().unwrap_or(&self.root).to_path_buf();
        match fs::symlink_metadata(to) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(StoreError::UnsafeStore {
                    path: to.to_path_buf(),
                    reason: if m.file_type().is_symlink() {
                        super::files::SYMLINK
                    } else {
                        "it is not a directory"
                    },
                })
            }
            Ok(_) => crate::mounts::remove_leftover_tree(&self.mountinfo, to).map_err(|e| StoreError::Io {
                op: "remove the formerly kept dump",
                path: to.to_path_buf(),
                source: io::Error::other(e.to_string()),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspect", to)(e)),
        }
        fs::rename(&self.dir, to).map_err(io_err("keep the failed dump as", to))?;
        self.published = true;
        fsync_dir(&self.root, &parent)?;
        Ok(to.to_path_buf())
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

/// Copies the published checkpoint `entry` to container `id` under the
/// same name: its top-level files copied 0600 into a staging directory,
/// then one rename, as for any checkpoint. A `ckpt.json` is written anew
/// from the metadata as loaded (its seal was checked then, and the caller
/// verified the files), naming its new container, and sealed again if it
/// was sealed: the copy can then be restored into that container. A
/// foreign checkpoint (no metadata) is copied as it is.
pub(super) fn copy_checkpoint(
    layout: &Layout,
    proc: &ProcRoot,
    entry: &CheckpointEntry,
    id: &str,
) -> Result<PathBuf, StoreError> {
    let staging = Staging::create(layout, proc, id, &entry.name)?;
    let read = fs::read_dir(&entry.dir).map_err(io_err("read", &entry.dir))?;
    for e in read {
        let e = e.map_err(io_err("read", &entry.dir))?;
        let name = e.file_name();
        if !e.file_type().map_err(io_err("inspect", e.path()))?.is_file() || name == META_FILE || name == SEAL_FILE {
            continue;
        }
        copy_new_file(layout.root(), &e.path(), &staging.dir.join(&name))?;
    }
    let meta = entry.meta.clone().map(|mut meta| {
        meta.container_id = id.to_string();
        meta
    });
    staging.finish(meta.as_ref())
}

/// A restore's work directory, `.ckpt-staging/restore.<pid>.<nonce>`,
/// removed on drop. Never a plain `remove_dir_all`: CRIU killed part-way
/// leaves its cgroup yard (every cgroup hierarchy of the host) mounted in
/// it, so what is mounted below is unmounted first.
#[derive(Debug)]
pub struct WorkDir {
    dir: PathBuf,
    /// ckpt's own mountinfo.
    mountinfo: PathBuf,
}

impl WorkDir {
    pub(super) fn create(layout: &Layout, proc: &ProcRoot, id: &str) -> Result<WorkDir, StoreError> {
        let entry = layout.staging_entry(id, StagingKind::RestoreWork, std::process::id(), &nonce());
        Ok(WorkDir {
            dir: new_private_dir(layout, &entry, id)?,
            mountinfo: proc.own_mountinfo(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Writes `meta` as this directory's `ckpt.json` and seals it: the
    /// full form of an incremental checkpoint, for an export.
    pub(super) fn write_meta(&self, root: &Path, meta: &CheckpointMeta) -> Result<(), StoreError> {
        let json = meta.to_json();
        write_new_file(root, &self.dir.join(META_FILE), json.as_bytes())?;
        write_new_file(root, &self.dir.join(SEAL_FILE), seal_of(json.as_bytes()).as_bytes())
    }

    /// Copies (never links: a CRIU that wrote an image would change the
    /// published one) every top-level file of the published checkpoint
    /// `entry` but `ckpt.json`, its seal and `skip` into this directory,
    /// 0600: an incremental checkpoint's images, before its page files are
    /// reassembled next to them.
    pub(super) fn copy_files_of(&self, root: &Path, entry: &CheckpointEntry, skip: &[&str]) -> Result<(), StoreError> {
        let read = fs::read_dir(&entry.dir).map_err(io_err("read", &entry.dir))?;
        for e in read {
            let e = e.map_err(io_err("read", &entry.dir))?;
            let name = e.file_name();
            let skipped = name == META_FILE || name == SEAL_FILE || skip.iter().any(|s| name == *s);
            if skipped || !e.file_type().map_err(io_err("inspect", e.path()))?.is_file() {
                continue;
            }
            copy_new_file(root, &e.path(), &self.dir.join(&name))?;
        }
        Ok(())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = crate::mounts::remove_leftover_tree(&self.mountinfo, &self.dir) {
            log::warn!("cannot remove the restore work directory {}: {e}", self.dir.display());
        }
    }
}

/// Creates the staging entry `dir` of container `id` (0700; its parents
/// too). Not recursive: an existing dir of that name is an error, never
/// reused.
fn new_private_dir(layout: &Layout, dir: &Path, id: &str) -> Result<PathBuf, StoreError> {
    let root = layout.root();
    ensure_private_dir_in(root, &layout.staging_root(id))?;
    DirBuilder::new()
        .mode(DIR_MODE)
        .create(dir)
        .map_err(write_err(root, "create", dir))?;
    set_mode(root, dir, DIR_MODE)?;
    Ok(dir.to_path_buf())
}

/// Hashes a staged file, makes it 0600 if it is not, and fsyncs it (CRIU
/// may not have).
pub(super) fn digest_and_privatise(root: &Path, path: &Path) -> Result<FileDigest, StoreError> {
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
