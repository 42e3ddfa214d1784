//! Deleting directories without ever deleting through a mount.
//!
//! A recursive delete walks into a mount point as into any directory. A
//! `runc restore` killed part-way leaves its bind mount of the container's
//! root filesystem at `<runc-root>/<id>/criu-root`, and CRIU killed
//! part-way leaves its cgroup yard (a tmpfs with every cgroup v1 hierarchy
//! of the host mounted in it) under the restore work directory. A
//! `runc delete --force` of that state dir, or a `remove_dir_all` of that
//! work dir, then deletes the container's files or the host's cgroups.
//!
//! This module promises: [`remove_tree`] never crosses into another mount
//! (it checks every directory's mount id before it enters it); [`detach_below`]
//! lazily unmounts only what is strictly below the directory it is given,
//! never the directory itself nor anything outside it, and says which
//! mounts it could not remove. What to unmount, in which order, and
//! whether a delete is safe, is decided by pure functions over parsed
//! mountinfo ([`unmount_order`], [`delete_verdict`]).

use crate::mountinfo::{self, Mount};
use std::collections::HashSet;
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How many times [`detach_below`] re-reads mountinfo and retries: a lazy
/// unmount detaches a whole subtree at once, so one round normally does.
const DETACH_ROUNDS: usize = 4;

/// Errors of removing directories near mounts.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(
        "{count} mount(s) remain below {dir} ({list}); deleting it would delete what they show. \
         Unmount them (umount -l {first}) and run the command again",
        count = .mounts.len(),
        list = join(.mounts),
        first = .mounts.first().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    MountsRemain { dir: PathBuf, mounts: Vec<PathBuf> },
    #[error("refusing to delete through the mount at {path} (below {dir})")]
    MountInTheWay { dir: PathBuf, path: PathBuf },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The suffix the kernel gives a mount point whose directory was removed.
const DELETED: &[u8] = b" (deleted)";

/// PURE: the mounts strictly below `dir`, ordered so that each comes
/// before the mount it is mounted on (children first; among unrelated
/// mounts, deeper paths first). These are the mount points to detach, in
/// order, before `dir` may be deleted. Mount points whose directory was
/// removed (` (deleted)`) are left out: no path walk can reach them.
pub fn unmount_order(mounts: &[Mount], dir: &Path) -> Vec<PathBuf> {
    let below: Vec<&Mount> = mounts
        .iter()
        .filter(|m| m.mount_point != dir && m.mount_point.starts_with(dir))
        .filter(|m| !m.mount_point.as_os_str().as_bytes().ends_with(DELETED))
        .collect();
    let mut order: Vec<&Mount> = Vec::with_capacity(below.len());
    let mut placed: HashSet<u64> = HashSet::new();
    while order.len() < below.len() {
        // Mounts none of whose not-yet-placed children remain.
        let mut ready: Vec<&Mount> = below
            .iter()
            .copied()
            .filter(|m| !placed.contains(&m.id))
            .filter(|m| {
                !below
                    .iter()
                    .any(|c| c.parent == m.id && c.id != m.id && !placed.contains(&c.id))
            })
            .collect();
        if ready.is_empty() {
            // A cycle cannot happen in a real mount tree; do not loop on garbage.
            ready = below.iter().copied().filter(|m| !placed.contains(&m.id)).collect();
        }
        ready.sort_by(|a, b| {
            let depth = |m: &Mount| m.mount_point.components().count();
            depth(b).cmp(&depth(a)).then(b.id.cmp(&a.id))
        });
        for m in ready {
            placed.insert(m.id);
            order.push(m);
        }
    }
    order.into_iter().map(|m| m.mount_point.clone()).collect()
}

/// PURE: may `dir` be deleted recursively? Only when no mount is below it;
/// otherwise the mount points that are in the way.
pub fn delete_verdict(mounts: &[Mount], dir: &Path) -> Result<(), Vec<PathBuf>> {
    let mut below = unmount_order(mounts, dir);
    if below.is_empty() {
        return Ok(());
    }
    below.sort();
    Err(below)
}

/// The path the kernel would print for `dir`: mountinfo shows resolved
/// paths, so `/var/run/runc/x` must be compared as `/run/runc/x`. None if
/// `dir` does not exist (then nothing can be mounted below it).
fn resolved(dir: &Path) -> Option<PathBuf> {
    match std::fs::canonicalize(dir) {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        // Unreadable: judge the path as given rather than not at all.
        Err(_) => Some(dir.to_path_buf()),
    }
}

