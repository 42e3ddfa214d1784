//! PURE: every path in a store (see the module docs of `store` for the
//! tree). Nothing else in ckpt joins a file name onto a store path: a new
//! file of the store gets its name here first.

use std::path::{Path, PathBuf};

/// `<root>/<id>/.ckpt.lock`
const LOCK_FILE: &str = ".ckpt.lock";
/// `<root>/<id>/.ckpt-staging/`: work in progress, cleaned when its pid is dead.
const STAGING_DIR: &str = ".ckpt-staging";
/// `<root>/<id>/checkpoints/`
const CHECKPOINTS_DIR: &str = "checkpoints";
/// `<root>/<id>/chunks/`: the chunk store of the container's incremental
/// checkpoints (its own tree: see `chunks`).
const CHUNKS_DIR: &str = "chunks";
/// `<root>/<id>/bundle/`: a bundle generated for a restore.
const BUNDLE_DIR: &str = "bundle";
/// The bundle's spec, `bundle/config.json`.
const BUNDLE_CONFIG: &str = "bundle/config.json";
/// `bundle/criu.conf`: the CRIU config file of a `start --tcp-close`.
const BUNDLE_CRIU_CONFIG: &str = "bundle/criu.conf";
/// `checkpoints/<name>/rootfs/`: the root filesystem an import unpacked
/// for a runc/crun checkpoint, used in place by its restores.
pub const IMPORTED_ROOTFS: &str = "rootfs";
/// `checkpoints/<name>/binds/`: the private files an import made for the
/// engine's own bind mounts (`/etc/hosts`, ...), replacing the source
/// host's.
pub const IMPORTED_BINDS: &str = "binds";

/// The logs a store keeps next to a container's checkpoints, one file each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// `output.log`: stdout and stderr of the container restored under
    /// this id, appended by the relay.
    Output,
    /// `restore.log`: CRIU's log of the latest restore of this id.
    Restore,
    /// `dump-failed.log`: CRIU's log of the latest failed dump of this id.
    DumpFailed,
}

impl Log {
    /// The file's name in the container's directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Log::Output => "output.log",
            Log::Restore => "restore.log",
            Log::DumpFailed => "dump-failed.log",
        }
    }
}

