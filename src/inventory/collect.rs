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
use super::proc_files::{numeric_entries, read_link_text, read_optional_text, read_text};
use super::sockets::SocketTable;
use super::unix_diag::unix_peers;
use super::{FdKind, Inventory, InventoryError, ProcessInfo};
use log::debug;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// Collects the inventory of every process in the pid namespace of
/// `init_pid` (or, when that is the host's own pid namespace, of `init_pid`
/// and its descendants), reading only under `proc_root`.
///
/// Fails with [`InventoryError::NoSuchProcess`] when init is gone.
pub fn collect(proc_root: &Path, init_pid: i32) -> Result<Inventory, InventoryError> {
    let pids = select_processes(proc_root, init_pid)?;
    let mut tables = SocketTables::default();
    let mut processes = Vec::with_capacity(pids.len());
    for pid in pids {
        match read_process(proc_root, pid, &mut tables) {
            Ok(process) => processes.push(process),
            Err(err) if err.is_vanished() && pid == init_pid => return Err(no_such_process(proc_root, init_pid)),
            Err(err) if err.is_vanished() => {
                debug!("process {pid} exited during the inventory; skipped")
            }
            Err(err) => return Err(err),
        }
    }
    fill_pipe_peers(proc_root, &mut processes);
    fill_unix_peers(proc_root, &mut processes);
    Ok(Inventory { processes })
}

fn no_such_process(proc_root: &Path, pid: i32) -> InventoryError {
    InventoryError::NoSuchProcess {
        pid,
        proc_root: proc_root.to_path_buf(),
    }
}

/// The host pids of the container: init first, then ascending.
fn select_processes(proc_root: &Path, init_pid: i32) -> Result<Vec<i32>, InventoryError> {
    let init_ns = match read_link_text(&proc_root.join(init_pid.to_string()).join("ns/pid")) {
        Ok(ns) => ns,
        Err(err) if err.is_vanished() => return Err(no_such_process(proc_root, init_pid)),
        Err(err) => return Err(err),
    };
    // A fixture tree has no `self`: treat it as another namespace.
    let own_ns = read_link_text(&proc_root.join("self/ns/pid")).ok();
    let all = numeric_entries(proc_root)?;
    let mut members = if own_ns.as_deref() == Some(init_ns.as_str()) {
        descendants(proc_root, init_pid, &all)
    } else {
        same_pid_ns(proc_root, &init_ns, &all)
    };
    members.retain(|&pid| pid != init_pid);
    members.sort_unstable();
    members.insert(0, init_pid);
    Ok(members)
}

/// Pids whose `ns/pid` link is `ns`. Unreadable links (a process that just
/// exited, or one we may not inspect) are left out.
fn same_pid_ns(proc_root: &Path, ns: &str, all: &[i32]) -> Vec<i32> {
    all.iter()
        .copied()
        .filter(
            |pid| match read_link_text(&proc_root.join(pid.to_string()).join("ns/pid")) {
                Ok(link) => link == ns,
                Err(err) => {
                    debug!("{err}; not counted in the container");
                    false
                }
            },
        )
        .collect()
}

/// `init_pid` and every process below it, by the `ppid` in `stat`.
fn descendants(proc_root: &Path, init_pid: i32, all: &[i32]) -> Vec<i32> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for &pid in all {
        let Ok(stat) = read_text(&proc_root.join(pid.to_string()).join("stat")) else {
            continue;
        };
        if let Some(stat) = parse_stat(&stat) {
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
    fn for_process(&mut self, pid_dir: &Path) -> Result<Rc<SocketTable>, InventoryError> {
        // Without a readable ns/net link (fixtures), read the process's own
        // tables and do not cache them.
        let Ok(netns) = read_link_text(&pid_dir.join("ns/net")) else {
            return Ok(Rc::new(SocketTable::read(pid_dir)?));
        };
        if let Some(table) = self.by_netns.get(&netns) {
            return Ok(Rc::clone(table));
        }
        let table = Rc::new(SocketTable::read(pid_dir)?);
        self.by_netns.insert(netns, Rc::clone(&table));
        Ok(table)
    }
}

/// One process. A zombie (an exited child not reaped yet, which is normal)
/// has only `stat`, `status` and `comm` left: its `mountinfo` reads EINVAL,
/// its `fd/` is empty and `smaps_rollup` reads ESRCH. It is listed as a
/// zombie, which CRIU dumps as one, instead of failing the inventory; a
/// process that turns into one while it is read is re-read as one.
fn read_process(proc_root: &Path, pid: i32, tables: &mut SocketTables) -> Result<ProcessInfo, InventoryError> {
    let dir = proc_root.join(pid.to_string());
    let stat = read_stat(&dir)?;
    let ns_pid = parse_ns_pid(&read_text(&dir.join("status"))?);
    let comm = match read_optional_text(&dir.join("comm"))? {
        Some(comm) => comm.trim_end_matches('\n').to_string(),
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
    if stat.is_zombie() {
        return Ok(zombie);
    }
    match read_live(&dir, zombie.clone(), tables) {
        Ok(process) => Ok(process),
        Err(err) => match read_stat(&dir) {
            Ok(now) if now.is_zombie() => Ok(zombie),
            _ => Err(err),
        },
    }
}

/// `stat` parsed, or an error naming it.
fn read_stat(dir: &Path) -> Result<Stat, InventoryError> {
    let path = dir.join("stat");
    parse_stat(&read_text(&path)?).ok_or_else(|| InventoryError::Parse {
        path,
        reason: "no `(comm) state ppid` fields".into(),
    })
}

/// The rest of a process that has not exited: command line, fds, memory.
fn read_live(dir: &Path, base: ProcessInfo, tables: &mut SocketTables) -> Result<ProcessInfo, InventoryError> {
    let cmdline = parse_cmdline(&read_text(&dir.join("cmdline"))?);
    let mount_ids = parse_mount_ids(&read_text(&dir.join("mountinfo"))?);
    // `dir` is `<proc_root>/<pid>`; ckpt's own entry is `<proc_root>/self`.
    let own_dir = dir.parent().unwrap_or(dir).join("self");
    let mut fds = read_fds(dir, &mount_ids, &own_dir)?;
    if fds.iter().any(|fd| matches!(fd.kind, FdKind::OtherSocket { .. })) {
        let table = tables.for_process(dir)?;
        for fd in &mut fds {
            if let FdKind::OtherSocket { inode } = fd.kind {
                fd.kind = table.kind_of(inode);
            }
        }
    }
    let memory = read_memory(dir)?;
    Ok(ProcessInfo {
        cmdline,
        fds,
        memory,
        zombie: false,
        ..base
    })
}

/// The fields of `stat` the inventory uses.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    comm: String,
    state: char,
    ppid: i32,
}

impl Stat {
    /// `Z` (zombie) or `X` (dead, being reaped): nothing left to read.
    fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }
}