fn read_mounts(mountinfo: &Path) -> Vec<Mount> {
    mountinfo::parse(&std::fs::read_to_string(mountinfo).unwrap_or_default())
}

/// Lazily unmounts every mount strictly below `dir` (as listed in
/// `mountinfo`, normally ckpt's own, [`crate::procfs::ProcRoot::own_mountinfo`]),
/// children first, and checks
/// that none is left. Only for directories whose mounts are leftovers by
/// definition: ckpt's own work and staging dirs, and the runtime state
/// dir of a container about to be deleted. Returns how many it unmounted.
pub fn detach_below(mountinfo: &Path, dir: &Path) -> Result<usize, MountError> {
    let Some(dir) = resolved(dir) else {
        return Ok(0);
    };
    let mut detached = 0;
    for _ in 0..DETACH_ROUNDS {
        let targets = unmount_order(&read_mounts(mountinfo), &dir);
        if targets.is_empty() {
            return Ok(detached);
        }
        for t in targets {
            match nix::mount::umount2(&t, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => {
                    log::warn!("unmounted {} (left by a killed restore)", t.display());
                    detached += 1;
                }
                // Already gone with its parent's lazy unmount.
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => {}
                Err(e) => log::warn!("cannot unmount {}: {e}", t.display()),
            }
        }
    }
    delete_verdict(&read_mounts(mountinfo), &dir)
        .map(|()| detached)
        .map_err(|mounts| MountError::MountsRemain { dir, mounts })
}

/// Unmounts the mount at `path` itself (and everything below it) when
/// `path` is a mount point, e.g. crun's `<bundle>/criu-root`. Only for
/// paths that are by definition a runtime's leftover.
pub fn detach_at(mountinfo: &Path, path: &Path) -> Result<usize, MountError> {
    let Some(real) = resolved(path) else {
        return Ok(0);
    };
    let mut detached = detach_below(mountinfo, &real)?;
    for _ in 0..DETACH_ROUNDS {
        if !read_mounts(mountinfo).iter().any(|m| m.mount_point == real) {
            return Ok(detached);
        }
        match nix::mount::umount2(&real, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => {
                log::warn!("unmounted {} (left by a killed restore)", real.display());
                detached += 1;
            }
            Err(e) => log::warn!("cannot unmount {}: {e}", real.display()),
        }
    }
    Err(MountError::MountsRemain {
        dir: real.clone(),
        mounts: vec![real],
    })
}

/// Removes `dir` and everything in it without following symlinks and
/// without entering another mount: a directory whose mount id differs from
/// `dir`'s stops the removal with [`MountError::MountInTheWay`] before
/// anything below it is touched. A missing `dir` is not an error.
pub fn remove_tree(dir: &Path) -> Result<(), MountError> {
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| MountError::Io { op, path, source }
    };
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err("inspect", dir)(e)),
    };
    if !meta.is_dir() {
        // A file or a symlink: removing it never reaches anything else.
        return std::fs::remove_file(dir).map_err(io_err("remove", dir));
    }
    let top = open_dir(None, dir).map_err(io_err("open", dir))?;
    let mount_id = mount_id(&top).map_err(io_err("inspect", dir))?;
    empty_dir(&top, dir, dir, mount_id)?;
    drop(top);
    std::fs::remove_dir(dir).map_err(io_err("remove", dir))
}

/// [`detach_below`] then [`remove_tree`]: for ckpt's own work and staging
/// directories, where anything mounted is a leftover of CRIU or a runtime.
pub fn remove_leftover_tree(mountinfo: &Path, dir: &Path) -> Result<(), MountError> {
    detach_below(mountinfo, dir)?;
    remove_tree(dir)
}

/// Opens a directory (relative to `at` when given) without following a
/// symlink in its last component.
fn open_dir(at: Option<&OwnedFd>, path: &Path) -> io::Result<OwnedFd> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match at {
        Some(dirfd) => openat(Some(dirfd.as_raw_fd()), path, flags, Mode::empty()),
        None => openat(None, path, flags, Mode::empty()),
    }
    .map_err(io::Error::from)?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) })
}

