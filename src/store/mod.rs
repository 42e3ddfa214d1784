//! The checkpoint store: where checkpoints live on disk and how they get there.
//!
//! ```text
//! <root>/                                  0700 (default /var/lib/ckpt; for Docker
//!   <full-container-id>/                   0700   containers <docker-root>/containers)
//!     .ckpt.lock                           0600  flock held by create/rm/start
//!     .ckpt-staging/<name>.<pid>.<nonce>/  0700  a checkpoint being written
//!     checkpoints/                         0700
//!       <name>/                            0700  a published checkpoint
//!         *.img                                  CRIU images (top level, as Docker expects)
//!         descriptors.json                       runc's stdio descriptors
//!         dump.log                               CRIU's log of the dump
//!         inventory.json                         the preflight inventory
//!         ckpt.json                              metadata, schema-versioned, checksums
//!         ckpt.json.blake3                       the checksum of ckpt.json (schema 2)
//!     chunks/                            0700  the chunk store of incremental checkpoints (`chunks`)
//!     output.log, restore.log, dump-failed.log   logs of the latest restore / failed dump
//!     bundle/config.json                         a bundle generated for a restore
//! ```
//! `layout.rs` names every one of these paths; `write.rs` is the one way a
//! file gets into the store (0600, `O_NOFOLLOW`, fsync, renamed into place
//! where it replaces one); `staging.rs` publishes, copies and holds restore
//! work dirs; `remove.rs` removes; `stale.rs` cleans what dead ckpt
//! processes left; `listing.rs` reads and verifies; `lock.rs` locks.
//! Every file is 0600: images hold process memory. Nothing in the store is
//! ever reached through a symlink: a planted one is refused by name.
//!
//! A checkpoint is written into a staging directory on the same filesystem
//! and published by `rename(2)`, so readers ([`Store::list`], [`Store::load`])
//! see a whole checkpoint or none. A checkpoint directory without a valid
//! `ckpt.json` is reported as foreign (e.g. made by `docker checkpoint
//! create`), never as ckpt's own.
//!
//! This module never runs CRIU nor touches processes.

pub mod checkpoint_dir;
mod files;
pub mod import;
pub mod layout;
pub mod listing;
pub mod lock;
pub mod metadata;
pub mod names;
mod remove;
mod staging;
mod stale;
mod write;

pub use files::open_append_private;
pub use import::ImportStaging;
pub use layout::{Layout, Log};
pub use lock::ContainerLock;
pub use metadata::{
    CheckpointMeta, FileDigest, ImportRecord, IncrementalRecord, InventorySummary, INCREMENTAL_SCHEMA, NEWEST_SCHEMA,
    SCHEMA_VERSION,
};
pub use staging::{Staging, WorkDir};
pub use write::{ensure_private_dir, DIR_MODE, FILE_MODE};

