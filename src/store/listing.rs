//! Reading the store: listing, loading and verifying published checkpoints.
//!
//! Promises: only directories under `checkpoints/` with a valid name are
//! reported; one whose `ckpt.json` is missing or unreadable is reported as
//! foreign (`meta: None`) by [`list`], never guessed at. [`load`] trusts a
//! `ckpt.json` only if its seal matches and it names the container and
//! checkpoint whose directory it lies in. [`verify`] compares every byte
//! against the checksums in `ckpt.json`.
//!
//! Never writes, and never follows a symlink inside the store: every
//! directory on the way is checked with `real_dir`, every file opened
//! `O_NOFOLLOW`.
use super::files::{digest_open_file, open_no_follow, real_dir, walk_skipping, EntryKind, SYMLINK};
use super::layout::{IMPORTED_BINDS, IMPORTED_ROOTFS};
use super::metadata::{META_FILE, SEAL_FILE};
use super::names::{validate_checkpoint_name, validate_container_id};
use super::{io_err, CheckpointEntry, CheckpointMeta, Layout, StoreError};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// Lists published checkpoints of `container_id`, or of every container
/// in the store, sorted by container, then creation time (a foreign
/// checkpoint's is its directory's mtime), then name. A missing store or
/// container directory lists as empty.
pub fn list(layout: &Layout, container_id: Option<&str>) -> Result<Vec<CheckpointEntry>, StoreError> {
    let ids = match container_id {
        Some(id) => {
            validate_container_id(id)?;
            vec![id.to_string()]
        }
        None => container_ids(layout.root())?,
    };
    let mut rows = Vec::new();
    for id in ids {
        let dir = layout.checkpoints_dir(&id);
        if !real_dir(layout.root(), &dir)? {
            continue;
        }
        let read = fs::read_dir(&dir).map_err(io_err("read", &dir))?;
        for entry in read {
            let entry = entry.map_err(io_err("read", &dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            // Dot-dirs and anything ckpt could not have made are skipped.
            if validate_checkpoint_name(&name).is_err() {
                continue;
            }
            if !entry.file_type().map_err(io_err("inspect", entry.path()))?.is_dir() {
                continue;
            }
            let meta = match read_meta(&entry.path(), &id, &name) {
                Ok(meta) => meta,
                Err(e) => {
                    log::debug!("listing {} as foreign: {e}", entry.path().display());
                    None
                }
            };
            let sort_time = match &meta {
                Some(m) => m.created_at.clone(),
                None => mtime_key(&entry.path()),
            };
            let row = CheckpointEntry {
                container_id: id.clone(),
                name,
                size_bytes: dir_size(&entry.path())?,
                dir: entry.path(),
                meta,
            };
            rows.push((sort_time, row));
        }
    }
    rows.sort_by(|(ta, a), (tb, b)| (&a.container_id, ta, &a.name).cmp(&(&b.container_id, tb, &b.name)));
    Ok(rows.into_iter().map(|(_, row)| row).collect())
}

/// The container ids with a directory under `root` (none if `root` is missing).
fn container_ids(root: &Path) -> Result<Vec<String>, StoreError> {
    let read = match fs::read_dir(root) {
        Ok(read) => read,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(io_err("read", root)(e)),
    };
    let mut ids = Vec::new();
    for entry in read {
        let entry = entry.map_err(io_err("read", root))?;
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let is_dir = entry.file_type().map_err(io_err("inspect", entry.path()))?.is_dir();
        if is_dir && validate_container_id(&id).is_ok() {
            ids.push(id);
        }
    }
    Ok(ids)
}

/// Loads one published checkpoint. A `ckpt.json` that is newer than this
/// ckpt or malformed is an error here (unlike in [`list`]); a missing one
/// means a foreign checkpoint (`meta: None`).
pub fn load(layout: &Layout, container_id: &str, name: &str) -> Result<CheckpointEntry, StoreError> {
    let dir = layout.checkpoint_dir(container_id, name);
    let not_found = || StoreError::NotFound {
        container: container_id.to_string(),
        name: name.to_string(),
    };
    if !real_dir(layout.root(), &layout.checkpoints_dir(container_id))? {
        return Err(not_found());
    }
    match fs::symlink_metadata(&dir) {
        Ok(m) if m.file_type().is_symlink() => {
            return Err(StoreError::UnsafeStore {
                path: dir,
                reason: SYMLINK,
            })
        }
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(not_found()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(not_found()),
        Err(e) => return Err(io_err("inspect", &dir)(e)),
    }
    let meta = read_meta(&dir, container_id, name)?;
    Ok(CheckpointEntry {
        container_id: container_id.to_string(),
        name: name.to_string(),
        size_bytes: dir_size(&dir)?,
        dir,
        meta,
    })
}

/// Checks a ckpt-made checkpoint against its `ckpt.json`: every listed file
/// present with its size and BLAKE3 digest, and nothing else but `ckpt.json`,
/// its seal and restore logs (`restore.log`, `restore-*`). (The seal itself
/// was checked by [`load`].) All problems are reported in
/// one [`StoreError::Corrupt`], each naming its file. A foreign checkpoint
/// (`meta: None`) has nothing to check against and passes.
pub fn verify(entry: &CheckpointEntry) -> Result<(), StoreError> {
    let Some(meta) = &entry.meta else {
        return Ok(());
    };
    // An import's root filesystem and private bind files are not part of
    // the images (the restored container writes to them).
    let skip: &[&str] = match meta.imported {
        Some(_) => &[IMPORTED_ROOTFS, IMPORTED_BINDS],
        None => &[],
    };
    let present: BTreeMap<String, (std::path::PathBuf, EntryKind)> = walk_skipping(&entry.dir, skip)?
        .into_iter()
        .filter(|e| e.kind != EntryKind::Dir)
        .map(|e| (e.key, (e.path, e.kind)))
        .collect();
    let mut problems = Vec::new();
    for (key, want) in &meta.files {
        match present.get(key) {
            None => problems.push(format!("{key}: missing")),
            Some((_, EntryKind::File(size))) if *size != want.size => {
                problems.push(format!("{key}: size {size}, expected {}", want.size))
            }
            Some((path, EntryKind::File(_))) => {
                let got = digest_open_file(&open_no_follow(path)?, path)?;
                if got.size != want.size {
                    problems.push(format!("{key}: size {}, expected {}", got.size, want.size));
                } else if got.blake3 != want.blake3 {
                    problems.push(format!("{key}: checksum mismatch"));
                }
            }
            Some(_) => problems.push(format!("{key}: not a regular file")),
        }
    }
    for key in present.keys() {
        let expected = meta.files.contains_key(key)
            || key == META_FILE
            || key == SEAL_FILE
            || key == "restore.log"
            || key.starts_with("restore-");
        if !expected {
            problems.push(format!("unexpected file {key}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Corrupt {
            dir: entry.dir.clone(),
            reason: problems.join("; "),
        })
    }
}

/// The images without which CRIU cannot restore anything: a checkpoint
/// directory lacking one is not a CRIU checkpoint.
pub const CORE_IMAGES: &[&str] = &["inventory.img", "pstree.img"];

/// The first of [`CORE_IMAGES`] that is not a file in `dir` (reads).
pub fn missing_core_image(dir: &Path) -> Option<&'static str> {
    CORE_IMAGES.iter().copied().find(|f| !dir.join(f).is_file())
}

/// How the store says that `image` is missing.
pub fn missing_image_reason(image: &str) -> String {
    format!("{image}: missing (not a CRIU checkpoint)")
}

/// `Some(meta)` if `dir/ckpt.json` exists, matches its seal, parses, and
/// names `container_id` and `name`; `None` if it is absent.
fn read_meta(dir: &Path, container_id: &str, name: &str) -> Result<Option<CheckpointMeta>, StoreError> {
    let Some(json) = read_small(&dir.join(META_FILE))? else {
        return Ok(None);
    };
    let seal = read_small(&dir.join(SEAL_FILE))?;
    let meta = CheckpointMeta::from_sealed(dir, &json, seal.as_deref())?;
    // `publish` writes the directory's own names; anything else was
    // edited, or copied from another checkpoint.
    for (field, found, want) in [
        ("container_id", &meta.container_id, container_id),
        ("name", &meta.name, name),
    ] {
        if found != want {
            return Err(StoreError::Corrupt {
                dir: dir.to_path_buf(),
                reason: format!("{META_FILE}: {field} {found:?} does not match the directory's {want:?}"),
            });
        }
    }
    Ok(Some(meta))
}

/// The bytes of a file opened `O_NOFOLLOW`, `None` if it does not exist.
fn read_small(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    use std::io::Read;
    let mut file = match open_no_follow(path) {
        Ok(file) => file,
        Err(StoreError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata().map_err(io_err("inspect", path))?.is_file() {
        return Err(StoreError::UnsafeStore {
            path: path.to_path_buf(),
            reason: "it is not a regular file",
        });
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(io_err("read", path))?;
    Ok(Some(bytes))
}

/// Total bytes of the regular files under `dir`, an imported root
/// filesystem and its bind files left out.
fn dir_size(dir: &Path) -> Result<u64, StoreError> {
    Ok(walk_skipping(dir, &[IMPORTED_ROOTFS, IMPORTED_BINDS])?
        .iter()
        .map(|e| match e.kind {
            EntryKind::File(size) => size,
            _ => 0,
        })
        .sum())
}

/// A directory's mtime as an RFC 3339 UTC string, comparable with
/// `created_at`; empty (sorting first) if it cannot be read.
fn mtime_key(dir: &Path) -> String {
    fs::metadata(dir)
        .and_then(|m| m.modified())
        .map(rfc3339_utc)
        .unwrap_or_default()
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ` (the proleptic Gregorian
/// calendar; times before 1970 clamp to the epoch).
fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of the day `days` after 1970-01-01. Counts in 400-year
/// eras starting on March 1st, so that the leap day ends each year.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153; // month counted from March
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn mtime_formats_like_created_at() {
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // 2024-02-29 23:59:59
        assert_eq!(rfc3339_utc(t), "2024-02-29T23:59:59Z");
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
