//! Reads a container's processes from a proc root. (Stub, filled in next.)
use super::{Inventory, InventoryError};
use std::path::Path;

/// Collects the inventory of every process in the pid namespace of
/// `init_pid` (or, when that is the host's own pid namespace, of `init_pid`
/// and its descendants), reading only under `proc_root`.
pub fn collect(proc_root: &Path, init_pid: i32) -> Result<Inventory, InventoryError> {
    let _ = (proc_root, init_pid);
    Ok(Inventory::default())
}