/// What a staging entry is for; its name is `<prefix>.<pid>.<nonce>`, so
/// that one left by a dead ckpt is cleaned by the next command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StagingKind<'a> {
    /// A checkpoint being written (or copied): `<name>.<pid>.<nonce>`.
    Checkpoint(&'a str),
    /// A checkpoint being removed: `<name>.rm.<pid>.<nonce>`.
    Removal(&'a str),
    /// A restore's work directory: `restore.<pid>.<nonce>`.
    RestoreWork,
    /// A file being replaced: `<file name>.<pid>.<nonce>`.
    Replacement(&'a str),
    /// An archive being imported, in the store's own staging directory
    /// (its container is known only once the archive is read):
    /// `import.<pid>.<nonce>`.
    Import,
    /// An archive being written for a push: `push.<pid>.<nonce>`.
    Push,
}

/// The files and directories `start` writes below `<root>/<target>/`, as
/// paths relative to it: what must be ckpt's own before it writes.
pub const RESTORE_TARGET_FILES: &[&str] = &[
    "output.log",
    "restore.log",
    STAGING_DIR,
    BUNDLE_DIR,
    BUNDLE_CONFIG,
    BUNDLE_CRIU_CONFIG,
];

/// Paths inside a store root. Callers validate ids and names first.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
        }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `<root>/<id>`
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }
    /// `<root>/<id>/checkpoints`
    pub fn checkpoints_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(CHECKPOINTS_DIR)
    }
    /// `<root>/<id>/checkpoints/<name>`
    pub fn checkpoint_dir(&self, id: &str, name: &str) -> PathBuf {
        self.checkpoints_dir(id).join(name)
    }
    /// `<root>/<id>/.ckpt-staging`
    pub fn staging_root(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(STAGING_DIR)
    }
    /// `<root>/<id>/.ckpt-staging/<kind's name>.<pid>.<nonce>`
    pub fn staging_entry(&self, id: &str, kind: StagingKind, pid: u32, nonce: &str) -> PathBuf {
        let prefix = match kind {
            StagingKind::Checkpoint(name) | StagingKind::Replacement(name) => name.to_string(),
            StagingKind::Removal(name) => format!("{name}.rm"),
            StagingKind::RestoreWork => "restore".to_string(),
            StagingKind::Import => "import".to_string(),
            StagingKind::Push => "push".to_string(),
        };
        self.staging_root(id).join(format!("{prefix}.{pid}.{nonce}"))
    }
    /// `<root>/.ckpt-staging`: the store's own staging directory, for work
    /// whose container is not known yet (an import). Its name can never be
    /// a container id, so `ls` never lists it.
    pub fn store_staging_root(&self) -> PathBuf {
        self.root.join(STAGING_DIR)
    }
    /// `<root>/.ckpt-staging/<kind's name>.<pid>.<nonce>`
    pub fn store_staging_entry(&self, kind: StagingKind, pid: u32, nonce: &str) -> PathBuf {
        let file = self.staging_entry("x", kind, pid, nonce);
        let name = file.file_name().expect("a staging entry has a name");
        self.store_staging_root().join(name)
    }
    /// `<root>/<id>/checkpoints/<name>/rootfs`: an imported checkpoint's
    /// root filesystem.
    pub fn imported_rootfs(&self, id: &str, name: &str) -> PathBuf {
        self.checkpoint_dir(id, name).join(IMPORTED_ROOTFS)
    }
    /// `<root>/<id>/checkpoints/<name>/binds`: an imported checkpoint's
    /// private engine files.
    pub fn imported_binds(&self, id: &str, name: &str) -> PathBuf {
        self.checkpoint_dir(id, name).join(IMPORTED_BINDS)
    }
    /// `<root>/<id>/.ckpt.lock`
    pub fn lock_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(LOCK_FILE)
    }
    /// `<root>/<id>/<log>`
    pub fn log(&self, id: &str, log: Log) -> PathBuf {
        self.container_dir(id).join(log.file_name())
    }
    /// `<root>/<id>/dump-failed`: a failed dump's whole directory (CRIU's
    /// log, work files and partial images), kept by `create --keep`.
    pub fn kept_dump(&self, id: &str) -> PathBuf {
        self.container_dir(id).join("dump-failed")
    }
    /// `<root>/<id>/chunks`: the container's chunk store.
    pub fn chunks_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(CHUNKS_DIR)
    }
    /// `<root>/<id>/bundle`: the bundle generated for a restore.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(BUNDLE_DIR)
    }
    /// `<root>/<id>/bundle/config.json`
    pub fn bundle_config(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(BUNDLE_CONFIG)
    }
    /// `<root>/<id>/bundle/criu.conf`
    pub fn bundle_criu_config(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(BUNDLE_CRIU_CONFIG)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_of_a_container() {
        let l = Layout::new(Path::new("/s"));
        #[rustfmt::skip]
        let table: &[(PathBuf, &str)] = &[
            (l.container_dir("c"), "/s/c"),
            (l.checkpoints_dir("c"), "/s/c/checkpoints"),
            (l.checkpoint_dir("c", "n"), "/s/c/checkpoints/n"),
            (l.staging_root("c"), "/s/c/.ckpt-staging"),
            (l.staging_entry("c", StagingKind::Checkpoint("n.1"), 7, "ab"), "/s/c/.ckpt-staging/n.1.7.ab"),
            (l.staging_entry("c", StagingKind::Removal("n"), 7, "ab"), "/s/c/.ckpt-staging/n.rm.7.ab"),
            (l.staging_entry("c", StagingKind::RestoreWork, 7, "ab"), "/s/c/.ckpt-staging/restore.7.ab"),
            (l.staging_entry("c", StagingKind::Replacement("config.json"), 7, "ab"), "/s/c/.ckpt-staging/config.json.7.ab"),
            (l.lock_path("c"), "/s/c/.ckpt.lock"),
            (l.log("c", Log::Output), "/s/c/output.log"),
            (l.log("c", Log::Restore), "/s/c/restore.log"),
            (l.log("c", Log::DumpFailed), "/s/c/dump-failed.log"),
            (l.kept_dump("c"), "/s/c/dump-failed"),
            (l.bundle_dir("c"), "/s/c/bundle"),
            (l.chunks_dir("c"), "/s/c/chunks"),
            (l.bundle_config("c"), "/s/c/bundle/config.json"),
            (l.store_staging_root(), "/s/.ckpt-staging"),
            (l.store_staging_entry(StagingKind::Import, 7, "ab"), "/s/.ckpt-staging/import.7.ab"),
            (l.staging_entry("c", StagingKind::Push, 7, "ab"), "/s/c/.ckpt-staging/push.7.ab"),
            (l.imported_rootfs("c", "n"), "/s/c/checkpoints/n/rootfs"),
            (l.imported_binds("c", "n"), "/s/c/checkpoints/n/binds"),
        ];
        for (got, want) in table {
            assert_eq!(got, Path::new(want));
        }
    }

    #[test]
    fn a_start_checks_every_file_it_writes() {
        let l = Layout::new(Path::new("/s"));
        let written = [
            l.log("c", Log::Output),
            l.log("c", Log::Restore),
            l.staging_root("c"),
            l.bundle_dir("c"),
            l.bundle_config("c"),
            l.bundle_criu_config("c"),
        ];
        let checked: Vec<PathBuf> = RESTORE_TARGET_FILES
            .iter()
            .map(|r| l.container_dir("c").join(r))
            .collect();
        assert_eq!(checked, written);
    }
}
