//! Creating files below a staging directory without ever following a
//! symlink: the only way the reader writes.
//!
//! Every path is walked one component at a time from a directory fd with
//! `openat(O_DIRECTORY|O_NOFOLLOW)`, and the last component is created
//! relative to its parent's fd (`openat(O_CREAT|O_EXCL|O_NOFOLLOW)`,
//! `mkdirat`, `symlinkat`, `linkat` without `AT_SYMLINK_FOLLOW`,
//! `mknodat`). So a symlink the archive planted earlier, pointing
//! anywhere, is never traversed (the walk fails with `ELOOP`/`ENOTDIR`),
//! and `O_EXCL` means no entry can replace or write through another. This
//! is the `cap-std` discipline without the crate; `openat2(RESOLVE_BENEATH)`
//! would do the walk in one call but cannot create directories, links or
//! nodes, which need the parent fd anyway.

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, mknodat, Mode, SFlag};
use nix::unistd::{fchownat, linkat, mkfifoat, symlinkat, Gid, Uid};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// An open directory under (or at) the staging root.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
}

/// Why a staging operation failed: the archive's fault, or the machine's.
#[derive(Debug)]
pub enum StageError {
    /// A component on the way is a symlink or not a directory.
    NotADirectory,
    /// The name already exists.
    Exists,
    /// Anything else.
    Io(io::Error),
}

impl From<Errno> for StageError {
    fn from(e: Errno) -> StageError {
        match e {
            Errno::ELOOP | Errno::ENOTDIR => StageError::NotADirectory,
            Errno::EEXIST => StageError::Exists,
            e => StageError::Io(io::Error::from(e)),
        }
    }
}

