//! Staging, publishing, listing, verifying and removing checkpoints (stub).
use super::{CheckpointEntry, CheckpointMeta, Layout, StoreError};
use std::path::{Path, PathBuf};

/// A checkpoint being written. Dropping it without [`Staging::publish`]
/// removes the staging directory.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub fn create(layout: &Layout, container_id: &str, name: &str) -> Result<Staging, StoreError> {
        let _ = (layout, container_id, name);
        todo!()
    }
    /// The staging directory (0700) to write files into.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Writes `bytes` to `<staging>/<file>` with mode 0600 and fsyncs it.
    pub fn write_file(&self, file: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let _ = (file, bytes);
        todo!()
    }
    /// Fills `meta.files` and `meta.size_bytes` with every file of the
    /// staging dir, writes `ckpt.json`, fsyncs everything, and renames the
    /// dir into `checkpoints/<name>`. Returns the published path.
    pub fn publish(self, meta: CheckpointMeta) -> Result<PathBuf, StoreError> {
        let _ = meta;
        todo!()
    }
}

pub fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    let _ = dir;
    Ok(())
}
pub fn clean_stale_staging(layout: &Layout, container_id: &str) -> Result<(), StoreError> {
    let _ = (layout, container_id);
    Ok(())
}
pub fn list(layout: &Layout, container_id: Option<&str>) -> Result<Vec<CheckpointEntry>, StoreError> {
    let _ = (layout, container_id);
    Ok(vec![])
}
pub fn load(layout: &Layout, container_id: &str, name: &str) -> Result<CheckpointEntry, StoreError> {
    let _ = (layout, container_id, name);
    todo!()
}
pub fn verify(entry: &CheckpointEntry) -> Result<(), StoreError> {
    let _ = entry;
    Ok(())
}
pub fn remove(layout: &Layout, container_id: &str, name: &str) -> Result<(), StoreError> {
    let _ = (layout, container_id, name);
    Ok(())
}
