//! PURE planning of a dump: spec + inventory + host facts + options → a
//! [`DumpPlan`] that holds everything `create` executes (CRIU's options, the
//! freezer, what happens to the container afterwards, the stdio to record),
//! or a [`Refusal`] that explains, in the user's terms, why the container
//! cannot be checkpointed as asked. Nothing edits a plan after planning.
//!
//! Nothing here touches the system; every input is plain data gathered
//! beforehand, so every rule is unit-tested with tables of cases. The rules
//! for external mounts follow runc's own checkpoint code so that the images
//! restore with `runc restore` (and thus `docker start --checkpoint`).

use crate::cgroups::{CgroupDump, FreezerDir};
use crate::inventory::{FdKind, Inventory, ProcessInfo};
use crate::mountinfo::Mount;
use crate::spec::SpecFacts;
use serde::Serialize;
use std::fmt;
use std::path::{Component, Path, PathBuf};

/// What the user asked for (`ckpt create` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DumpOptions {
    pub leave_running: bool,
    pub tcp_established: bool,
    pub file_locks: bool,
    pub ext_unix_sk: bool,
}

/// Facts about the host and the running container gathered before planning.
#[derive(Debug, Clone, Default)]
pub struct HostFacts {
    /// Host pid of the container's init.
    pub init_pid: i32,
    /// Absolute rootfs on the host.
    pub rootfs: PathBuf,
    /// The init process's mountinfo (paths as seen inside the container).
    pub container_mounts: Vec<Mount>,
    /// Masked paths that exist in the container and are not directories
    /// (runc bind-mounts /dev/null over those).
    pub masked_files: Vec<String>,
    /// The runtime's state root (`--root`); crun ≥ 1.24 keeps the shared
    /// empty directory it binds over masked directories there.
    pub runtime_root: PathBuf,
    /// Inode of the network namespace the spec joins, if any.
    pub joined_netns_inode: Option<u64>,
    /// Inode of the pid namespace the spec joins, if any.
    pub joined_pidns_inode: Option<u64>,
    /// The container's freezer cgroup (ckpt's freeze and CRIU's
    /// --freeze-cgroup), if one was found.
    pub freezer: Option<FreezerDir>,
    /// Which cgroup hierarchies CRIU dumps (`cgroups::dump_selection`):
    /// on a pure v2 host the unified one only, and never one in which the
    /// container sits at the root.
    pub cgroup_dump: CgroupDump,
    /// The init's stdio as the runtime recorded it at start (runc's
    /// `external_descriptors`); empty when the runtime keeps none.
    pub recorded_stdio: Vec<String>,
    /// The init's stdio as `/proc/<pid>/fd/{0,1,2}` shows it now.
    pub live_stdio: Vec<String>,
    /// Free bytes in the store's filesystem.
    pub store_free_bytes: Option<u64>,
    /// The store root (for messages).
    pub store_root: PathBuf,
    /// Whose restore will map the externals: names must match its keys.
    pub naming: ExternalNaming,
}

/// The external-mount names a runtime expects at restore. They differ only
/// in how masked files are named and in runc's default devices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExternalNaming {
    /// runc (and Docker, which restores through runc): every masked file is
    /// named `/dev/null`, and runc's default devices are named.
    #[default]
    Runc,
    /// crun: each masked file is named by its own path.
    Crun,
}

/// What becomes of the container once CRIU has dumped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum AfterDump {
    /// `--leave-running`: thawed as soon as CRIU exits (unless the user
    /// paused it); the frozen time ends there.
    Resume,
    /// Kept frozen while the checkpoint is published, then killed and
    /// deleted by its engine; the frozen time ends when CRIU exits.
    Stop,
}

