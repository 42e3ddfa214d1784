//! Cleaning what dead ckpt processes left in `.ckpt-staging/`: every
//! entry there is named `<prefix>.<pid>.<nonce>` (see
//! [`super::layout::StagingKind`]), and one whose pid no longer exists is
//! removed by whoever holds the container's lock next.
//!
//! Never removes an entry of a live pid (another command's work), never
//! follows a symlinked `.ckpt-staging`, and never deletes through a mount:
//! a dead restore's work dir may still hold CRIU's cgroup yard.
use super::files::real_dir;
use super::{io_err, Layout, StoreError};
use crate::procfs::ProcRoot;
use std::fs;

/// Removes `.ckpt-staging/*` entries left by ckpt processes that no longer
/// exist (`<proc>/<pid>` is missing). Entries of live pids are kept: they
/// may be another command's work in progress. (A reused pid only delays
/// the cleanup to a later run.) Failures to remove one entry are logged,
/// not returned, so one stuck directory never blocks new checkpoints.
pub fn clean_stale_staging(layout: &Layout, proc: &ProcRoot, container_id: &str) -> Result<(), StoreError> {
    clean_dead_entries(layout, proc, &layout.staging_root(container_id))
}

/// [`clean_stale_staging`] for the store's own `.ckpt-staging/` (imports
/// whose container was not known yet).
pub fn clean_stale_store_staging(layout: &Layout, proc: &ProcRoot) -> Result<(), StoreError> {
    clean_dead_entries(layout, proc, &layout.store_staging_root())
}

fn clean_dead_entries(layout: &Layout, proc: &ProcRoot, staging_root: &std::path::Path) -> Result<(), StoreError> {
    let staging_root = staging_root.to_path_buf();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_pid_reads_the_pid_from_the_right() {
        assert_eq!(staging_pid("cp1.42.abc"), Some(42));
        assert_eq!(staging_pid("v1.2.3.42.abc"), Some(42));
        assert_eq!(staging_pid("cp1.rm.42.abc"), Some(42));
        assert_eq!(staging_pid("restore.42.abc"), Some(42));
        assert_eq!(staging_pid("cp1.abc"), None);
        assert_eq!(staging_pid("cp1.x42.abc"), None);
        assert_eq!(staging_pid("cp1.0.abc"), None);
        assert_eq!(staging_pid("not-ours"), None);
        let nonce = super::super::write::nonce();
        assert_eq!(staging_pid(&format!("cp1.7.{nonce}")), Some(7));
    }
}
