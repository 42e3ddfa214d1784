//! Removing a published checkpoint without ever listing half of one.
use super::files::{real_dir, SYMLINK};
use super::layout::StagingKind;
use super::write::{ensure_private_dir_in, fsync_dir, nonce, write_err};
use super::{io_err, Layout, StoreError};
use std::fs;
use std::io;

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
    ensure_private_dir_in(root, &layout.staging_root(container_id))?;
    let trash = layout.staging_entry(container_id, StagingKind::Removal(name), std::process::id(), &nonce());
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
