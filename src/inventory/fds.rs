//! File descriptors of one process: `fd/`, `fdinfo/` and `mountinfo`.
//!
//! Each fd is classified from its link target alone, except that absolute
//! paths are stat'ed through the fd link to tell directories from files.
//! Sockets come out as [`FdKind::OtherSocket`] here; the caller refines
//! them with the process's socket tables (`sockets.rs`), and fills pipe
//! and unix peers, which need the whole container.
//!
//! An fd closed while we read it is skipped, never reported as an error:
//! the container keeps running during the inventory.

use super::{FdInfo, FdKind, InventoryError};
use crate::procfs::{ProcError, Process};
use std::collections::HashSet;
use std::path::Path;

/// Reads every open fd of `process`. `mount_ids` are the mounts of its
/// mount namespace, used for [`FdInfo::outside_mount_ns`]; `own` is ckpt's
/// own process (`<proc_root>/self`), where [`read_fd`] reads its pinned
/// copies.
pub(super) fn read_fds(
    process: &Process,
    mount_ids: &HashSet<u64>,
    own: &Process,
) -> Result<Vec<FdInfo>, InventoryError> {
    let mut fds = Vec::new();
    for fd in process.fds()? {
        let Some(read) = read_fd(process, fd, own)? else {
            continue;
        };
        let (_, locks) = parse_fdinfo(&read.fdinfo);
        let (target, mnt_id) = (read.target, read.mnt_id);
        let kind = classify(&target, read.meta.as_ref());
        let outside_mount_ns = is_path_backed(&kind) && mnt_id.is_some_and(|id| !mount_ids.contains(&id));
        fds.push(FdInfo {
            fd,
            target,
            kind,
            mnt_id,
            outside_mount_ns,
            locks,
        });
    }
    Ok(fds)
}

/// One fd as read: its link target, its `fdinfo` text (for the locks), and
/// the open file's mount id and metadata (see [`read_fd`]).
struct FdRead {
    target: String,
    fdinfo: String,
    mnt_id: Option<u64>,
    meta: Option<std::fs::Metadata>,
}

/// Reads an fd's link target, its mount and its metadata so that they
/// describe the same open file. A running shell rebinds fds all the time
/// (`echo $n >/tmp/count` points fd 1 at the file, then back at the pipe),
/// and a file's target paired with the *next* file's `mnt_id` (the pipe's)
/// made the preflight refuse the file as "outside the container's mounts".
/// So a path target is pinned first: an `O_PATH` open of the fd's magic
/// link holds the very file the fd named at that instant (without opening
/// it for I/O: no FIFO blocks, no device is opened), and the target, the
/// mount id and the metadata are all read from ckpt's own copy, which
/// nothing else can rebind. Other targets (pipes, sockets, anonymous
/// inodes) are not judged by their mount and are read as they are. `None`
/// when the fd was closed meanwhile.
fn read_fd(process: &Process, fd: i32, own: &Process) -> Result<Option<FdRead>, ProcError> {
    let link = process.fd_path(fd);
    let target = match process.fd_target(fd) {
        Ok(target) => target,
        Err(err) if err.is_vanished() => return Ok(None),
        Err(err) => return Err(err),
    };
    // The pinned read, for paths; where it cannot be made (a fixture tree,
    // whose links name no real file) the plain reads below stand.
    let pinned = if target.starts_with('/') {
        pinned(&link, own)
    } else {
        None
    };
    // The fd's own fdinfo still gives its locks.
    let Some(fdinfo) = process.fdinfo(fd)? else {
        return Ok(None);
    };
    Ok(Some(match pinned {
        Some((target, mnt_id, meta)) => FdRead {
            target,
            fdinfo,
            mnt_id,
            meta: Some(meta),
        },
        None => FdRead {
            meta: target.starts_with('/').then(|| std::fs::metadata(&link).ok()).flatten(),
            mnt_id: parse_fdinfo(&fdinfo).0,
            target,
            fdinfo,
        },
    }))
}

/// `(target, mnt_id, metadata)` of the file `link` names now, read through
/// an `O_PATH` descriptor of ckpt's own (`own` is ckpt's proc entry).
fn pinned(link: &Path, own: &Process) -> Option<(String, Option<u64>, std::fs::Metadata)> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_CLOEXEC)
        .open(link)
        .ok()?;
    let fd = file.as_raw_fd();
    let target = own.fd_target(fd).ok()?;
    let (mnt_id, _) = parse_fdinfo(&own.fdinfo(fd).ok()??);
    Some((target, mnt_id, file.metadata().ok()?))
}

