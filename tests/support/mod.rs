//! Helpers shared by the fault-injection (`faults`) and bad-input
//! (`hostile`) tests, on top of `tests/common`: finding processes by name,
//! parent and command line (to SIGKILL criu at a chosen moment), watching a
//! staging directory, mounting small or read-only filesystems to use as a
//! store, and checking that a failed command left nothing behind.
//!
//! Kept apart from `tests/common` so that the e2e harness stays as it is;
//! nothing here runs ckpt except [`verify_ok`].
#![allow(dead_code)] // each test file uses a different part

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{dir_entries, expect_code, Store};

/// One live process as `/proc/<pid>/stat` and `cmdline` describe it.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub comm: String,
    pub state: String,
    pub cmdline: Vec<String>,
}

/// Every live (not zombie) process.
pub fn processes() -> Vec<Proc> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(process)
        .collect()
}

/// The process `pid`, None if gone or a zombie.
pub fn process(pid: i32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let comm = stat[open + 1..close].to_owned();
    let mut rest = stat[close + 1..].split_whitespace();
    let state = rest.next()?.to_owned();
    let ppid = rest.next()?.parse().ok()?;
    if matches!(state.as_str(), "Z" | "X") {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(Proc {
        pid,
        ppid,
        comm,
        state,
        cmdline,
    })
}

/// Live processes called `comm` whose parent is `parent`, from the
/// kernel's `/proc/<pid>/task/<tid>/children` lists: much faster than a
/// scan of `/proc`, which matters when polling for a moment that lasts
/// 100 ms on a busy host.
pub fn children(parent: i32, comm: &str) -> Vec<Proc> {
    child_pids(parent)
        .into_iter()
        .filter_map(process)
        .filter(|p| p.comm == comm)
        .collect()
}

/// The pids `/proc/<parent>/task/*/children` lists.
fn child_pids(parent: i32) -> Vec<i32> {
    dir_entries(Path::new(&format!("/proc/{parent}/task")))
        .iter()
        .filter_map(|t| fs::read_to_string(t.join("children")).ok())
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Every process below `pid`, children before grandchildren.
pub fn descendants(pid: i32) -> Vec<Proc> {
    let mut found: Vec<Proc> = Vec::new();
    let mut next = 0;
    let mut parents = vec![pid];
    while next < parents.len() {
        let kids: Vec<Proc> = child_pids(parents[next]).into_iter().filter_map(process).collect();
        parents.extend(kids.iter().map(|k| k.pid));
        found.extend(kids);
        next += 1;
    }
    found
}

/// SIGKILLs CRIU `criu` and every `criu` process it forked, as a crash of
/// CRIU would end them. Early in a dump or a restore CRIU (4.1 and 4.2) forks
/// helpers (`criu swrk 3` too); killing only the parent left such a
/// helper asleep with runc's socket open, and runc, ckpt and the test
/// waited for it forever. For a dump every forked `criu` is CRIU's own;
/// in a restore only early (later they are the restored tasks).
pub fn sigkill_criu_tree(criu: &Proc) -> bool {
    let helpers: Vec<i32> = descendants(criu.pid)
        .into_iter()
        .filter(|p| p.comm == "criu")
        .map(|p| p.pid)
        .collect();
    let sigkill =
        |pid: i32| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).is_ok();
    let killed = sigkill(criu.pid);
    for pid in helpers {
        sigkill(pid);
    }
    killed
}

/// The `criu dump` child of the ckpt process `ckpt_pid`, if running
/// (`criu --version` and other short helpers are not it).
pub fn criu_dump_child(ckpt_pid: u32) -> Option<Proc> {
    children(ckpt_pid as i32, "criu")
        .into_iter()
        .find(|p| p.cmdline.get(1).is_some_and(|a| a == "dump"))
}

/// The `criu swrk` doing the restore under `runc restore`, itself a child
/// of the ckpt process `ckpt_pid`. CRIU retitles itself once the restore
/// request arrives (`criu swrk 3` becomes the single argument `criu:
/// restore --rpc -D <images>`), so both spellings count.
pub fn criu_restore_child(ckpt_pid: u32) -> Option<Proc> {
    children(ckpt_pid as i32, "runc").into_iter().find_map(|runc| {
        children(runc.pid, "criu")
            .into_iter()
            .find(|p| p.cmdline.iter().any(|a| a == "swrk" || a.starts_with("criu: restore")))
    })
}

/// Live `criu` processes whose command line mentions `needle` (e.g. a
/// store path): orphans a killed ckpt may leave behind.
pub fn criu_processes_mentioning(needle: &str) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.comm == "criu" && p.cmdline.iter().any(|a| a.contains(needle)))
        .collect()
}