/// Takes ownership of an fd a syscall just returned.
fn own(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful openat(2) and nothing
    // else holds it, so this is its only owner.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

const DIR_FLAGS: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

impl Dir {
    /// Opens `path` itself, refusing a symlink.
    pub fn open(path: &Path) -> io::Result<Dir> {
        Ok(Dir {
            fd: own(openat(None, path, DIR_FLAGS, Mode::empty())?),
        })
    }

    /// Whether the directory has no entries (read through a duplicate of
    /// its own fd, so no path is looked up again).
    pub fn is_empty(&self) -> io::Result<bool> {
        let mut dir = nix::dir::Dir::from_fd(nix::unistd::dup(self.fd.as_raw_fd())?)?;
        for entry in dir.iter() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Opens the child directory `name`, creating it with `mode` when
    /// missing and `mode` is given. Never follows a symlink.
    pub fn child(&self, name: &OsStr, mode: Option<Mode>) -> Result<Dir, StageError> {
        match openat(Some(self.fd.as_raw_fd()), name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => return Ok(Dir { fd: own(fd) }),
            Err(Errno::ENOENT) if mode.is_some() => {}
            Err(e) => return Err(e.into()),
        }
        match mkdirat(Some(self.fd.as_raw_fd()), name, mode.unwrap_or(Mode::S_IRWXU)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Dir {
            fd: own(openat(Some(self.fd.as_raw_fd()), name, DIR_FLAGS, Mode::empty())?),
        })
    }

    /// Walks `components` down from here, creating missing directories
    /// with `mode` when given.
    pub fn walk<'a>(&self, components: impl Iterator<Item = &'a OsStr>, mode: Option<Mode>) -> Result<Dir, StageError> {
        let mut cur = Dir {
            fd: self.fd.try_clone().map_err(StageError::Io)?,
        };
        for c in components {
            cur = cur.child(c, mode)?;
        }
        Ok(cur)
    }

    /// Creates the new regular file `name` (it must not exist), open for writing.
    pub fn create_file(&self, name: &OsStr, mode: Mode) -> Result<File, StageError> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(Some(self.fd.as_raw_fd()), name, flags, mode)?;
        Ok(File::from(own(fd)))
    }

    /// Creates directory `name`; an existing real directory is fine.
    pub fn mkdir(&self, name: &OsStr, mode: Mode) -> Result<(), StageError> {
        match mkdirat(Some(self.fd.as_raw_fd()), name, mode) {
            Ok(()) => Ok(()),
            Err(Errno::EEXIST) => match self.child(name, None) {
                Ok(_) => Ok(()),
                Err(StageError::NotADirectory) => Err(StageError::Exists),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the symlink `name` → `target` (never resolved here).
    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> Result<(), StageError> {
        Ok(symlinkat(target, Some(self.fd.as_raw_fd()), name)?)
    }

    /// Creates `name` as a hard link to `src_name` in `src_dir`, the link
    /// itself if it is a symlink (no `AT_SYMLINK_FOLLOW`).
    pub fn hardlink(&self, src_dir: &Dir, src_name: &OsStr, name: &OsStr) -> Result<(), StageError> {
        Ok(linkat(
            Some(src_dir.fd.as_raw_fd()),
            src_name,
            Some(self.fd.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::empty(),
        )?)
    }

    /// Creates a device node or fifo `name`.
    pub fn mknod(&self, name: &OsStr, kind: SFlag, mode: Mode, dev: u64) -> Result<(), StageError> {
        if kind == SFlag::S_IFIFO {
            return Ok(mkfifoat(Some(self.fd.as_raw_fd()), name, mode)?);
        }
        Ok(mknodat(Some(self.fd.as_raw_fd()), name, kind, mode, dev)?)
    }

    /// `lchown` of `name`.
    pub fn chown(&self, name: &OsStr, uid: u32, gid: u32) -> Result<(), StageError> {
        Ok(fchownat(
            Some(self.fd.as_raw_fd()),
            name,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?)
    }

    /// Sets the modification (and access) time of `name`, not following it.
    pub fn set_mtime(&self, name: &OsStr, secs: i64) -> Result<(), StageError> {
        let t = nix::sys::time::TimeSpec::new(secs, 0);
        Ok(nix::sys::stat::utimensat(
            Some(self.fd.as_raw_fd()),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?)
    }

    /// Sets this directory's own mode, owner (when `owner`) and mtime.
    pub fn set_own_meta(&self, mode: Mode, owner: Option<(u32, u32)>, mtime: Option<i64>) -> Result<(), StageError> {
        let fd = self.fd.as_raw_fd();
        if let Some((u, g)) = owner {
            nix::unistd::fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))?;
        }
        nix::sys::stat::fchmod(fd, mode)?;
        if let Some(secs) = mtime {
            let t = nix::sys::time::TimeSpec::new(secs, 0);
            nix::sys::stat::futimens(fd, &t, &t)?;
        }
        Ok(())
    }

    /// Removes `name` here, whatever it is, a directory with everything
    /// below it; never follows a symlink (a link is removed, not its
    /// target). A missing `name` is fine. For trees ckpt unpacked itself,
    /// which hold no mounts.
    pub fn remove_entry(&self, name: &OsStr) -> Result<(), StageError> {
        use nix::unistd::{unlinkat, UnlinkatFlags};
        let st = match fstatat(
            Some(self.fd.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(()),
            Err(e) => return Err(StageError::Io(e.into())),
        };
        if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            let child = self.child(name, None)?;
            for n in child.names().map_err(StageError::Io)? {
                child.remove_entry(&n)?;
            }
            unlinkat(Some(self.fd.as_raw_fd()), name, UnlinkatFlags::RemoveDir)
                .map_err(|e| StageError::Io(e.into()))?;
        } else {
            unlinkat(Some(self.fd.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir)
                .map_err(|e| StageError::Io(e.into()))?;
        }
        Ok(())
    }

    /// The names in this directory (`.` and `..` left out).
    pub fn names(&self) -> io::Result<Vec<std::ffi::OsString>> {
        use std::os::unix::ffi::OsStrExt;
        // Its own open file (not a dup): a listing must not share an offset.
        let fd = openat(Some(self.fd.as_raw_fd()), ".", DIR_FLAGS, Mode::empty())?;
        let mut dir = nix::dir::Dir::from_fd(fd)?;
        let mut out = Vec::new();
        for entry in dir.iter() {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        Ok(out)
    }

    /// The mode, owner and mtime of `name` here, not followed, if it exists.
    pub fn stat(&self, name: &OsStr) -> Option<nix::sys::stat::FileStat> {
        fstatat(
            Some(self.fd.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .ok()
    }

    /// Whether `name` exists here (as anything, not followed).
    pub fn exists(&self, name: &OsStr) -> bool {
        fstatat(
            Some(self.fd.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_planted_symlink_is_never_walked_through() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Dir::open(t.path()).unwrap();
        symlink(outside.path(), t.path().join("link")).unwrap();
        let r = root.walk([OsStr::new("link"), OsStr::new("x")].into_iter(), Some(Mode::S_IRWXU));
        assert!(matches!(r, Err(StageError::NotADirectory)), "{r:?}");
        assert!(matches!(
            root.create_file(OsStr::new("link"), Mode::S_IRUSR),
            Err(StageError::Exists)
        ));
        assert_eq!(
            std::fs::read_dir(outside.path()).unwrap().count(),
            0,
            "nothing written outside"
        );
        assert!(
            Dir::open(&t.path().join("link")).is_err(),
            "the root itself may not be a symlink"
        );
    }

    #[test]
    fn files_are_created_exclusively_and_dirs_on_the_way() {
        let t = tempfile::tempdir().unwrap();
        let root = Dir::open(t.path()).unwrap();
        assert!(root.is_empty().unwrap());
        let d = root
            .walk([OsStr::new("a"), OsStr::new("b")].into_iter(), Some(Mode::S_IRWXU))
            .unwrap();
        d.create_file(OsStr::new("f"), Mode::S_IRUSR | Mode::S_IWUSR).unwrap();
        assert!(matches!(
            d.create_file(OsStr::new("f"), Mode::S_IRUSR),
            Err(StageError::Exists)
        ));
        assert!(t.path().join("a/b/f").is_file());
        assert!(matches!(root.mkdir(OsStr::new("a"), Mode::S_IRWXU), Ok(())));
        assert!(matches!(
            d.mkdir(OsStr::new("f"), Mode::S_IRWXU),
            Err(StageError::Exists)
        ));
        assert!(!root.is_empty().unwrap());
    }
}
