//! Laying a root filesystem part down where an import needs it, after
//! [`super::read_archive`] has checked the archive: a copy of a directory
//! the user names (an image's contents, `--rootfs DIR`), a writable-layer
//! diff (`rootfs-diff.tar`, already staged and validated) laid over it or
//! into an empty overlay upper directory, and `deleted.files` removed
//! there, or recorded as overlay whiteouts.
//!
//! Every write goes through [`super::staging::Dir`]: relative to a
//! directory fd, never following a symlink, so nothing is written outside
//! the directory given. The diff is read again with the same rules as
//! when it was validated (names, links that stay inside, setuid only when
//! asked).

use super::names::EntryPath;
use super::reader::stage_err;
use super::rootfs_tar;
use super::staging::{Dir, StageError};
use super::unpack::{self, Nested, NestedMode, NestedStats};
use super::writer::RootfsSource;
use super::{io_err, refused, ArchiveError};
use nix::sys::stat::{Mode, SFlag};
use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

/// Copies the tree at `from` (not following symlinks, staying on its
/// filesystem) into the empty directory `to`, modes, owners and times
/// kept: streamed through a pipe as the nested tar an export would write,
/// and unpacked with the rules of a root filesystem part. `from` is the
/// host's own (the user named it), so setuid files are kept.
pub fn copy_tree(from: &Path, to: &Path) -> Result<NestedStats, ArchiveError> {
    let shown = to.display().to_string();
    let dir = Dir::open(to).map_err(io_err("open", &shown))?;
    let (r, w) = nix::unistd::pipe().map_err(|e| io_err("make a pipe for", &shown)(e.into()))?;
    let src = RootfsSource::Tree(from.to_path_buf());
    let writer = std::thread::spawn(move || rootfs_tar::write(File::from(w), &src).map(|_| ()));
    let entries = Cell::new(0);
    let rules = Nested {
        allow_setuid: true,
        entries: &entries,
        max_entries: u64::MAX,
        declared: None,
    };
    let mut input = File::from(r);
    let stream_err = |e: io::Error| io_err("copy", from.display().to_string())(e);
    let read = unpack::nested(&mut input, "rootfs", NestedMode::Unpack(&dir), &rules, &stream_err);
    drop(input);
    let wrote = writer.join().map_err(|_| ArchiveError::Io {
        op: "copy",
        path: from.display().to_string(),
        source: io::Error::other("the copying thread panicked"),
    })?;
    // The writer's own error says why the stream broke, if it did.
    wrote?;
    read
}

/// Lays the staged writable-layer tar `diff` over the tree `onto`, as tar
/// extracts it: each entry replaces what is at its name, directories are
/// merged and get the tar's modes.
pub fn overlay_diff(diff: &Path, onto: &Path, allow_setuid: bool) -> Result<NestedStats, ArchiveError> {
    let dir = Dir::open(onto).map_err(io_err("open", onto.display().to_string()))?;
    nested_into(diff, NestedMode::Overlay(&dir), allow_setuid)
}

/// Unpacks the staged writable-layer tar `diff` into the empty directory
/// `into` (a new container's overlay upper directory).
pub fn unpack_diff(diff: &Path, into: &Path, allow_setuid: bool) -> Result<NestedStats, ArchiveError> {
    let dir = Dir::open(into).map_err(io_err("open", into.display().to_string()))?;
    nested_into(diff, NestedMode::Unpack(&dir), allow_setuid)
}

fn nested_into(diff: &Path, mode: NestedMode<'_>, allow_setuid: bool) -> Result<NestedStats, ArchiveError> {
    let shown = diff.display().to_string();
    let mut f = File::open(diff).map_err(io_err("open", &shown))?;
    let entries = Cell::new(0);
    let rules = Nested {
        allow_setuid,
        entries: &entries,
        max_entries: u64::MAX,
        declared: None,
    };
    let stream_err = |e: io::Error| io_err("read", shown.clone())(e);
    unpack::nested(&mut f, "rootfs-diff.tar", mode, &rules, &stream_err)
}

/// Removes each of `paths` (container paths, as in `deleted.files`) from
/// the tree `root`: a directory with what it holds; a path that is not
/// there is fine, a symlink on the way is refused.
pub fn delete_paths(root: &Path, paths: &[String]) -> Result<(), ArchiveError> {
    let dir = Dir::open(root).map_err(io_err("open", root.display().to_string()))?;
    for p in paths {
        let Some(path) = clean(p)? else { continue };
        let parent = match dir.walk(path.components().take(path.depth() - 1), None) {
            Ok(d) => d,
            Err(StageError::Io(e)) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(stage_err(e, p, "delete")),
        };
        let last = path.components().last().expect("a path has a component");
        parent.remove_entry(last).map_err(|e| stage_err(e, p, "delete"))?;
    }
    Ok(())
}

