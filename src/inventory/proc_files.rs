//! Reading single files, links and directories under a proc root.
//!
//! Every helper names the path it failed on, so callers only add context
//! that these helpers cannot know. Nothing here interprets file contents.
//! Text is decoded lossily: `/proc` files such as `cmdline`, or fd targets,
//! may hold arbitrary bytes, and the inventory only reports them.

use super::InventoryError;
use std::io;
use std::path::Path;

/// Reads a whole file as text.
pub(super) fn read_text(path: &Path) -> Result<String, InventoryError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(source) => Err(read_error(path, source)),
    }
}

/// Reads a whole file as text, or `None` when it does not exist.
pub(super) fn read_optional_text(path: &Path) -> Result<Option<String>, InventoryError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(source) if is_gone(&source) => Ok(None),
        Err(source) => Err(read_error(path, source)),
    }
}

/// Reads the target of a symbolic link (or of a `/proc` magic link).
pub(super) fn read_link_text(path: &Path) -> Result<String, InventoryError> {
    match std::fs::read_link(path) {
        Ok(target) => Ok(target.to_string_lossy().into_owned()),
        Err(source) => Err(read_error(path, source)),
    }
}

/// The entries of `dir` whose names are decimal numbers (pids under the
/// proc root, fd numbers under `fd/`), in ascending order.
pub(super) fn numeric_entries(dir: &Path) -> Result<Vec<i32>, InventoryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| read_error(dir, source))?;
    let mut numbers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| read_error(dir, source))?;
        if let Some(n) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// True for the errors a process (or one of its fds) gives once it has
/// exited or closed: the kernel removes the `/proc` entry (ENOENT), or the
/// entry still exists but its task is gone (ESRCH).
pub(super) fn is_gone(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH)
}

fn read_error(path: &Path, source: io::Error) -> InventoryError {
    InventoryError::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl InventoryError {
    /// True when this error means the thing read has disappeared while we
    /// were looking, which is normal for a running container.
    pub(super) fn is_vanished(&self) -> bool {
        matches!(self, InventoryError::Read { source, .. } if is_gone(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_entries_skips_names_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["10", "2", "self", "33x", "1"] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        assert_eq!(numeric_entries(dir.path()).unwrap(), vec![1, 2, 10]);
    }

    #[test]
    fn missing_file_is_vanished_and_optional_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(read_text(&missing).unwrap_err().is_vanished());
        assert!(read_optional_text(&missing).unwrap().is_none());
    }
}
