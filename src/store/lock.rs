//! Per-container lock (stub).
use super::StoreError;
use std::path::Path;

/// Held while a command works on a container; released on drop.
#[derive(Debug)]
pub struct ContainerLock {}

impl ContainerLock {
    pub fn acquire(path: &Path, container_id: &str, wait: std::time::Duration) -> Result<ContainerLock, StoreError> {
        let _ = (path, container_id, wait);
        Ok(ContainerLock {})
    }
}
