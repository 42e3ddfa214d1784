//! The nested root filesystem tar of an export (`rootfs.tar`,
//! `rootfs-diff.tar`): a walk in sorted order, so that two passes over an
//! unchanged tree give the same bytes, that never follows a symlink and
//! keeps to the root's filesystem (a mount below the root is kept as an
//! empty mount point). Sockets are left out: tar has no type for them.

use super::streams::Checked;
use super::writer::{open_regular, source_err, RootfsSource};
use super::{io_err, ArchiveError};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

pub(crate) struct Stats {
    pub entries: u64,
    pub bytes: u64,
    pub skipped: Vec<String>,
}

/// Writes the nested tar of `rootfs` into `out`.
pub(crate) fn write<W: Write>(out: W, rootfs: &RootfsSource) -> Result<Stats, ArchiveError> {
    let mut b = tar::Builder::new(out);
    let mut stats = Stats {
        entries: 0,
        bytes: 0,
        skipped: Vec::new(),
    };
    match rootfs {
        RootfsSource::None => {}
        RootfsSource::Tree(root) => {
            let dev = lstat(root)?.dev();
            entry(&mut b, root, Path::new("."), dev, &mut stats)?;
        }
        RootfsSource::Diff { root, changed, .. } => {
            let dev = lstat(root)?.dev();
            let mut paths = BTreeSet::new();
            for p in changed {
                let rel = p.strip_prefix("/").unwrap_or(p);
                if rel.as_os_str().is_empty() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_)))
                {
                    return Err(source_err(p.display().to_string(), "a changed path must be clean"));
                }
                paths.insert(rel.to_path_buf());
            }
            let mut parents_written = BTreeSet::new();
            for rel in &paths {
                // A path below a listed directory is already in it.
                if rel.ancestors().skip(1).any(|a| paths.contains(a)) {
                    continue;
                }
                // Its directories first, with their own modes and owners:
                // unpacked into an empty writable layer, a directory made
                // on the way would otherwise hide the image's (an overlay
                // upper directory's attributes win).
                let mut parents: Vec<&Path> = rel.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()).collect();
                parents.reverse();
                for p in parents {
                    if parents_written.insert(p.to_path_buf()) {
                        dir_header(&mut b, root, p, &mut stats)?;
                    }
                }
                entry(&mut b, root, rel, dev, &mut stats)?;
            }
        }
    }
    b.finish().map_err(io_err("write", "the root filesystem tar"))?;
    Ok(stats)
}

fn lstat(p: &Path) -> Result<fs::Metadata, ArchiveError> {
    fs::symlink_metadata(p).map_err(io_err("inspect", p.display().to_string()))
}

/// Appends the directory `root/rel` alone, none of what it holds.
fn dir_header<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    stats: &mut Stats,
) -> Result<(), ArchiveError> {
    let path = root.join(rel);
    let shown = path.display().to_string();
    let m = lstat(&path)?;
    if !m.is_dir() {
        return Err(source_err(
            shown,
            "a changed path lies below something that is not a directory",
        ));
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    b.append_data(&mut h, rel, io::empty())
        .map_err(io_err("write", shown))?;
    stats.entries += 1;
    Ok(())
}

/// Appends `root/rel` and, for a directory, what it holds.
fn entry<W: Write>(
    b: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    dev: u64,
    stats: &mut Stats,
) -> Result<(), ArchiveError> {
    let path = if rel == Path::new(".") {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let shown = path.display().to_string();
    let m = lstat(&path)?;
    let ft = m.file_type();
    let mut h = tar::Header::new_gnu();
    h.set_mode(m.mode() & 0o7777);
    h.set_uid(m.uid() as u64);
    h.set_gid(m.gid() as u64);
    h.set_mtime(m.mtime().max(0) as u64);
    h.set_size(0);
    let name = if rel == Path::new(".") {
        PathBuf::from("./")
    } else {
        rel.to_path_buf()
    };
    let werr = |e| io_err("write", shown.clone())(e);
    stats.entries += 1;
    if ft.is_file() {
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(m.len());
        let mut r = Checked::new(open_regular(&path)?, m.len(), &shown, None);
        b.append_data(&mut h, &name, &mut r).map_err(|e| r.error(e, "write"))?;
        let mut probe = [0u8; 1];
        if r.file.read(&mut probe).map_err(io_err("read", shown.clone()))? != 0 {
            return Err(source_err(&shown, "it grew while it was exported"));
        }
        stats.bytes += m.len();
    } else if ft.is_symlink() {
        h.set_entry_type(tar::EntryType::Symlink);
        let target = fs::read_link(&path).map_err(io_err("read the link", shown.clone()))?;
        b.append_link(&mut h, &name, &target).map_err(werr)?;
    } else if ft.is_dir() {
        h.set_entry_type(tar::EntryType::Directory);
        b.append_data(&mut h, &name, io::empty()).map_err(werr)?;
        if m.dev() != dev {
            // A mount on the host below the root: keep the mount point only.
            stats.skipped.push(shown);
            return Ok(());
        }
        let mut children: Vec<_> = fs::read_dir(&path)
            .map_err(io_err("list", shown.clone()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(io_err("list", shown.clone()))?;
        children.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for c in children {
            let child = if rel == Path::new(".") {
                PathBuf::from(&c)
            } else {
                rel.join(&c)
            };
            entry(b, root, &child, dev, stats)?;
        }
    } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
        h.set_entry_type(if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        });
        let rdev = m.rdev();
        h.set_device_major(libc::major(rdev)).map_err(werr)?;
        h.set_device_minor(libc::minor(rdev)).map_err(werr)?;
        b.append_data(&mut h, &name, io::empty()).map_err(werr)?;
    } else {
        stats.entries -= 1;
        stats.skipped.push(shown);
    }
    Ok(())
}
