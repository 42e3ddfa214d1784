//! Nested tars (a root filesystem, a writable layer, `/dev/shm`, a
//! volume): validated entry by entry while their bytes stream past, and
//! for a ckpt `rootfs.tar` unpacked below `<staging>/rootfs/`.
//!
//! Inside such a tar the rules of a root filesystem hold: any byte
//! string is a valid name (but never absolute or with `..`), symlinks
//! may point anywhere that resolves inside the root (an absolute target
//! is resolved against the container's root, a relative one may not
//! climb above it), hard links must name an earlier entry of the same
//! tar, devices and fifos are allowed, setuid files only when asked.
//! Unpacking keeps modes and times, and owners when running as root;
//! directories get theirs after their contents are written.

use super::names::{symlink_stays_inside, EntryPath};
use super::reader::stage_err;
use super::staging::Dir;
use super::tarwalk::{self, Meta};
use super::{io_err, refused, refused_archive, ArchiveError, Refusal};
use nix::sys::stat::{Mode, SFlag};
use std::cell::Cell;
use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;

/// What to do with a nested tar's entries.
pub enum NestedMode<'a> {
    /// Check them only (the tar itself is staged as a file by the caller).
    Validate,
    /// Check them and create them below this directory.
    Unpack(&'a Dir),
    /// Check them and lay them over what this directory holds, as tar
    /// extracts: an entry replaces what is at its name (never through a
    /// symlink), directories are merged.
    Overlay(&'a Dir),
}

impl NestedMode<'_> {
    fn target(&self) -> Option<(&Dir, bool)> {
        match self {
            NestedMode::Validate => None,
            NestedMode::Unpack(d) => Some((d, false)),
            NestedMode::Overlay(d) => Some((d, true)),
        }
    }
}

/// The rules for one nested tar.
pub struct Nested<'a> {
    pub allow_setuid: bool,
    /// The archive-wide entry counter and its limit.
    pub entries: &'a Cell<u64>,
    pub max_entries: u64,
    /// `(entries, bytes)` a ckpt manifest declared for it.
    pub declared: Option<(u64, u64)>,
}

/// What a nested tar held.
pub struct NestedStats {
    pub entries: u64,
    pub bytes: u64,
}

/// The word for a device or fifo type, `None` for other types.
pub fn special_kind(kind: tar::EntryType) -> Option<&'static str> {
    match kind {
        tar::EntryType::Symlink => Some("symlink"),
        tar::EntryType::Link => Some("hard link"),
        tar::EntryType::Char => Some("character device"),
        tar::EntryType::Block => Some("block device"),
        tar::EntryType::Fifo => Some("fifo"),
        _ => None,
    }
}

/// A tar type's name for messages.
pub fn type_name(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::GNUSparse => "sparse file".into(),
        tar::EntryType::Continuous => "contiguous file".into(),
        k => format!("entry of tar type {:?}", k.as_byte() as char),
    }
}