use crate::procfs::ProcRoot;
use std::path::{Path, PathBuf};

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A checkpoint name breaks the naming rule.
    #[error("invalid checkpoint name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// A container id would escape the store or is malformed.
    #[error("invalid container id {id:?}: {reason}")]
    InvalidContainerId { id: String, reason: &'static str },
    /// No checkpoint of that name exists.
    #[error("container {container} has no checkpoint named {name:?} (see `ckpt ls {container}`)")]
    NotFound { container: String, name: String },
    /// A checkpoint of that name already exists.
    #[error("container {container} already has a checkpoint named {name:?}; pick another name or `ckpt rm {container} {name}` first")]
    AlreadyExists { container: String, name: String },
    /// Another ckpt command holds the container's lock.
    #[error("another ckpt command is working on container {container} (lock {path})")]
    Busy { container: String, path: PathBuf },
    /// The checkpoint's files do not match its metadata.
    #[error("checkpoint {dir} is corrupt: {reason}")]
    Corrupt { dir: PathBuf, reason: String },
    /// `ckpt.json` was written by a newer ckpt.
    #[error("{}/ckpt.json has metadata schema version {found}, this ckpt understands up to {supported}; upgrade ckpt", .dir.display())]
    FutureSchema { dir: PathBuf, found: u32, supported: u32 },
    /// The filesystem holding the store is full (or the user's quota is
    /// used up). `op` names the step, as in [`StoreError::Io`].
    #[error("no space left in the store at {root} (cannot {op} {path}); free some space or `ckpt rm` old checkpoints")]
    NoSpace {
        root: PathBuf,
        op: &'static str,
        path: PathBuf,
    },
    /// A store path is not what ckpt would have created (a symlink, not a
    /// directory, writable by others), so ckpt refuses to put images there.
    #[error("refusing to use {path}: {reason}")]
    UnsafeStore { path: PathBuf, reason: &'static str },
    /// Any other I/O step failed; `op` names the step.
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One row of [`Store::list`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckpointEntry {
    /// Full container id (the directory name).
    pub container_id: String,
    /// Checkpoint name.
    pub name: String,
    /// Published directory.
    pub dir: PathBuf,
    /// The metadata, when the checkpoint was made by ckpt and its
    /// `ckpt.json` parses; `None` for checkpoints made by other tools.
    pub meta: Option<CheckpointMeta>,
    /// Total bytes of the files in the directory.
    pub size_bytes: u64,
}

/// A checkpoint store rooted at a directory.
#[derive(Debug, Clone)]
pub struct Store {
    layout: Layout,
    /// Where the store tells live ckpt processes from dead ones, and reads
    /// ckpt's own mounts.
    proc: ProcRoot,
}

impl Store {
    /// Opens (creating with mode 0700 if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Store::open_with(root, &ProcRoot::host())
    }

    /// [`Store::open`], judging staging entries by the processes under
    /// `proc` (the commands' proc root; a fixture in tests).
    pub fn open_with(root: &Path, proc: &ProcRoot) -> Result<Store, StoreError> {
        write::ensure_private_dir(root)?;
        Ok(Store {
            layout: Layout::new(root),
            proc: proc.clone(),
        })
    }

    /// The path layout of this store.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Takes the per-container lock, waiting up to `wait` for it. When the
    /// container's directory had to be created for it, the lock removes
    /// the directory again on drop if the command put nothing else there
    /// (so a refused command leaves no trace).
    pub fn lock(&self, container_id: &str, wait: std::time::Duration) -> Result<ContainerLock, StoreError> {
        names::validate_container_id(container_id)?;
        let dir = self.layout.container_dir(container_id);
        let path = self.layout.lock_path(container_id);
        let deadline = std::time::Instant::now() + wait;
        let lock = loop {
            let created = write::create_private_dir_in(self.root(), &dir)?;
            match ContainerLock::try_acquire(&path, container_id, deadline)? {
                lock::Acquired::Locked(lock) if created => break lock.removing_dir_if_unused(),
                lock::Acquired::Locked(lock) => break lock,
                // Its last holder removed the directory it had created.
                lock::Acquired::Gone => continue,
            }
        };
        // Whoever holds the lock may clean what dead ckpt processes left.
        stale::clean_stale_staging(&self.layout, &self.proc, container_id)?;
        Ok(lock)
    }

    /// Refuses (as [`StoreError::UnsafeStore`], naming the path) anything
    /// that is not ckpt's own where `start` will write below `<root>/<id>`
    /// ([`layout::RESTORE_TARGET_FILES`]). Changes nothing: for checking,
    /// before a start writes anything, that the files it will write are
    /// its own.
    pub fn check_restore_target(&self, container_id: &str) -> Result<(), StoreError> {
        self.check_no_symlinks(container_id, layout::RESTORE_TARGET_FILES)
    }

    /// Refuses (as [`StoreError::UnsafeStore`], naming the path) a symlink
    /// at `<root>/<id>` or at any of `rels` below it (or on their way), and
    /// anything there that is neither a file nor a directory. Missing paths
    /// are fine. Changes nothing.
    fn check_no_symlinks(&self, container_id: &str, rels: &[&str]) -> Result<(), StoreError> {
        names::validate_container_id(container_id)?;
        let dir = self.layout.container_dir(container_id);
        if !files::real_dir(self.root(), &dir)? {
            return Ok(());
        }
        for rel in rels {
            let path = dir.join(rel);
            if let Some(parent) = path.parent() {
                if !files::real_dir(self.root(), parent)? {
                    continue;
                }
            }
            files::not_a_link(&path)?;
        }
        Ok(())
    }

    /// Replaces the log `log` of container `container_id` with `bytes`,
    /// atomically (see `write::replace_file`); returns its path.
    pub fn write_log(&self, container_id: &str, log: Log, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        let path = self.layout.log(container_id, log);
        write::replace_file(&self.layout, container_id, &path, bytes)?;
        Ok(path)
    }

    /// Writes `spec` as the `config.json` of the bundle generated for a
    /// restore into `container_id`, atomically; returns the bundle's
    /// directory.
    pub fn write_bundle(&self, container_id: &str, spec: &[u8]) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        write::replace_file(
            &self.layout,
            container_id,
            &self.layout.bundle_config(container_id),
            spec,
        )?;
        Ok(self.layout.bundle_dir(container_id))
    }

    /// Writes `<root>/<id>/bundle/criu.conf` (0600, renamed into place):
    /// the CRIU config file of a `start --tcp-close`; returns its path.
    pub fn write_criu_config(&self, container_id: &str, text: &[u8]) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        let path = self.layout.bundle_criu_config(container_id);
        write::replace_file(&self.layout, container_id, &path, text)?;
        Ok(path)
    }

    /// Replaces `<root>/<id>/<rel>` (for tests of the write path).
    #[cfg(test)]
    fn replace_file(&self, container_id: &str, rel: &str, bytes: &[u8]) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        let path = self.layout.container_dir(container_id).join(rel);
        write::replace_file(&self.layout, container_id, &path, bytes)?;
        Ok(path)
    }

    /// Copies the published checkpoint `entry` to container `container_id`
    /// under its name (a Docker `--name` copy): published whole or not at
    /// all, its `ckpt.json` naming the new container. The caller holds the
    /// lock and has verified `entry`.
    pub fn copy_checkpoint(&self, entry: &CheckpointEntry, container_id: &str) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        staging::copy_checkpoint(&self.layout, &self.proc, entry, container_id)
    }

    /// A new work directory for a restore into `container_id`, removed
    /// when dropped. The caller holds the lock.
    pub fn restore_work_dir(&self, container_id: &str) -> Result<WorkDir, StoreError> {
        names::validate_container_id(container_id)?;
        WorkDir::create(&self.layout, &self.proc, container_id)
    }

    /// Copies the files of the published checkpoint `entry` but its
    /// metadata and `skip` into the restore work directory `work` (see
    /// [`WorkDir`]): the images of an incremental checkpoint, whose page
    /// files the caller reassembles there. The caller holds the lock and
    /// has verified `entry`.
    pub fn copy_images(&self, entry: &CheckpointEntry, work: &WorkDir, skip: &[&str]) -> Result<(), StoreError> {
        work.copy_files_of(self.root(), entry, skip)
    }

    /// Writes `meta` (sealed) as the `ckpt.json` of the work directory
    /// `work`, which then holds a whole checkpoint: the full form of an
    /// incremental one, for an export.
    pub fn write_work_meta(&self, work: &WorkDir, meta: &CheckpointMeta) -> Result<(), StoreError> {
        work.write_meta(self.root(), meta)
    }

    /// Starts writing checkpoint `name` of `container_id`. Fails if the name
    /// is invalid or already published. Removes stale staging dirs left by
    /// ckpt processes that no longer exist. The caller should hold the lock.
    pub fn begin(&self, container_id: &str, name: &str) -> Result<Staging, StoreError> {
        names::validate_container_id(container_id)?;
        names::validate_checkpoint_name(name)?;
        stale::clean_stale_staging(&self.layout, &self.proc, container_id)?;
        if self.layout.checkpoint_dir(container_id, name).exists() {
            return Err(StoreError::AlreadyExists {
                container: container_id.to_string(),
                name: name.to_string(),
            });
        }
        Staging::create(&self.layout, &self.proc, container_id, name)
    }

    /// Starts an import: a new, empty staging entry in the store's own
    /// `.ckpt-staging/`, after removing those of dead ckpt processes.
    /// Nothing in it is visible until [`ImportStaging::publish`].
    pub fn begin_import(&self) -> Result<ImportStaging, StoreError> {
        stale::clean_stale_store_staging(&self.layout, &self.proc)?;
        ImportStaging::create(&self.layout, &self.proc)
    }

    /// A staging entry `<id>/.ckpt-staging/push.<pid>.<nonce>` for a file
    /// a command writes and removes again (an archive being pushed): its
    /// path, after creating the staging directory. Stale ones are cleaned
    /// like any other. The caller holds the lock.
    pub fn scratch_file(&self, container_id: &str) -> Result<PathBuf, StoreError> {
        names::validate_container_id(container_id)?;
        write::ensure_private_dir_in(self.root(), &self.layout.staging_root(container_id))?;
        Ok(self.layout.staging_entry(
            container_id,
            layout::StagingKind::Push,
            std::process::id(),
            &write::nonce(),
        ))
    }

    /// Lists published checkpoints of one container, or of all containers,
    /// sorted by container then creation time.
    pub fn list(&self, container_id: Option<&str>) -> Result<Vec<CheckpointEntry>, StoreError> {
        listing::list(&self.layout, container_id)
    }

    /// Loads a published checkpoint's metadata, checking the schema version
    /// but not the checksums (see [`Store::verify`]).
    pub fn load(&self, container_id: &str, name: &str) -> Result<CheckpointEntry, StoreError> {
        names::validate_container_id(container_id)?;
        names::validate_checkpoint_name(name)?;
        listing::load(&self.layout, container_id, name)
    }

    /// Verifies every file of a ckpt-made checkpoint against the checksums
    /// in its `ckpt.json`: a missing, extra-truncated or altered file is
    /// [`StoreError::Corrupt`] naming the file.
    pub fn verify(&self, entry: &CheckpointEntry) -> Result<(), StoreError> {
        listing::verify(entry)
    }

    /// Removes a published checkpoint (first renamed out of `checkpoints/`
    /// so that a crash mid-removal never leaves half a checkpoint listed).
    pub fn remove(&self, container_id: &str, name: &str) -> Result<(), StoreError> {
        names::validate_container_id(container_id)?;
        names::validate_checkpoint_name(name)?;
        remove::remove(&self.layout, container_id, name)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }
}

/// Convenience for `StoreError::Io`.
pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}

#[cfg(test)]
mod tests;