/// The mount ids (first column) of a `mountinfo` file.
pub(super) fn parse_mount_ids(text: &str) -> HashSet<u64> {
    text.lines()
        .filter_map(|line| line.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The `mnt_id` of an `fdinfo` file.
#[cfg(test)]
pub(super) fn parse_fdinfo_mnt_id(text: &str) -> Option<u64> {
    parse_fdinfo(text).0
}

/// `(mnt_id, locks)` of an `fdinfo` file. Lock lines look like
/// `lock:\t1: POSIX  ADVISORY  WRITE 1234 08:01:5678 0 EOF`.
fn parse_fdinfo(text: &str) -> (Option<u64>, Vec<String>) {
    let mut mnt_id = None;
    let mut locks = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("mnt_id:") {
            mnt_id = value.trim().parse().ok();
        } else if let Some(value) = line.strip_prefix("lock:") {
            locks.push(value.trim().to_string());
        }
    }
    (mnt_id, locks)
}

/// Kinds whose fd names a file in some mount, so that CRIU has to find
/// that mount in the dumped mount namespace. Memfds live on an internal
/// mount that CRIU handles by itself, so they are not path-backed here.
fn is_path_backed(kind: &FdKind) -> bool {
    matches!(kind, FdKind::File | FdKind::Dir | FdKind::Tty | FdKind::Device)
}

/// Classifies an fd from its link `target`; `meta` is the open file's
/// metadata (read through the fd link), for absolute paths.
fn classify(target: &str, meta: Option<&std::fs::Metadata>) -> FdKind {
    if let Some(inode) = bracketed_number(target, "pipe:") {
        return FdKind::Pipe {
            inode,
            peer_outside: false,
        };
    }
    if let Some(inode) = bracketed_number(target, "socket:") {
        return FdKind::OtherSocket { inode };
    }
    if let Some(name) = target.strip_prefix("anon_inode:") {
        return match name {
            "[eventfd]" => FdKind::EventFd,
            "[eventpoll]" => FdKind::Epoll,
            "[signalfd]" => FdKind::SignalFd,
            "[timerfd]" => FdKind::TimerFd,
            "inotify" => FdKind::Inotify,
            other => FdKind::AnonInode {
                name: other.trim_start_matches('[').trim_end_matches(']').to_string(),
            },
        };
    }
    if let Some(name) = target.strip_prefix("/memfd:") {
        let name = name.strip_suffix(" (deleted)").unwrap_or(name);
        return FdKind::Memfd { name: name.to_string() };
    }
    if is_tty_path(target) {
        return FdKind::Tty;
    }
    if target.starts_with("/dev/") {
        return FdKind::Device;
    }
    if target.starts_with('/') {
        // A FIFO opened by path is reported as a File so that its mount is
        // still checked.
        return match meta {
            Some(meta) if meta.is_dir() => FdKind::Dir,
            _ => FdKind::File,
        };
    }
    FdKind::Unknown
}

/// `/dev/pts/*` (including `/dev/pts/ptmx`), `/dev/tty*`, `/dev/console`,
/// `/dev/ptmx`.
fn is_tty_path(target: &str) -> bool {
    target.starts_with("/dev/pts/")
        || target.starts_with("/dev/tty")
        || target == "/dev/console"
        || target == "/dev/ptmx"
}

/// `pipe:[123]` with prefix `pipe:` → 123.
fn bracketed_number(target: &str, prefix: &str) -> Option<u64> {
    target
        .strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(target: &str) -> FdKind {
        classify(target, None)
    }

    #[test]
    fn special_targets_are_classified() {
        assert_eq!(
            kind("pipe:[42]"),
            FdKind::Pipe {
                inode: 42,
                peer_outside: false
            }
        );
        assert_eq!(kind("socket:[7]"), FdKind::OtherSocket { inode: 7 });
        assert_eq!(kind("anon_inode:[eventfd]"), FdKind::EventFd);
        assert_eq!(kind("anon_inode:[eventpoll]"), FdKind::Epoll);
        assert_eq!(kind("anon_inode:[signalfd]"), FdKind::SignalFd);
        assert_eq!(kind("anon_inode:[timerfd]"), FdKind::TimerFd);
        assert_eq!(kind("anon_inode:inotify"), FdKind::Inotify);
        assert_eq!(
            kind("anon_inode:[io_uring]"),
            FdKind::AnonInode {
                name: "io_uring".into()
            }
        );
        assert_eq!(kind("/memfd:buf (deleted)"), FdKind::Memfd { name: "buf".into() });
        assert_eq!(kind("net:[4026531840]"), FdKind::Unknown);
    }

    #[test]
    fn terminals_and_devices() {
        for tty in [
            "/dev/pts/3",
            "/dev/pts/ptmx",
            "/dev/ptmx",
            "/dev/tty",
            "/dev/tty1",
            "/dev/console",
        ] {
            assert_eq!(kind(tty), FdKind::Tty, "{tty}");
        }
        assert_eq!(kind("/dev/null"), FdKind::Device);
        assert_eq!(kind("/dev/urandom"), FdKind::Device);
    }

    #[test]
    fn paths_are_files_unless_stat_says_dir() {
        let dir = tempfile::tempdir().unwrap();
        let meta = std::fs::metadata(dir.path()).unwrap();
        assert_eq!(classify("/some/dir", Some(&meta)), FdKind::Dir);
        // stat fails: a file we cannot see is still a file.
        assert_eq!(kind("/var/log/app.log (deleted)"), FdKind::File);
    }

    #[test]
    fn fdinfo_gives_mount_id_and_locks() {
        let text = "pos:\t0\nflags:\t0100002\nmnt_id:\t29\nino:\t1234\n\
                    lock:\t1: POSIX  ADVISORY  WRITE 1234 08:01:1234 0 EOF\n\
                    lock:\t2: FLOCK  ADVISORY  READ 1234 08:01:1234 0 EOF\n";
        let (mnt_id, locks) = parse_fdinfo(text);
        assert_eq!(mnt_id, Some(29));
        assert_eq!(
            locks,
            vec![
                "1: POSIX  ADVISORY  WRITE 1234 08:01:1234 0 EOF".to_string(),
                "2: FLOCK  ADVISORY  READ 1234 08:01:1234 0 EOF".to_string(),
            ]
        );
    }

    #[test]
    fn mountinfo_ids_are_the_first_column() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    29 22 0:5 / /dev rw - devtmpfs udev rw\n";
        assert_eq!(parse_mount_ids(text), HashSet::from([22, 29]));
    }
}
