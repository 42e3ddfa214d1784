//! Publishing an imported checkpoint. An archive is read into the store's
//! own staging entry, `<root>/.ckpt-staging/import.<pid>.<nonce>/` (its
//! target container is known only once the archive is read, and nothing in
//! a dot-directory is ever listed), and [`ImportStaging::publish`] makes
//! its `checkpoint/` part the checkpoint `<id>/checkpoints/<name>` by one
//! rename, with the root filesystem and the private bind files the import
//! made inside it (`rootfs/`, `binds/`, see [`super::layout`]).
//!
//! Promises: a reader sees the whole imported checkpoint or none of it;
//! its CRIU images and ckpt files are 0600 and listed with their digests
//! in a new `ckpt.json` (sealed), written here from what the import
//! decided, never the source host's; the root filesystem keeps the modes
//! the archive gave it (the reader checked them) and is made durable with
//! one `syncfs(2)`; whatever the import staged besides is removed on drop,
//! published or not. Never follows a symlink and never deletes through a
//! mount.
use super::files::{real_dir, walk_top};
use super::layout::{StagingKind, IMPORTED_BINDS, IMPORTED_ROOTFS};
use super::metadata::{seal_of, META_FILE, SEAL_FILE};
use super::staging::digest_and_privatise;
use super::write::{ensure_private_dir_in, fsync_dir, nonce, set_mode, write_err, write_new_file, DIR_MODE};
use super::{io_err, names, CheckpointMeta, Layout, StoreError};
use crate::procfs::ProcRoot;
use std::collections::BTreeMap;
use std::fs::{self, DirBuilder};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The staged checkpoint files, relative to the staging entry.
pub const CHECKPOINT_PART: &str = "checkpoint";

/// An import being staged; removed on drop (all of it, or what publishing
/// left behind).
#[derive(Debug)]
pub struct ImportStaging {
    dir: PathBuf,
    mountinfo: PathBuf,
    root: PathBuf,
}

impl ImportStaging {
    /// Creates `<root>/.ckpt-staging/import.<pid>.<nonce>/` (0700), empty.
    pub(super) fn create(layout: &Layout, proc: &ProcRoot) -> Result<ImportStaging, StoreError> {
        let root = layout.root();
        ensure_private_dir_in(root, &layout.store_staging_root())?;
        let dir = layout.store_staging_entry(StagingKind::Import, std::process::id(), &nonce());
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(&dir)
            .map_err(write_err(root, "create", &dir))?;
        set_mode(root, &dir, DIR_MODE)?;
        Ok(ImportStaging {
            dir,
            mountinfo: proc.own_mountinfo(),
            root: root.to_path_buf(),
        })
    }