/// Everything `create` executes: what CRIU is asked, on which freezer, and
/// what becomes of the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DumpPlan {
    pub pid: i32,
    pub root: PathBuf,
    /// ckpt freezes it before CRIU runs (unless the user had paused it),
    /// and CRIU gets it as --freeze-cgroup.
    pub freezer: FreezerDir,
    /// The hierarchies CRIU dumps (`--cgroup-dump-controller`). On a pure
    /// v2 host the unified one: the v1 memberships the kernel may still
    /// list are no runtime's, and restoring them fails (crun's
    /// `--cgroup-root` would create them in every v1 hierarchy).
    pub cgroup_dump: CgroupDump,
    /// `--external` values, e.g. `mnt[/etc/hosts]:/etc/hosts`.
    pub externals: Vec<String>,
    /// What the user asked for, as `ckpt.json` records it.
    pub options: DumpOptions,
    /// What CRIU is asked: the user's options, but always
    /// `--leave-running`. ckpt stops the container itself, and only after
    /// the checkpoint is published.
    pub criu: DumpOptions,
    pub after: AfterDump,
    /// The init's stdio as `descriptors.json` records it for the restore.
    pub descriptors: Vec<String>,
    /// Warnings worth showing (nothing that stops the dump).
    pub warnings: Vec<String>,
}

/// One reason a container cannot be checkpointed as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum Problem {
    /// `process.terminal` is set in the spec.
    TerminalInSpec,
    /// A process holds a terminal.
    TerminalFd { at: FdRef },
    /// A process holds a file outside the container's mounts.
    HostFile { at: FdRef },
    /// An established TCP connection without --tcp-established.
    TcpEstablished { at: FdRef, local: String, remote: String },
    /// A unix socket connected outside the container without --ext-unix-sk.
    ExternalUnixSocket { at: FdRef },
    /// A file lock without --file-locks.
    FileLock { at: FdRef },
    /// The store's filesystem cannot hold the estimated images.
    NoSpace {
        store: PathBuf,
        needed: u64,
        available: u64,
    },
    /// No freezer cgroup was found for the container.
    NoFreezer,
}

/// Which fd of which process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FdRef {
    pub pid: i32,
    pub comm: String,
    pub fd: i32,
    pub target: String,
}

impl fmt::Display for FdRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "process {} ({}) fd {} → {}",
            self.pid, self.comm, self.fd, self.target
        )
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TerminalInSpec => write!(
                f,
                "the container has a terminal (process.terminal is true in its spec); containers started with a TTY (-t) cannot be checkpointed by ckpt. Recreate it without a terminal"
            ),
            Problem::TerminalFd { at } => write!(
                f,
                "{at} is a terminal; processes holding a TTY cannot be checkpointed. Recreate the container without -t and give it pipes or files inside the container instead"
            ),
            Problem::HostFile { at } => write!(
                f,
                "{at} is a file outside the container's mounts (CRIU would fail with \"Can't lookup mount\"). Give the container stdio pipes, or bind-mount the file into the container"
            ),
            Problem::TcpEstablished { at, local, remote } => write!(
                f,
                "{at} is an established TCP connection {local} → {remote}; pass --tcp-established to checkpoint it (the peer sees a pause, and the addresses must exist at restore)"
            ),
            Problem::ExternalUnixSocket { at } => write!(
                f,
                "{at} is a unix socket connected to a process outside the container; pass --ext-unix-sk to checkpoint it anyway (the connection will not survive a restore elsewhere)"
            ),
            Problem::FileLock { at } => write!(f, "{at} holds a file lock; pass --file-locks to checkpoint it"),
            Problem::NoSpace { store, needed, available } => write!(
                f,
                "the store {} has {} free but the checkpoint needs about {}; free space or use --store on a larger filesystem",
                store.display(),
                human_bytes(*available),
                human_bytes(*needed)
            ),
            Problem::NoFreezer => write!(
                f,
                "no freezer cgroup found for the container; CRIU cannot freeze it consistently"
            ),
        }
    }
}

/// Every reason the container cannot be checkpointed as asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refusal {
    pub problems: Vec<Problem>,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// The default devices runc adds to every container (and therefore names as
/// externals at dump and restore, see runc's `AllowedDevices`).
const RUNC_DEFAULT_DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/random",
    "/dev/full",
    "/dev/tty",
    "/dev/zero",
    "/dev/urandom",
];

