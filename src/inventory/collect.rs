//! Finds a container's processes under a proc root and describes each one.
//!
//! Which processes: when the container's init lives in a pid namespace of
//! its own (the usual case), every process whose `ns/pid` link equals
//! init's; when it shares ckpt's pid namespace (e.g. `--pid=host`), init
//! and its descendants by `ppid`. Processes that exit during the scan are
//! skipped; only a missing init is an error.
//!
//! The per-process facts come from `fds.rs`, `sockets.rs` and `memory.rs`;
//! this file adds what needs the whole container: whether a pipe or a unix
//! socket has its other end in a process outside of it.

use super::fds::{parse_mount_ids, read_fds};
use super::memory::read_memory;
use super::sockets::SocketTable;
use super::unix_diag::unix_peers;
use super::{FdKind, Inventory, InventoryError, ProcessInfo};
use crate::procfs::{ProcRoot, Process};
use log::debug;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::rc::Rc;

/// Collects the inventory of every process in the pid namespace of
/// `init_pid` (or, when that is the host's own pid namespace, of `init_pid`
/// and its descendants), reading only under `proc`.
///
/// Fails with [`InventoryError::NoSuchProcess`] when init is gone.
pub fn collect(proc: &ProcRoot, init_pid: i32) -> Result<Inventory, InventoryError> {
    let pids = select_processes(proc, init_pid)?;
    let mut tables = SocketTables::default();
    let mut processes = Vec::with_capacity(pids.len());
    for pid in pids {
        match read_process(proc, pid, &mut tables) {
            Ok(process) => processes.push(process),
            Err(err) if err.is_vanished() && pid == init_pid => return Err(no_such_process(proc, init_pid)),
            Err(err) if err.is_vanished() => {
                debug!("process {pid} exited during the inventory; skipped")
            }
            Err(err) => return Err(err),
        }
    }
    fill_pipe_peers(proc, &mut processes);
    fill_unix_peers(proc, &mut processes);
    Ok(Inventory { processes })
}

fn no_such_process(proc: &ProcRoot, pid: i32) -> InventoryError {
    InventoryError::NoSuchProcess {
        pid,
        proc_root: proc.path().to_path_buf(),
    }
}

/// The host pids of the container: init first, then ascending.
fn select_processes(proc: &ProcRoot, init_pid: i32) -> Result<Vec<i32>, InventoryError> {
    let init_ns = match proc.process(init_pid).ns("pid") {
        Ok(ns) => ns,
        Err(err) if err.is_vanished() => return Err(no_such_process(proc, init_pid)),
        Err(err) => return Err(err.into()),
    };
    // A fixture tree has no `self`: treat it as another namespace.
    let own_ns = proc.own().ns("pid").ok();
    let all = proc.pids()?;
    let mut members = if own_ns.as_deref() == Some(init_ns.as_str()) {
        descendants(proc, init_pid, &all)
    } else {
        same_pid_ns(proc, &init_ns, &all)
    };
    members.retain(|&pid| pid != init_pid);
    members.sort_unstable();
    members.insert(0, init_pid);
    Ok(members)
}

/// Pids whose `ns/pid` link is `ns`. Unreadable links (a process that just
/// exited, or one we may not inspect) are left out.
fn same_pid_ns(proc: &ProcRoot, ns: &str, all: &[i32]) -> Vec<i32> {
    all.iter()
        .copied()
        .filter(|&pid| match proc.process(pid).ns("pid") {
            Ok(link) => link == ns,
            Err(err) => {
                debug!("{err}; not counted in the container");
                false
            }
        })
        .collect()
}

/// `init_pid` and every process below it, by the `ppid` in `stat`.
fn descendants(proc: &ProcRoot, init_pid: i32, all: &[i32]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for &pid in all {
        if let Ok(stat) = proc.process(pid).stat() {
            children.entry(stat.ppid).or_default().push(pid);
        }
    }
    let mut found = vec![init_pid];
    let mut seen = HashSet::from([init_pid]);
    let mut next = 0;
    while let Some(&pid) = found.get(next) {
        next += 1;
        for &child in children.get(&pid).into_iter().flatten() {
            // `seen` guards against a pid reused while we read, which could
            // otherwise make a cycle.
            if seen.insert(child) {
                found.push(child);
            }
        }
    }
    found
}

/// Socket tables cached per network namespace: the processes of a
/// container usually share one, and reading it is the costly part.
#[derive(Default)]
struct SocketTables {
    by_netns: HashMap<String, Rc<SocketTable>>,
}

impl SocketTables {
    fn for_process(&mut self, process: &Process) -> Result<Rc<SocketTable>, InventoryError> {
        // Without a readable ns/net link (fixtures), read the process's own
        // tables and do not cache them.
        let Ok(netns) = process.ns("net") else {
            return Ok(Rc::new(SocketTable::read(process)?));
        };
        if let Some(table) = self.by_netns.get(&netns) {
            return Ok(Rc::clone(table));
        }
        let table = Rc::new(SocketTable::read(process)?);
        self.by_netns.insert(netns, Rc::clone(&table));
        Ok(table)
    }
}