    /// The staging directory, empty at first: what the archive reader fills.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates the private file `binds/<file>` with `bytes` (0600, fsynced)
    /// and returns where it will be once published as checkpoint `name` of
    /// `id`: the source of a bind mount that replaces an engine file.
    pub fn write_bind_file(
        &self,
        layout: &Layout,
        id: &str,
        name: &str,
        file: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, StoreError> {
        let binds = self.binds_dir()?;
        write_new_file(&self.root, &binds.join(file), bytes)?;
        Ok(layout.imported_binds(id, name).join(file))
    }

    /// Creates the private directory `binds/<dir>` (0700) and returns its
    /// published path, as [`ImportStaging::write_bind_file`].
    pub fn make_bind_dir(&self, layout: &Layout, id: &str, name: &str, dir: &str) -> Result<PathBuf, StoreError> {
        let path = self.binds_dir()?.join(dir);
        DirBuilder::new()
            .mode(DIR_MODE)
            .create(&path)
            .map_err(write_err(&self.root, "create", &path))?;
        Ok(layout.imported_binds(id, name).join(dir))
    }

    fn binds_dir(&self) -> Result<PathBuf, StoreError> {
        let binds = self.dir.join(IMPORTED_BINDS);
        if !binds.exists() {
            DirBuilder::new()
                .mode(DIR_MODE)
                .create(&binds)
                .map_err(write_err(&self.root, "create", &binds))?;
        }
        Ok(binds)
    }

    /// Publishes the staged `checkpoint/` as checkpoint `meta.name` of
    /// container `meta.container_id`, with the staged directory `rootfs`
    /// (relative to the staging entry) as its root filesystem when given.
    /// `meta.files` and `meta.size_bytes` are filled from the files
    /// themselves (each made 0600 and fsynced); the source's `ckpt.json`
    /// and seal, if staged, are replaced. The caller holds the target's
    /// lock. Returns the published directory.
    pub fn publish(
        self,
        layout: &Layout,
        mut meta: CheckpointMeta,
        rootfs: Option<&str>,
    ) -> Result<PathBuf, StoreError> {
        let (id, name) = (meta.container_id.clone(), meta.name.clone());
        names::validate_container_id(&id)?;
        names::validate_checkpoint_name(&name)?;
        let root = self.root.clone();
        let ck = self.dir.join(CHECKPOINT_PART);
        for old in [META_FILE, SEAL_FILE] {
            match fs::remove_file(ck.join(old)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", ck.join(old))(e)),
            }
        }
        if let Some(rootfs) = rootfs {
            let from = self.dir.join(rootfs);
            fs::rename(&from, ck.join(IMPORTED_ROOTFS)).map_err(write_err(&root, "rename", &from))?;
        }
        let binds = self.dir.join(IMPORTED_BINDS);
        if binds.is_dir() {
            fs::rename(&binds, ck.join(IMPORTED_BINDS)).map_err(write_err(&root, "rename", &binds))?;
        }
        let mut files = BTreeMap::new();
        let mut total = 0;
        for entry in walk_top(&ck)? {
            if entry.is_dir && (entry.name == IMPORTED_ROOTFS || entry.name == IMPORTED_BINDS) {
                continue;
            }
            if !entry.is_file {
                return Err(StoreError::UnsafeStore {
                    path: entry.path,
                    reason: "an imported checkpoint may hold only regular files beside its rootfs",
                });
            }
            let digest = digest_and_privatise(&root, &entry.path)?;
            total += digest.size;
            files.insert(entry.name, digest);
        }
        meta.files = files;
        meta.size_bytes = total;
        let json = meta.to_json();
        write_new_file(&root, &ck.join(META_FILE), json.as_bytes())?;
        write_new_file(&root, &ck.join(SEAL_FILE), seal_of(json.as_bytes()).as_bytes())?;
        set_mode(&root, &ck, DIR_MODE)?;
        fsync_dir(&root, &ck)?;
        // The root filesystem's files and directories: one syncfs rather
        // than an fsync per file.
        syncfs(&ck).map_err(write_err(&root, "sync", &ck))?;

        ensure_private_dir_in(&root, &layout.checkpoints_dir(&id))?;
        if !real_dir(&root, &layout.checkpoints_dir(&id))? {
            return Err(StoreError::Io {
                op: "create",
                path: layout.checkpoints_dir(&id),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        let target = layout.checkpoint_dir(&id, &name);
        let already = || StoreError::AlreadyExists {
            container: id.clone(),
            name: name.clone(),
        };
        if fs::symlink_metadata(&target).is_ok() {
            return Err(already());
        }
        if let Err(e) = fs::rename(&ck, &target) {
            if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) {
                return Err(already());
            }
            return Err(write_err(&root, "rename", &ck)(e));
        }
        fsync_dir(&root, &layout.checkpoints_dir(&id))?;
        log::info!("published imported checkpoint {name} of {id} ({total} bytes of images)");
        Ok(target)
    }
}

impl Drop for ImportStaging {
    fn drop(&mut self) {
        if let Err(e) = crate::mounts::remove_leftover_tree(&self.mountinfo, &self.dir) {
            log::warn!("cannot remove the import's staging dir {}: {e}", self.dir.display());
        }
    }
}

fn syncfs(dir: &Path) -> std::io::Result<()> {
    let f = fs::File::open(dir)?;
    // SAFETY: `f` is an open fd for the duration of the call.
    let rc = unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&f)) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