/// Headroom on top of the estimated image size for logs and metadata.
/// The shared directory crun ≥ 1.24 bind-mounts over masked directories,
/// inside its state root.
const CRUN_EMPTY_DIR: &str = ".empty-directory";

const SPACE_HEADROOM: u64 = 16 * 1024 * 1024;

/// Judges the inventory against the options: every problem found, in
/// process/fd order. An empty list means the dump may go ahead.
pub fn problems(spec: &SpecFacts, inventory: &Inventory, host: &HostFacts, opts: &DumpOptions) -> Vec<Problem> {
    let mut out = Vec::new();
    if spec.terminal {
        out.push(Problem::TerminalInSpec);
    }
    for p in &inventory.processes {
        for fd in &p.fds {
            let at = || fd_ref(p, fd.fd, &fd.target);
            match &fd.kind {
                FdKind::Tty => out.push(Problem::TerminalFd { at: at() }),
                FdKind::File | FdKind::Dir | FdKind::Device if fd.outside_mount_ns => {
                    out.push(Problem::HostFile { at: at() })
                }
                FdKind::TcpSocket {
                    state, local, remote, ..
                } if state == "ESTABLISHED" && !opts.tcp_established => out.push(Problem::TcpEstablished {
                    at: at(),
                    local: local.clone(),
                    remote: remote.clone(),
                }),
                FdKind::UnixSocket {
                    connected: true,
                    peer_outside: Some(true),
                    ..
                } if !opts.ext_unix_sk => out.push(Problem::ExternalUnixSocket { at: at() }),
                _ => {}
            }
            if !fd.locks.is_empty() && !opts.file_locks {
                out.push(Problem::FileLock { at: at() });
            }
        }
    }
    if host.freezer.is_none() {
        out.push(Problem::NoFreezer);
    }
    if let Some(available) = host.store_free_bytes {
        let needed = inventory.estimated_image_bytes() + SPACE_HEADROOM;
        if needed > available {
            out.push(Problem::NoSpace {
                store: host.store_root.clone(),
                needed,
                available,
            });
        }
    }
    out
}