/// `pid (comm) state ppid ...`. The comm may itself contain spaces and
/// parentheses, so it ends at the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let mut rest = text.get(close + 1..)?.split_whitespace();
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some(Stat { comm, state, ppid })
}

/// The innermost pid from `NSpid:` (the pid as the container sees it);
/// `None` on kernels before 4.1, which do not print the line.
fn parse_ns_pid(status: &str) -> Option<i32> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

/// `cmdline` is NUL-separated, usually with a trailing NUL.
fn parse_cmdline(text: &str) -> Vec<String> {
    let text = text.strip_suffix('\0').unwrap_or(text);
    if text.is_empty() {
        return Vec::new();
    }
    text.split('\0').map(str::to_string).collect()
}

/// Marks pipes that some process outside the container also holds.
fn fill_pipe_peers(proc_root: &Path, processes: &mut [ProcessInfo]) {
    let has_pipes = processes
        .iter()
        .flat_map(|p| &p.fds)
        .any(|fd| matches!(fd.kind, FdKind::Pipe { .. }));
    if !has_pipes {
        return;
    }
    let members: BTreeSet<i32> = processes.iter().map(|p| p.pid).collect();
    let holders = pipe_holders(proc_root);
    for fd in processes.iter_mut().flat_map(|p| &mut p.fds) {
        if let FdKind::Pipe { inode, peer_outside } = &mut fd.kind {
            *peer_outside = holders
                .get(inode)
                .is_some_and(|pids| pids.iter().any(|pid| !members.contains(pid)));
        }
    }
}

/// Pipe inode → pids holding it, over every process under `proc_root`.
/// Processes we cannot read (exited, or not ours) are left out: a peer
/// there is missed rather than failing the whole inventory.
fn pipe_holders(proc_root: &Path) -> HashMap<u64, BTreeSet<i32>> {
    let mut holders: HashMap<u64, BTreeSet<i32>> = HashMap::new();
    let Ok(pids) = numeric_entries(proc_root) else {
        return holders;
    };
    for pid in pids {
        let fd_dir = proc_root.join(pid.to_string()).join("fd");
        let Ok(fds) = numeric_entries(&fd_dir) else {
            continue;
        };
        for fd in fds {
            let Ok(target) = read_link_text(&fd_dir.join(fd.to_string())) else {
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
fn fill_unix_peers(proc_root: &Path, processes: &mut [ProcessInfo]) {
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
    let own_ns_net = proc_root.join("thread-self/ns/net");
    for process in processes.iter_mut() {
        let ns_net = proc_root.join(process.pid.to_string()).join("ns/net");
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
                let key = read_link_text(&ns_net).unwrap_or_else(|_| ns_net.display().to_string());
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_comm_may_hold_parens_and_spaces() {
        let stat = "1234 (my (weird) app) S 99 1234 1234 0 -1 4194560 100 0 0 0";
        assert_eq!(
            parse_stat(stat),
            Some(Stat {
                comm: "my (weird) app".to_string(),
                state: 'S',
                ppid: 99
            })
        );
        assert!(parse_stat("7 (sh) Z 6 7").unwrap().is_zombie());
        assert!(!parse_stat("7 (sh) t 6 7").unwrap().is_zombie());
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn ns_pid_is_the_innermost() {
        assert_eq!(parse_ns_pid("Name:\tsh\nNSpid:\t4321\t7\t1\n"), Some(1));
        assert_eq!(parse_ns_pid("Name:\tsh\n"), None);
    }

    #[test]
    fn cmdline_is_nul_split() {
        assert_eq!(parse_cmdline("sh\0-c\0echo hi\0"), vec!["sh", "-c", "echo hi"]);
        assert!(parse_cmdline("").is_empty());
    }
}