/// The id of the mount an open directory lives on (statx `STATX_MNT_ID`,
/// Linux 5.8+); on older kernels the device number, which still tells
/// other filesystems apart (bind mounts of the same one are then caught
/// only by [`detach_below`]'s mountinfo check).
fn mount_id(fd: &OwnedFd) -> io::Result<u64> {
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: an empty C string with AT_EMPTY_PATH makes statx describe
    // `fd` itself; `stx` is a valid, writable statx buffer.
    let rc = unsafe {
        libc::statx(
            fd.as_fd().as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
            libc::STATX_MNT_ID,
            stx.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statx succeeded and filled the buffer.
    let stx = unsafe { stx.assume_init() };
    if stx.stx_mask & libc::STATX_MNT_ID != 0 {
        Ok(stx.stx_mnt_id)
    } else {
        Ok((u64::from(stx.stx_dev_major) << 32) | u64::from(stx.stx_dev_minor))
    }
}

/// Removes everything in the open directory `fd` (at `path`), refusing to
/// enter any directory on a mount other than `mount_id`.
fn empty_dir(fd: &OwnedFd, path: &Path, top: &Path, mount_id: u64) -> Result<(), MountError> {
    use nix::dir::{Dir, Type};
    use nix::unistd::{unlinkat, UnlinkatFlags};
    let io_err = |op: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source: io::Error| MountError::Io { op, path, source }
    };
    // Dir takes ownership of the fd it reads: give it a duplicate.
    let dup = fd.try_clone().map_err(io_err("open", path))?;
    let mut dir = Dir::from(dup).map_err(|e| io_err("read", path)(e.into()))?;
    let mut entries: Vec<(std::ffi::OsString, Option<Type>)> = Vec::new();
    for entry in dir.iter() {
        let entry = entry.map_err(|e| io_err("read", path)(e.into()))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        entries.push((name.to_os_string(), entry.file_type()));
    }
    drop(dir);
    for (name, kind) in entries {
        let child = path.join(&name);
        let is_dir = match kind {
            Some(t) => t == Type::Directory,
            None => std::fs::symlink_metadata(&child)
                .map(|m| m.is_dir())
                .map_err(io_err("inspect", &child))?,
        };
        if is_dir {
            let sub = open_dir(Some(fd), Path::new(&name)).map_err(io_err("open", &child))?;
            if mount_id_of(&sub, &child)? != mount_id {
                return Err(MountError::MountInTheWay {
                    dir: top.to_path_buf(),
                    path: child,
                });
            }
            empty_dir(&sub, &child, top, mount_id)?;
            drop(sub);
            unlinkat(Some(fd.as_raw_fd()), Path::new(&name), UnlinkatFlags::RemoveDir)
                .map_err(|e| io_err("remove", &child)(e.into()))?;
        } else {
            unlinkat(Some(fd.as_raw_fd()), Path::new(&name), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| io_err("remove", &child)(e.into()))?;
        }
    }
    Ok(())
}

fn mount_id_of(fd: &OwnedFd, path: &Path) -> Result<u64, MountError> {
    mount_id(fd).map_err(|source| MountError::Io {
        op: "inspect",
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u64, parent: u64, point: &str) -> Mount {
        Mount {
            id,
            parent,
            root: PathBuf::from("/"),
            mount_point: PathBuf::from(point),
            fstype: "tmpfs".into(),
            source: "none".into(),
            super_options: vec![],
        }
    }

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn unmount_order_cases() {
        let host = [m(1, 0, "/"), m(2, 1, "/run"), m(3, 1, "/sys/fs/cgroup")];
        let criu_root = m(10, 2, "/run/runc/c1/criu-root");
        let yard = m(20, 1, "/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a");
        let yard_cpu = m(21, 20, "/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a/cpu");
        let yard_mem = m(22, 20, "/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a/memory");
        // Stacked on the same path: the upper one (its child) goes first.
        let lower = m(30, 2, "/run/runc/c2/criu-root");
        let upper = m(31, 30, "/run/runc/c2/criu-root");
        let all: Vec<Mount> = host
            .iter()
            .cloned()
            .chain([criu_root, yard.clone(), yard_mem, yard_cpu, lower, upper])
            .collect();
        #[rustfmt::skip]
        let cases: &[(&str, &str, &[&str])] = &[
            ("runc state dir with criu-root", "/run/runc/c1", &["/run/runc/c1/criu-root"]),
            ("the dir itself is never listed", "/run/runc/c1/criu-root", &[]),
            ("a sibling id is not below", "/run/runc/c", &[]),
            ("nothing below", "/run/runc/c9", &[]),
            ("yard: hierarchies before the tmpfs they are on", "/s/c1/.ckpt-staging",
                &["/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a/memory",
                  "/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a/cpu",
                  "/s/c1/.ckpt-staging/restore.1.x/.criu.cgyard.a"]),
            ("stacked mounts: upper first", "/run/runc/c2",
                &["/run/runc/c2/criu-root", "/run/runc/c2/criu-root"]),
        ];
        for (what, dir, want) in cases {
            assert_eq!(unmount_order(&all, Path::new(dir)), paths(want), "{what}");
        }
        // A stacked pair with a mount on the upper one: deepest first, then
        // the upper (31, the child of 30) before the lower.
        let stacked = [m(30, 2, "/x/a"), m(31, 30, "/x/a"), m(32, 31, "/x/a/b")];
        assert_eq!(
            unmount_order(&stacked, Path::new("/x")),
            paths(&["/x/a/b", "/x/a", "/x/a"])
        );
    }

    #[test]
    fn children_always_precede_parents() {
        // A child mounted at a shallower path than its parent (possible
        // with bind mounts moved around) still goes first.
        let odd = [m(40, 1, "/w/deep/er/dir"), m(41, 40, "/w/x")];
        assert_eq!(unmount_order(&odd, Path::new("/w")), paths(&["/w/x", "/w/deep/er/dir"]));
        // Garbage (a cycle) still terminates and lists each mount once.
        let cycle = [m(50, 51, "/w/a"), m(51, 50, "/w/b")];
        assert_eq!(unmount_order(&cycle, Path::new("/w")).len(), 2);
    }

    #[test]
    fn deleted_mount_points_are_unreachable() {
        let all = [m(10, 2, "/run/runc/c1/criu-root (deleted)")];
        assert!(unmount_order(&all, Path::new("/run/runc/c1")).is_empty());
        assert_eq!(delete_verdict(&all, Path::new("/run/runc/c1")), Ok(()));
    }

    #[test]
    fn delete_verdict_cases() {
        let text = "1 0 254:0 / / rw - ext4 /dev/vda rw
60 1 254:0 /tmp/b/rootfs /run/runc/c1/criu-root rw shared:1 - ext4 /dev/vda rw
70 1 0:50 / /s/c1/.ckpt-staging/restore.9.x/.criu.cgyard.q rw - tmpfs none rw
71 70 0:34 / /s/c1/.ckpt-staging/restore.9.x/.criu.cgyard.q/freezer rw - cgroup none rw,freezer
80 1 0:51 / /s/c1/.ckpt-staging/with\\040space/m rw - tmpfs none rw";
        let all = mountinfo::parse(text);
        #[rustfmt::skip]
        let cases: &[(&str, Result<(), &[&str]>)] = &[
            ("/run/runc/c1", Err(&["/run/runc/c1/criu-root"])),
            ("/run/runc/c2", Ok(())),
            ("/run/runc", Err(&["/run/runc/c1/criu-root"])),
            ("/s/c1/.ckpt-staging/restore.9.x", Err(&[
                "/s/c1/.ckpt-staging/restore.9.x/.criu.cgyard.q",
                "/s/c1/.ckpt-staging/restore.9.x/.criu.cgyard.q/freezer"])),
            ("/s/c1/.ckpt-staging/restore.9.xy", Ok(())),
            ("/s/c1/.ckpt-staging/with space", Err(&["/s/c1/.ckpt-staging/with space/m"])),
            ("/tmp/b/rootfs", Ok(())),
        ];
        for (dir, want) in cases {
            let got = delete_verdict(&all, Path::new(dir));
            assert_eq!(got, want.map_err(paths), "{dir}");
        }
    }

    #[test]
    fn remove_tree_removes_everything_without_following_links() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let dir = t.path().join("victim");
        std::fs::create_dir_all(dir.join("a/b/c")).unwrap();
        std::fs::write(dir.join("a/b/c/f"), "y").unwrap();
        std::fs::write(dir.join("top"), "z").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("a/link")).unwrap();
        remove_tree(&dir).unwrap();
        assert!(!dir.exists());
        assert!(outside.join("keep").exists(), "followed a symlink");
        // Missing is fine; a symlink given as the top is removed, not followed.
        remove_tree(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, &dir).unwrap();
        remove_tree(&dir).unwrap();
        assert!(std::fs::symlink_metadata(&dir).is_err());
        assert!(outside.join("keep").exists());
    }

    #[test]
    fn detach_below_a_missing_dir_or_without_mounts_does_nothing() {
        let t = tempfile::tempdir().unwrap();
        let info = t.path().join("mountinfo");
        std::fs::write(&info, "1 0 254:0 / / rw - ext4 /dev/vda rw\n").unwrap();
        assert_eq!(detach_below(&info, &t.path().join("nope")).unwrap(), 0);
        assert_eq!(detach_below(&info, t.path()).unwrap(), 0);
    }
}
