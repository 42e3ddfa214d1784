//! Pure path arithmetic of the store (see the module docs of `store`).
use std::path::{Path, PathBuf};

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
        self.container_dir(id).join("checkpoints")
    }
    /// `<root>/<id>/checkpoints/<name>`
    pub fn checkpoint_dir(&self, id: &str, name: &str) -> PathBuf {
        self.checkpoints_dir(id).join(name)
    }
    /// `<root>/<id>/.ckpt-staging`
    pub fn staging_root(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(".ckpt-staging")
    }
    /// `<root>/<id>/.ckpt.lock`
    pub fn lock_path(&self, id: &str) -> PathBuf {
        self.container_dir(id).join(".ckpt.lock")
    }
}