/// Processes running the ckpt binary under test, relays excluded.
pub fn ckpt_processes() -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| is_ckpt_binary(p.pid) && p.cmdline.get(1).is_none_or(|a| a != "__relay"))
        .collect()
}

/// `ckpt __relay` processes appending to a file under `store`.
pub fn relays_of(store: &Path) -> Vec<Proc> {
    let s = store.display().to_string();
    processes()
        .into_iter()
        .filter(|p| p.cmdline.get(1).is_some_and(|a| a == "__relay"))
        .filter(|p| p.cmdline.iter().any(|a| a.starts_with(&s)))
        .collect()
}

fn is_ckpt_binary(pid: i32) -> bool {
    let want = fs::canonicalize(crate::common::CKPT).ok();
    fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .is_some_and(|exe| Some(exe) == want)
}

/// Number of open fds of `pid`.
pub fn fd_count(pid: i32) -> usize {
    dir_entries(Path::new(&format!("/proc/{pid}/fd"))).len()
}

/// The single staging dir of a create in progress
/// (`<store>/<id>/.ckpt-staging/<name>.<pid>.<nonce>/`), if there is one.
pub fn staging_of(store: &Store, container: &str, name: &str) -> Option<PathBuf> {
    dir_entries(&store.staging_dir(container)).into_iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with(&format!("{name}.")))
    })
}

/// Size of the largest `pages-*.img` in `dir`, None if there is none yet.
pub fn pages_size(dir: &Path) -> Option<u64> {
    dir_entries(dir)
        .iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("pages-") && n.ends_with(".img"))
        })
        .filter_map(|p| fs::metadata(p).ok().map(|m| m.len()))
        .max()
}

/// Every path under `dir` (recursively, not following symlinks).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in dir_entries(dir) {
        let is_dir = fs::symlink_metadata(&p).map(|m| m.is_dir()).unwrap_or(false);
        out.push(p.clone());
        if is_dir {
            out.extend(walk(&p));
        }
    }
    out.sort();
    out
}

/// A snapshot of a directory tree: (path, mode, size) of every entry.
pub fn tree_snapshot(dir: &Path) -> Vec<(PathBuf, u32, u64)> {
    walk(dir)
        .into_iter()
        .filter_map(|p| {
            let m = fs::symlink_metadata(&p).ok()?;
            Some((p, m.permissions().mode(), if m.is_dir() { 0 } else { m.len() }))
        })
        .collect()
}

/// Asserts `ckpt verify CONTAINER NAME` exits 0.
pub fn verify_ok(store: &Store, container: &str, name: &str) {
    expect_code(
        &store.ckpt(["verify", container, name]),
        0,
        &format!("ckpt verify {container} {name}"),
    );
}

/// `ckpt --store STORE -v ARGS…` run to completion, for stores that are not
/// a [`Store`] tempdir (a mount, a symlink).
pub fn ckpt_in(store: &Path, args: &[&str]) -> std::process::Output {
    Command::new(crate::common::CKPT)
        .env_remove("CKPT_STORE")
        .arg("--store")
        .arg(store)
        .arg("-v")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run the ckpt binary")
}

/// A filesystem mounted on a fresh directory for the test and lazily
/// unmounted (then removed) on drop.
pub struct Mount {
    dir: tempfile::TempDir,
}

impl Mount {
    /// A tmpfs of `size` (e.g. `"24m"`), root dir mode 0700.
    pub fn tmpfs(size: &str) -> Mount {
        Mount::tmpfs_opts(&format!("size={size},mode=0700"))
    }

    /// A tmpfs mounted with `opts` (`-o`).
    pub fn tmpfs_opts(opts: &str) -> Mount {
        let dir = tempfile::Builder::new()
            .prefix("ckpt-mnt-")
            .tempdir()
            .expect("mount point");
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "ckpt-test"])
            .arg(dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs -o {opts} failed");
        Mount { dir }
    }

    /// Remounts read-only.
    pub fn make_read_only(&self) {
        let st = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(self.dir.path())
            .status()
            .expect("run mount");
        assert!(st.success(), "remount ro failed");
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

/// Mount points in the host's mountinfo under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = format!("{}/", dir.display());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_owned))
        .filter(|m| m.starts_with(&prefix))
        .collect()
}