/// One process. A zombie (an exited child not reaped yet, which is normal)
/// has only `stat`, `status` and `comm` left: its `mountinfo` reads EINVAL,
/// its `fd/` is empty and `smaps_rollup` reads ESRCH. It is listed as a
/// zombie, which CRIU dumps as one, instead of failing the inventory; a
/// process that turns into one while it is read is re-read as one.
fn read_process(proc: &ProcRoot, pid: i32, tables: &mut SocketTables) -> Result<ProcessInfo, InventoryError> {
    let process = proc.process(pid);
    let stat = process.stat()?;
    let ns_pid = process.ns_pid()?;
    let comm = match process.comm()? {
        Some(comm) => comm,
        None => stat.comm.clone(),
    };
    let zombie = ProcessInfo {
        pid,
        ns_pid,
        ppid: stat.ppid,
        comm,
        zombie: true,
        ..ProcessInfo::default()
    };
    if stat.is_dead() {
        return Ok(zombie);
    }
    match read_live(proc, &process, zombie.clone(), tables) {
        Ok(info) => Ok(info),
        Err(err) => match process.stat() {
            Ok(now) if now.is_dead() => Ok(zombie),
            _ => Err(err),
        },
    }
}

/// The rest of a process that has not exited: command line, fds, memory.
fn read_live(
    proc: &ProcRoot,
    process: &Process,
    base: ProcessInfo,
    tables: &mut SocketTables,
) -> Result<ProcessInfo, InventoryError> {
    let cmdline = process.cmdline()?;
    let mount_ids = parse_mount_ids(&process.mountinfo()?);
    let mut fds = read_fds(process, &mount_ids, &proc.own())?;
    if fds.iter().any(|fd| matches!(fd.kind, FdKind::OtherSocket { .. })) {
        let table = tables.for_process(process)?;
        for fd in &mut fds {
            if let FdKind::OtherSocket { inode } = fd.kind {
                fd.kind = table.kind_of(inode);
            }
        }
    }
    let memory = read_memory(process)?;
    Ok(ProcessInfo {
        cmdline,
        fds,
        memory,
        zombie: false,
        ..base
    })
}

/// Marks pipes that some process outside the container also holds.
fn fill_pipe_peers(proc: &ProcRoot, processes: &mut [ProcessInfo]) {
    let has_pipes = processes
        .iter()
        .flat_map(|p| &p.fds)
        .any(|fd| matches!(fd.kind, FdKind::Pipe { .. }));
    if !has_pipes {
        return;
    }
    let members: BTreeSet<i32> = processes.iter().map(|p| p.pid).collect();
    let holders = pipe_holders(proc);
    for fd in processes.iter_mut().flat_map(|p| &mut p.fds) {
        if let FdKind::Pipe { inode, peer_outside } = &mut fd.kind {
            *peer_outside = holders
                .get(inode)
                .is_some_and(|pids| pids.iter().any(|pid| !members.contains(pid)));
        }
    }
}

/// Pipe inode → pids holding it, over every process under `proc`.
/// Processes we cannot read (exited, or not ours) are left out: a peer
/// there is missed rather than failing the whole inventory.
fn pipe_holders(proc: &ProcRoot) -> HashMap<u64, BTreeSet<i32>> {
    let mut holders: HashMap<u64, BTreeSet<i32>> = HashMap::new();
    let Ok(pids) = proc.pids() else {
        return holders;
    };
    for pid in pids {
        let process = proc.process(pid);
        let Ok(fds) = process.fds() else {
            continue;
        };
        for fd in fds {
            let Ok(target) = process.fd_target(fd) else {
                continue;
            };
            let inode = target
                .strip_prefix("pipe:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|n| n.parse().ok());
            if let Some(inode) = inode {
                holders.entry(inode).or_default().insert(pid);
            }
        }
    }
    holders
}

/// Sets `peer_outside` of every unix socket: `Some(false)` when it has no
/// peer; for connected ones, whether the peer's inode is held by no
/// process of the container, or `None` when the kernel could not tell us.
fn fill_unix_peers(proc: &ProcRoot, processes: &mut [ProcessInfo]) {
    let held: HashSet<u64> = processes
        .iter()
        .flat_map(|p| &p.fds)
        .filter_map(|fd| match fd.kind {
            FdKind::UnixSocket { inode, .. } => Some(inode),
            _ => None,
        })
        .collect();
    // One sock_diag dump per network namespace; `None` = dump failed.
    let mut dumps: HashMap<String, Option<Rc<HashMap<u64, u64>>>> = HashMap::new();
    let own_ns_net = proc.own_thread().ns_path("net");
    for process in processes.iter_mut() {
        let ns_net = proc.process(process.pid).ns_path("net");
        let mut peers: Option<Option<Rc<HashMap<u64, u64>>>> = None;
        for fd in &mut process.fds {
            let FdKind::UnixSocket {
                inode,
                connected,
                peer_outside,
                ..
            } = &mut fd.kind
            else {
                continue;
            };
            if !*connected {
                *peer_outside = Some(false);
                continue;
            }
            let dump = peers.get_or_insert_with(|| {
                let key = proc
                    .process(process.pid)
                    .ns("net")
                    .unwrap_or_else(|_| ns_net.display().to_string());
                dumps
                    .entry(key)
                    .or_insert_with(|| match unix_peers(&ns_net, &own_ns_net) {
                        Ok(map) => Some(Rc::new(map)),
                        Err(err) => {
                            debug!("cannot list unix socket peers via {}: {err}", ns_net.display());
                            None
                        }
                    })
                    .clone()
            });
            *peer_outside = dump
                .as_ref()
                .and_then(|map| map.get(inode))
                .map(|peer| !held.contains(peer));
        }
    }
}