/// Walks the nested tar read from `data` (the outer entry, `name`).
/// Reads `data` to its end, so the caller's hash covers every byte.
pub fn nested<R: Read>(
    data: &mut R,
    name: &str,
    mode: NestedMode<'_>,
    rules: &Nested<'_>,
    stream_err: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<NestedStats, ArchiveError> {
    let mut counted = Counting { inner: data, count: 0 };
    let mut stats = NestedStats { entries: 0, bytes: 0 };
    let mut dirs: Vec<(EntryPath, Meta)> = Vec::new();
    let mut root_meta: Option<Meta> = None;
    let as_root = nix::unistd::geteuid().is_root();
    let last_end;
    {
        let mut archive = tar::Archive::new(&mut counted);
        let entries = Cell::new(0u64);
        let end = tarwalk::walk(
            &mut archive,
            stream_err,
            &mut || {
                rules.entries.set(rules.entries.get() + 1);
                if rules.entries.get() > rules.max_entries {
                    return Err(refused_archive(Refusal::TooManyEntries {
                        limit: rules.max_entries,
                    }));
                }
                Ok(())
            },
            &mut |meta, entry| {
                // Real entries (extension headers are not) against the declaration.
                entries.set(entries.get() + 1);
                if let Some((declared, _)) = rules.declared {
                    if entries.get() > declared {
                        return Err(refused(
                            name,
                            Refusal::CountMismatch {
                                what: "root filesystem entries",
                                declared,
                                found: entries.get(),
                            },
                        ));
                    }
                }
                let inner = format!("{name}:{}", meta.shown());
                if meta.kind.is_file() && meta.mode & 0o6000 != 0 && !rules.allow_setuid {
                    return Err(refused(inner, Refusal::Setuid { mode: meta.mode }));
                }
                let Some(path) = EntryPath::parse(&meta.name).map_err(|r| refused(&inner, r))? else {
                    if !meta.kind.is_dir() {
                        return Err(refused(inner, Refusal::BadName("a root entry that is not a directory")));
                    }
                    root_meta = Some(meta);
                    return Ok(());
                };
                check_links(&path, &meta, &inner)?;
                if meta.kind.is_file() {
                    stats.bytes += meta.size;
                }
                match &mode {
                    NestedMode::Validate => {
                        if !(meta.kind.is_file() || meta.kind.is_dir() || special_kind(meta.kind).is_some()) {
                            return Err(refused(
                                inner,
                                Refusal::UnsupportedType {
                                    kind: type_name(meta.kind),
                                },
                            ));
                        }
                        Ok(())
                    }
                    NestedMode::Unpack(_) | NestedMode::Overlay(_) => {
                        let (dir, overlay) = mode.target().expect("a target to unpack into");
                        if meta.kind.is_dir() {
                            if overlay {
                                replace_non_dir(dir, &path, &inner)?;
                            }
                            dir.walk(path.components(), Some(Mode::S_IRWXU))
                                .map_err(|e| stage_err(e, &inner, "create"))?;
                            dirs.push((path, meta));
                            return Ok(());
                        }
                        if overlay {
                            clear_place(dir, &path, &inner)?;
                        }
                        create(dir, &path, &meta, entry, &inner, as_root, stream_err)
                    }
                }
            },
        )?;
        stats.entries = entries.get();
        last_end = end.last_end;
    }
    if counted.count <= last_end {
        return Err(refused(
            name,
            Refusal::Truncated("the nested tar ends without its end-of-archive marker".into()),
        ));
    }
    io::copy(&mut counted, &mut io::sink()).map_err(stream_err)?;
    if let Some((entries, bytes)) = rules.declared {
        for (what, declared, found) in [
            ("root filesystem entries", entries, stats.entries),
            ("root filesystem bytes", bytes, stats.bytes),
        ] {
            if declared != found {
                return Err(refused(name, Refusal::CountMismatch { what, declared, found }));
            }
        }
    }
    if let Some((dir, _)) = mode.target() {
        // Deepest first does not matter for fds; the root last.
        for (path, meta) in dirs.iter().rev() {
            let d = dir
                .walk(path.components(), None)
                .map_err(|e| stage_err(e, &path.display(), "open"))?;
            set_dir_meta(&d, meta, as_root).map_err(|e| stage_err(e, &path.display(), "set the mode of"))?;
        }
        if let Some(meta) = &root_meta {
            set_dir_meta(dir, meta, as_root).map_err(|e| stage_err(e, name, "set the mode of"))?;
        } else {
            dir.set_own_meta(Mode::from_bits_truncate(0o755), None, None)
                .map_err(|e| stage_err(e, name, "set the mode of"))?;
        }
    }
    Ok(stats)
}

/// Overlay: removes whatever is at `path` (a directory with all it holds)
/// so that a new non-directory entry can be created there.
fn clear_place(dir: &Dir, path: &EntryPath, inner: &str) -> Result<(), ArchiveError> {
    let Some(parent) = parent_if_any(dir, path, inner)? else {
        return Ok(());
    };
    let last = path.components().last().expect("a path has a component");
    parent.remove_entry(last).map_err(|e| stage_err(e, inner, "replace"))
}

/// Overlay: removes a non-directory at `path` where the tar has a directory.
fn replace_non_dir(dir: &Dir, path: &EntryPath, inner: &str) -> Result<(), ArchiveError> {
    let Some(parent) = parent_if_any(dir, path, inner)? else {
        return Ok(());
    };
    let last = path.components().last().expect("a path has a component");
    if parent.exists(last) && parent.child(last, None).is_err() {
        parent.remove_entry(last).map_err(|e| stage_err(e, inner, "replace"))?;
    }
    Ok(())
}

/// The parent directory of `path` below `dir`, if it exists as a real
/// directory (a symlink on the way is refused, as in any walk).
fn parent_if_any(dir: &Dir, path: &EntryPath, inner: &str) -> Result<Option<Dir>, ArchiveError> {
    match dir.walk(path.components().take(path.depth() - 1), None) {
        Ok(d) => Ok(Some(d)),
        Err(super::staging::StageError::Io(e)) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(stage_err(e, inner, "open")),
    }
}

fn set_dir_meta(d: &Dir, meta: &Meta, as_root: bool) -> Result<(), super::staging::StageError> {
    let owner = as_root.then_some((meta.uid as u32, meta.gid as u32));
    d.set_own_meta(
        Mode::from_bits_truncate(meta.mode & 0o7777),
        owner,
        Some(meta.mtime as i64),
    )
}

/// Refuses links that leave the nested root.
fn check_links(path: &EntryPath, meta: &Meta, inner: &str) -> Result<(), ArchiveError> {
    let root = "its root filesystem".to_string();
    match meta.kind {
        tar::EntryType::Symlink => {
            let target = meta.link.clone().unwrap_or_default();
            if !symlink_stays_inside(path, &target) {
                return Err(refused(
                    inner,
                    Refusal::SymlinkOutside {
                        target: String::from_utf8_lossy(&target).into_owned(),
                        root,
                    },
                ));
            }
        }
        tar::EntryType::Link => {
            let target = meta.link.clone().unwrap_or_default();
            let shown = String::from_utf8_lossy(&target).into_owned();
            if !matches!(EntryPath::parse(&target), Ok(Some(_))) {
                return Err(refused(inner, Refusal::HardlinkOutside { target: shown, root }));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Creates one non-directory entry below `dir`.
fn create<R: Read>(
    dir: &Dir,
    path: &EntryPath,
    meta: &Meta,
    entry: &mut tar::Entry<'_, R>,
    inner: &str,
    as_root: bool,
    stream_err: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<(), ArchiveError> {
    let parent = dir
        .walk(
            path.components().take(path.depth() - 1),
            Some(Mode::from_bits_truncate(0o755)),
        )
        .map_err(|e| stage_err(e, inner, "create"))?;
    let last = path.components().last().expect("a path has a component");
    let perm = Mode::from_bits_truncate(meta.mode & 0o7777);
    let mut set_owner_time = true;
    match meta.kind {
        k if k.is_file() => {
            let mut f = parent
                .create_file(last, Mode::S_IRUSR | Mode::S_IWUSR)
                .map_err(|e| stage_err(e, inner, "create"))?;
            let n = copy_split(&mut entry.take(meta.size), &mut f, inner, stream_err)?;
            if n < meta.size {
                return Err(refused(
                    inner,
                    Refusal::Truncated(format!("it has {n} of its {} bytes", meta.size)),
                ));
            }
            use std::os::unix::fs::PermissionsExt;
            if as_root {
                std::os::unix::fs::fchown(&f, Some(meta.uid as u32), Some(meta.gid as u32))
                    .map_err(io_err("chown", inner))?;
            }
            f.set_permissions(std::fs::Permissions::from_mode(meta.mode & 0o7777))
                .map_err(io_err("chmod", inner))?;
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(meta.mtime);
            f.set_modified(t).map_err(io_err("set the time of", inner))?;
            set_owner_time = false;
        }
        tar::EntryType::Symlink => {
            let target = meta.link.clone().unwrap_or_default();
            parent
                .symlink(OsStr::from_bytes(&target), last)
                .map_err(|e| stage_err(e, inner, "create"))?;
        }
        tar::EntryType::Link => {
            let target = meta.link.clone().unwrap_or_default();
            let t = EntryPath::parse(&target).ok().flatten().ok_or_else(|| {
                refused(
                    inner,
                    Refusal::HardlinkOutside {
                        target: String::from_utf8_lossy(&target).into(),
                        root: "its root filesystem".into(),
                    },
                )
            })?;
            let src = dir
                .walk(t.components().take(t.depth() - 1), None)
                .map_err(|e| stage_err(e, inner, "link"))?;
            let src_last = t.components().last().expect("a path has a component");
            if !src.exists(src_last) {
                return Err(refused(
                    inner,
                    Refusal::Invalid(format!("a hard link to {}, which is not an earlier entry", t.display())),
                ));
            }
            parent
                .hardlink(&src, src_last, last)
                .map_err(|e| stage_err(e, inner, "link"))?;
            set_owner_time = false;
        }
        tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
            let (kind, dev) = match meta.kind {
                tar::EntryType::Char => (SFlag::S_IFCHR, meta.dev),
                tar::EntryType::Block => (SFlag::S_IFBLK, meta.dev),
                _ => (SFlag::S_IFIFO, Some((0, 0))),
            };
            let (major, minor) = dev.unwrap_or((0, 0));
            parent
                .mknod(last, kind, perm, nix::sys::stat::makedev(major.into(), minor.into()))
                .map_err(|e| stage_err(e, inner, "create"))?;
        }
        k => return Err(refused(inner, Refusal::UnsupportedType { kind: type_name(k) })),
    }
    if set_owner_time {
        if as_root {
            parent
                .chown(last, meta.uid as u32, meta.gid as u32)
                .map_err(|e| stage_err(e, inner, "chown"))?;
        }
        parent
            .set_mtime(last, meta.mtime as i64)
            .map_err(|e| stage_err(e, inner, "set the time of"))?;
    }
    Ok(())
}

/// Copies `r` into the staged file `w`, telling the stream's errors from
/// the staging directory's.
fn copy_split(
    r: &mut impl Read,
    w: &mut std::fs::File,
    inner: &str,
    stream_err: &dyn Fn(io::Error) -> ArchiveError,
) -> Result<u64, ArchiveError> {
    use std::io::Write;
    let mut buf = vec![0u8; 64 << 10];
    let mut n = 0u64;
    loop {
        let got = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(stream_err(e)),
        };
        w.write_all(&buf[..got]).map_err(io_err("write", inner))?;
        n += got as u64;
    }
}

/// Counts what is read through it.
struct Counting<'a, R> {
    inner: &'a mut R,
    count: u64,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        Ok(n)
    }
}