/// On drop, lazily unmounts whatever ckpt or CRIU left mounted under a
/// directory, deepest first, so that a test that found such a leak does
/// not also leave it on the host.
pub struct UnmountUnder(pub PathBuf);

impl Drop for UnmountUnder {
    fn drop(&mut self) {
        let mut mounts = mounts_under(&self.0);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
    }
}

/// Pids in the cgroup v1 freezer cgroup runc gives a container `id` (a
/// `runc spec` bundle has no cgroupsPath, so runc uses `/<id>`).
pub fn cgroup_pids(id: &str) -> Vec<i32> {
    fs::read_to_string(format!("/sys/fs/cgroup/freezer/{id}/cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// On drop, SIGKILLs every process left in container `id`'s cgroup (a
/// restore that failed half-way can leave the restored tree running
/// outside runc, where the container's own drop cannot reach it).
pub struct KillCgroup(pub String);

impl Drop for KillCgroup {
    fn drop(&mut self) {
        let pids = cgroup_pids(&self.0);
        for &pid in &pids {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        if !pids.is_empty() {
            std::thread::sleep(Duration::from_millis(300));
            // runc no longer knows the container: remove its empty cgroups.
            for c in dir_entries(Path::new("/sys/fs/cgroup")) {
                let _ = fs::remove_dir(c.join(&self.0));
            }
        }
    }
}

/// Lines of the host's mountinfo that mention `needle`.
pub fn mount_lines_mentioning(needle: &str) -> usize {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .count()
}

/// Polls `f` every `every` until it returns Some; None after `timeout`.
pub fn poll<T>(timeout: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A manifest of a directory tree: for every entry below `root` (not
/// following symlinks), its type, mode, and the BLAKE3 digest of its
/// contents (a symlink's target). Entries named in `volatile` (relative
/// paths, e.g. the counter's `tmp/count`) keep their type and mode but not
/// their contents, which a running workload rewrites.
pub fn manifest(root: &Path, volatile: &[&str]) -> std::collections::BTreeMap<PathBuf, String> {
    walk(root)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let m = fs::symlink_metadata(&p).expect("stat a manifest entry");
            let kind = m.file_type();
            let what = if kind.is_symlink() {
                format!("link -> {}", fs::read_link(&p).unwrap().display())
            } else if kind.is_dir() {
                "dir".to_owned()
            } else if volatile.iter().any(|v| rel == Path::new(v)) {
                "file (volatile)".to_owned()
            } else if kind.is_file() {
                format!(
                    "file {}",
                    blake3::hash(&fs::read(&p).expect("read a manifest file")).to_hex()
                )
            } else {
                "other".to_owned()
            };
            (rel, format!("{:o} {what}", m.permissions().mode()))
        })
        .collect()
}

/// Asserts that `root` still matches `before` (see [`manifest`]), naming
/// every entry missing, changed or added.
pub fn assert_manifest(
    root: &Path,
    before: &std::collections::BTreeMap<PathBuf, String>,
    volatile: &[&str],
    what: &str,
) {
    let now = manifest(root, volatile);
    let missing: Vec<_> = before.keys().filter(|k| !now.contains_key(*k)).collect();
    let changed: Vec<_> = before
        .iter()
        .filter(|(k, v)| now.get(*k).is_some_and(|n| n != *v))
        .map(|(k, _)| k)
        .collect();
    let added: Vec<_> = now.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && changed.is_empty() && added.is_empty(),
        "{what}: the root filesystem {} is no longer what it was ({} entries before, {} now): \
         missing {missing:?}, changed {changed:?}, added {added:?}",
        root.display(),
        before.len(),
        now.len()
    );
}

/// Live `runc` processes whose command line mentions `needle` (e.g. a
/// container id): orphans a killed ckpt may leave behind.
pub fn runc_processes_mentioning(needle: &str) -> Vec<Proc> {
    processes()
        .into_iter()
        .filter(|p| p.comm == "runc" && p.cmdline.iter().any(|a| a.contains(needle)))
        .collect()
}