/// Things worth telling the user that do not stop the dump.
pub fn warnings(inventory: &Inventory) -> Vec<String> {
    let mut out = Vec::new();
    // The init's stdio pipes are re-attached at restore through
    // descriptors.json (by inode, so children sharing them are covered);
    // other pipes to the outside are not.
    let stdio_pipes: Vec<u64> = inventory
        .init()
        .map(|p| {
            p.fds
                .iter()
                .filter(|f| f.fd <= 2)
                .filter_map(|f| match f.kind {
                    FdKind::Pipe { inode, .. } => Some(inode),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    for p in &inventory.processes {
        for fd in &p.fds {
            match &fd.kind {
                FdKind::Pipe { peer_outside: true, inode } if !stdio_pipes.contains(inode) => out.push(format!(
                    "{}: pipe shared with a process outside the container; after a restore its other end is gone",
                    fd_ref(p, fd.fd, &fd.target)
                )),
                FdKind::UnixSocket {
                    connected: true,
                    peer_outside: None,
                    ..
                } => out.push(format!(
                    "{}: connected unix socket whose peer could not be determined; if the peer is outside the container the dump fails (pass --ext-unix-sk)",
                    fd_ref(p, fd.fd, &fd.target)
                )),
                _ => {}
            }
        }
    }
    out
}

/// Plans the dump, or refuses with every problem found.
pub fn dump_plan(
    spec: &SpecFacts,
    inventory: &Inventory,
    host: &HostFacts,
    opts: &DumpOptions,
) -> Result<DumpPlan, Refusal> {
    let problems = problems(spec, inventory, host, opts);
    let freezer = match (&host.freezer, problems.is_empty()) {
        (Some(freezer), true) => freezer.clone(),
        _ => return Err(Refusal { problems }),
    };
    Ok(DumpPlan {
        pid: host.init_pid,
        root: host.rootfs.clone(),
        freezer,
        cgroup_dump: host.cgroup_dump.clone(),
        externals: externals(spec, host),
        options: *opts,
        criu: DumpOptions {
            leave_running: true,
            ..*opts
        },
        after: if opts.leave_running {
            AfterDump::Resume
        } else {
            AfterDump::Stop
        },
        descriptors: stdio_to_record(host),
        warnings: warnings(inventory),
    })
}

/// The stdio `descriptors.json` records: what the runtime recorded at
/// start (runc maps those onto the new stdio at restore), or for runtimes
/// that keep none, what the init's fds show now.
pub fn stdio_to_record(host: &HostFacts) -> Vec<String> {
    if host.recorded_stdio.is_empty() {
        host.live_stdio.clone()
    } else {
        host.recorded_stdio.clone()
    }
}

/// The `--external` entries, named exactly as runc names them at restore:
/// a dump that marks a mount external that the restorer does not map (or the
/// reverse) fails, so these rules mirror runc's checkpoint code.
pub fn externals(spec: &SpecFacts, host: &HostFacts) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: String| {
        if !out.contains(&s) {
            out.push(s)
        }
    };
    let has_cgroupns = spec.namespace("cgroup").is_some();
    for m in &spec.mounts {
        if m.is_bind() {
            let dest = clean(&m.destination);
            push(format!("mnt[{}]:{}", dest.display(), dest.display()));
        } else if m.typ == "cgroup" && !has_cgroupns {
            // cgroup v1 without a cgroup namespace: runc bind-mounts each
            // hierarchy under the cgroup destination, one external each.
            let dest = clean(&m.destination);
            for cm in &host.container_mounts {
                if cm.fstype == "cgroup" && cm.mount_point.parent() == Some(dest.as_path()) {
                    let key = cm.mount_point.display();
                    push(format!("mnt[{key}]:{key}"));
                }
            }
        }
    }
    for masked in &host.masked_files {
        match host.naming {
            ExternalNaming::Runc => push(format!("mnt[{masked}]:/dev/null")),
            ExternalNaming::Crun => push(format!("mnt[{masked}]:{masked}")),
        }
    }
    if host.naming == ExternalNaming::Crun {
        // crun ≥ 1.24 masks directories with a bind of one shared empty
        // directory, `<root>/.empty-directory`, instead of a tmpfs each; its
        // restore maps that name back, so the dump must use it (crun's
        // register_masked_paths_mounts). Older crun mounts tmpfs, which CRIU
        // dumps itself: no external then.
        let empty_dir = host.runtime_root.join(CRUN_EMPTY_DIR);
        for masked in &spec.masked_paths {
            let bound = host
                .container_mounts
                .iter()
                .any(|m| m.mount_point == Path::new(masked) && m.root.file_name() == Some(CRUN_EMPTY_DIR.as_ref()));
            if bound {
                push(format!("mnt[{masked}]:{}", empty_dir.display()));
            }
        }
    }
    let mut devices: Vec<PathBuf> = spec.device_paths.clone();
    if host.naming == ExternalNaming::Runc {
        devices.extend(RUNC_DEFAULT_DEVICES.iter().map(PathBuf::from));
    }
    for d in devices {
        let d = clean(&d);
        push(format!("mnt[{}]:{}", d.display(), d.display()));
    }
    if let Some(ino) = host.joined_netns_inode {
        push(format!("net[{ino}]:extRootNetNS"));
    }
    if let Some(ino) = host.joined_pidns_inode {
        push(format!("pid[{ino}]:extRootPidNS"));
    }
    out
}

/// Lexically cleans an absolute container path (`/a/./b/../c` → `/a/c`),
/// never going above `/`.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn fd_ref(p: &ProcessInfo, fd: i32, target: &str) -> FdRef {
    FdRef {
        pid: p.pid,
        comm: p.comm.clone(),
        fd,
        target: target.to_string(),
    }
}

/// `1536 MiB`-style sizes for messages.
pub fn human_bytes(b: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
#[path = "dump_tests.rs"]
mod tests;
