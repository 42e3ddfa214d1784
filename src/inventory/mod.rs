//! Preflight inventory of a container's processes, read through
//! [`crate::procfs`].
//!
//! Given a proc root and the init pid of a container, [`collect`] finds every
//! process of the container and describes what CRIU will have to deal with:
//! each file descriptor (kind and target), pipe peers, sockets, file locks,
//! terminals and memory maps. The result is plain data ([`Inventory`]) that
//! the pure planning code (`crate::plan`) judges and that is saved as JSON in
//! every checkpoint.
//!
//! This module never changes anything: it only reads. It takes the proc root
//! as a parameter so that tests can run it over fixture trees.

mod collect;
mod fds;
mod memory;
mod sockets;
#[cfg(test)]
mod tests;
mod unix_diag;

pub use collect::collect;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Errors while reading the container's processes.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// The container's init process is gone (exited, or never was).
    #[error("process {pid} does not exist under {proc_root}")]
    NoSuchProcess { pid: i32, proc_root: PathBuf },
    /// A file under the proc root could not be read or parsed.
    #[error(transparent)]
    Proc(#[from] crate::procfs::ProcError),
}

impl InventoryError {
    /// True when this error means the thing read has disappeared while we
    /// were looking, which is normal for a running container.
    fn is_vanished(&self) -> bool {
        matches!(self, InventoryError::Proc(e) if e.is_vanished())
    }
}

/// Everything ckpt knows about a container's processes before a dump.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// The container's processes, init first, then by host pid.
    pub processes: Vec<ProcessInfo>,
}

/// One process of the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Pid in the host (ckpt's) pid namespace.
    pub pid: i32,
    /// Pid inside the container's pid namespace (last `NSpid` entry).
    pub ns_pid: Option<i32>,
    /// Parent pid in the host namespace.
    pub ppid: i32,
    /// `comm` (short command name).
    pub comm: String,
    /// Full command line.
    pub cmdline: Vec<String>,
    /// Open file descriptors, by number.
    pub fds: Vec<FdInfo>,
    /// Memory usage from `smaps_rollup` / `maps`.
    pub memory: MemorySummary,
    /// An exited process its parent has not reaped yet (state `Z`). It has
    /// no fds, memory or mounts left to read; CRIU dumps and restores it as
    /// a zombie.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zombie: bool,
}

/// One open file descriptor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FdInfo {
    /// The fd number.
    pub fd: i32,
    /// `readlink /proc/<pid>/fd/<fd>`, e.g. `/dev/null` or `pipe:[1234]`.
    pub target: String,
    /// What kind of file it is, with kind-specific details.
    pub kind: FdKind,
    /// Mount id from `fdinfo` (`mnt_id:`), when the kernel gave one.
    pub mnt_id: Option<u64>,
    /// True when `mnt_id` is not a mount of the process's own mount
    /// namespace: the fd points at a file outside the container, which CRIU
    /// cannot dump ("Can't lookup mount"). Only meaningful for path-backed
    /// kinds (regular files, directories, devices, ttys).
    pub outside_mount_ns: bool,
    /// POSIX/flock/OFD locks held through this fd (`lock:` lines of fdinfo).
    pub locks: Vec<String>,
}

/// The kind of an fd, with the details the preflight needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FdKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A terminal: `/dev/pts/*`, `/dev/tty*`, `/dev/console` or ptmx.
    Tty,
    /// Another character or block device (`/dev/null`, ...).
    Device,
    /// A pipe or FIFO. `peer_outside` is true when a process outside the
    /// container holds the same pipe (e.g. the runtime's stdio relay).
    Pipe { inode: u64, peer_outside: bool },
    /// A unix socket. `peer_outside` is `Some(true)` when connected to a
    /// socket held by no process of the container, `None` if unknown.
    UnixSocket {
        inode: u64,
        path: Option<String>,
        connected: bool,
        peer_outside: Option<bool>,
    },
    /// A TCP socket (v4 or v6) with its state (`ESTABLISHED`, `LISTEN`, ...).
    TcpSocket {
        inode: u64,
        state: String,
        local: String,
        remote: String,
    },
    /// A UDP socket.
    UdpSocket { inode: u64, local: String },
    /// A netlink socket.
    NetlinkSocket { inode: u64 },
    /// Any other socket family.
    OtherSocket { inode: u64 },
    /// `anon_inode:[eventfd]`.
    EventFd,
    /// `anon_inode:[eventpoll]`.
    Epoll,
    /// `anon_inode:[signalfd]`.
    SignalFd,
    /// `anon_inode:[timerfd]`.
    TimerFd,
    /// `anon_inode:inotify`.
    Inotify,
    /// `/memfd:NAME (deleted)`.
    Memfd { name: String },
    /// Any other anonymous inode (`anon_inode:[io_uring]`, ...).
    AnonInode { name: String },
    /// Something not recognised.
    Unknown,
}

/// Memory of one process, in bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemorySummary {
    /// Resident set size.
    pub rss: u64,
    /// Resident anonymous memory: what CRIU writes into pages images.
    pub anon_rss: u64,
    /// Total size of anonymous (and shared-anonymous) mappings.
    pub anon_mapped: u64,
    /// Total size of file-backed mappings.
    pub file_mapped: u64,
    /// Number of mappings.
    pub map_count: u64,
}

impl Inventory {
    /// Estimated size of a dump's images: the resident anonymous memory of
    /// every process (CRIU dumps private pages), plus a small per-process
    /// allowance for the other images.
    pub fn estimated_image_bytes(&self) -> u64 {
        const PER_PROCESS_OVERHEAD: u64 = 256 * 1024;
        self.processes
            .iter()
            .map(|p| p.memory.anon_rss + PER_PROCESS_OVERHEAD)
            .sum()
    }

    /// The container's init process (first entry), if any.
    pub fn init(&self) -> Option<&ProcessInfo> {
        self.processes.first()
    }
}