/// Records each of `paths` as deleted in the overlay upper directory
/// `upper` whose lower layers are `lowers` (topmost first): a whiteout (a
/// character device 0:0) at the path, its missing parent directories made
/// with the attributes the lower layers give them (an upper directory's
/// attributes hide the lower ones'). A path no lower layer has needs no
/// whiteout.
pub fn whiteout_paths(upper: &Path, lowers: &[std::path::PathBuf], paths: &[String]) -> Result<(), ArchiveError> {
    let dir = Dir::open(upper).map_err(io_err("open", upper.display().to_string()))?;
    for p in paths {
        let Some(path) = clean(p)? else { continue };
        let comps: Vec<&OsStr> = path.components().collect();
        if !lowers.iter().any(|l| lower_has(l, &comps)) {
            continue;
        }
        let mut at = dir
            .walk(std::iter::empty(), None)
            .map_err(|e| stage_err(e, p, "open"))?;
        for (i, c) in comps[..comps.len() - 1].iter().enumerate() {
            if !at.exists(c) {
                let (mode, uid, gid) = lowers
                    .iter()
                    .find_map(|l| lower_meta(l, &comps[..=i]))
                    .unwrap_or((0o755, 0, 0));
                at.mkdir(c, Mode::from_bits_truncate(mode))
                    .map_err(|e| stage_err(e, p, "create"))?;
                at.chown(c, uid, gid).map_err(|e| stage_err(e, p, "chown"))?;
            }
            at = at.child(c, None).map_err(|e| stage_err(e, p, "open"))?;
        }
        let last = comps[comps.len() - 1];
        at.remove_entry(last).map_err(|e| stage_err(e, p, "replace"))?;
        at.mknod(last, SFlag::S_IFCHR, Mode::empty(), 0)
            .map_err(|e| stage_err(e, p, "create a whiteout for"))?;
    }
    Ok(())
}

/// A `deleted.files` path as a clean relative path (`None` for the root).
fn clean(p: &str) -> Result<Option<EntryPath>, ArchiveError> {
    EntryPath::parse(p.trim_start_matches('/').as_bytes()).map_err(|r| refused(p, r))
}

fn lower_has(lower: &Path, comps: &[&OsStr]) -> bool {
    let mut p = lower.to_path_buf();
    p.extend(comps);
    std::fs::symlink_metadata(p).is_ok()
}

fn lower_meta(lower: &Path, comps: &[&OsStr]) -> Option<(u32, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut p = lower.to_path_buf();
    p.extend(comps);
    let m = std::fs::symlink_metadata(p).ok()?;
    m.is_dir().then(|| (m.mode() & 0o7777, m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::super::Refusal;
    use super::*;
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn a_copy_keeps_links_and_modes_and_a_diff_replaces_and_deletes() {
        let t = tempfile::tempdir().unwrap();
        let image = t.path().join("image");
        fs::create_dir_all(image.join("bin")).unwrap();
        fs::create_dir_all(image.join("tmp")).unwrap();
        fs::set_permissions(image.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::write(image.join("bin/busybox"), b"bb").unwrap();
        symlink("busybox", image.join("bin/sh")).unwrap();
        fs::write(image.join("etc-motd"), b"old").unwrap();
        fs::create_dir_all(image.join("gone/deep")).unwrap();
        let rootfs = t.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        copy_tree(&image, &rootfs).unwrap();
        assert_eq!(fs::read_link(rootfs.join("bin/sh")).unwrap(), Path::new("busybox"));
        assert_eq!(
            fs::metadata(rootfs.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );

        // A diff that changes a file and adds one, then a deletion.
        let diff = t.path().join("rootfs-diff.tar");
        let mut b = tar::Builder::new(fs::File::create(&diff).unwrap());
        for (name, data) in [("etc-motd", &b"new"[..]), ("tmp/count", b"42")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_data(&mut h, name, data).unwrap();
        }
        b.finish().unwrap();
        drop(b);
        overlay_diff(&diff, &rootfs, false).unwrap();
        assert_eq!(fs::read(rootfs.join("etc-motd")).unwrap(), b"new");
        assert_eq!(fs::read(rootfs.join("tmp/count")).unwrap(), b"42");
        assert_eq!(
            fs::metadata(rootfs.join("tmp")).unwrap().permissions().mode() & 0o7777,
            0o1777
        );
        delete_paths(&rootfs, &["/gone".into(), "/not/there".into()]).unwrap();
        assert!(!rootfs.join("gone").exists());
        assert_eq!(
            fs::read(image.join("etc-motd")).unwrap(),
            b"old",
            "the image is untouched"
        );
    }

    #[test]
    fn a_deletion_through_a_symlink_is_refused_and_deletes_nothing_outside() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("precious"), b"x").unwrap();
        let rootfs = t.path().join("rootfs");
        fs::create_dir(&rootfs).unwrap();
        symlink(&outside, rootfs.join("link")).unwrap();
        let e = delete_paths(&rootfs, &["/link/precious".into()]).unwrap_err();
        assert!(matches!(e.refusal(), Some(Refusal::NotADirectory)), "{e}");
        assert!(outside.join("precious").exists());
        delete_paths(&rootfs, &["/link".into()]).unwrap();
        assert!(!rootfs.join("link").exists() && outside.join("precious").exists());
    }
}
