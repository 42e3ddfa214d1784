//! Undoing a failed, killed or interrupted restore completely. When CRIU
//! or the runtime dies part-way through a `runc restore`, runc forgets the
//! container, but CRIU may already have restored processes into the
//! container's cgroups, and both leave mounts behind: runc its bind mount
//! of the rootfs at `<runc-root>/<id>/criu-root` (crun at
//! `<bundle>/criu-root`), CRIU its cgroup yard (`.criu.cgyard.*`) under
//! the work directory. [`undo_restore`] kills what runs, unmounts what is
//! mounted, and only then lets the runtime delete its state, so that a
//! failed start leaves nothing running, nothing mounted, and the rootfs
//! exactly as it was; it checks the rootfs afterwards.
//!
//! It must never delete through a mount (see [`crate::mounts`]) nor kill a
//! process that is not the container's or a CRIU working for its restore.

use crate::cgroups::{parse_proc_cgroup, Membership};
use crate::engine::oci::runtime::{Runtime, RuntimeError};
use crate::engine::RuntimeKind;
use crate::mountinfo::{self, Mount};
use crate::mounts::{self, MountError};
use crate::procfs::ProcRoot;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors of undoing a restore.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("cannot remove the runtime's state of the container")]
    Delete(#[source] RuntimeError),
    #[error("cannot unmount what the restore left")]
    Mounts(#[source] MountError),
    #[error(
        "the root filesystem {rootfs} lost {lost:?} while ckpt cleaned up after a restore; \
         this must never happen: please report it, and restore {rootfs} from a backup"
    )]
    RootfsChanged { rootfs: PathBuf, lost: Vec<OsString> },
}

/// Where a restore of a container ran, for [`undo_restore`].
#[derive(Debug, Clone, Copy)]
pub struct RestoreSite<'a> {
    pub runtime: &'a Runtime,
    pub id: &'a str,
    pub bundle: &'a Path,
    /// The restore's work directory, or the staging root that holds the
    /// work directories of earlier restores of this id.
    pub work_area: &'a Path,
    pub proc: &'a ProcRoot,
}

/// Removes every trace of a restore of `site.id` that did not complete,
/// or that is being undone: kills the CRIU still working in the work area
/// and everything in the container's cgroups, unmounts what CRIU and the
/// runtime left, has the runtime delete its state (which refuses while a
/// mount is below it), and checks that the rootfs lost nothing.
pub fn undo_restore(site: &RestoreSite) -> Result<(), CleanupError> {
    let spec = read_spec(site.bundle);
    let rootfs = spec.as_ref().and_then(|s| rootfs_path(site.bundle, s));
    let before = rootfs.as_deref().and_then(top_level);
    // CRIU first: alive, it could mount or restore more while we clean.
    kill_criu_working_in(site.proc, site.work_area);
    let mountinfo = site.proc.own_mountinfo();
    let mountinfo = mountinfo.as_path();
    mounts::detach_below(mountinfo, site.work_area).map_err(CleanupError::Mounts)?;
    if site.runtime.kind == RuntimeKind::Crun {
        // crun mounts the rootfs at <bundle>/criu-root and refuses to
        // restore while that directory exists.
        let criu_root = site.bundle.join("criu-root");
        mounts::detach_at(mountinfo, &criu_root).map_err(CleanupError::Mounts)?;
        let _ = std::fs::remove_dir(&criu_root);
    }
    site.runtime.delete(site.id).map_err(CleanupError::Delete)?;
    let cgroups_path = spec.as_ref().and_then(crate::spec::cgroups_path);
    kill_restored_leftovers(site.proc, site.id, cgroups_path);
    if let (Some(rootfs), Some(before)) = (rootfs, before) {
        let lost = lost_entries(&before, &top_level(&rootfs).unwrap_or_default());
        if !lost.is_empty() {
            return Err(CleanupError::RootfsChanged { rootfs, lost });
        }
    }
    Ok(())
}

fn read_spec(bundle: &Path) -> Option<serde_json::Value> {
    crate::spec::read_raw(&bundle.join("config.json")).ok().flatten()
}

/// PURE: the rootfs a bundle's spec names (`root.path`, relative to the
/// bundle unless absolute).
pub fn rootfs_path(bundle: &Path, spec: &serde_json::Value) -> Option<PathBuf> {
    let p = Path::new(crate::spec::root_path(spec)?);
    Some(if p.is_absolute() {
        p.to_path_buf()
    } else {
        bundle.join(p)
    })
}

/// The names at the top of a directory: the cheap witness that a
/// recursive delete did not go through it (it would empty it).
fn top_level(dir: &Path) -> Option<BTreeSet<OsString>> {
    Some(std::fs::read_dir(dir).ok()?.flatten().map(|e| e.file_name()).collect())
}

/// PURE: what was in `before` and is not in `after`.
pub fn lost_entries(before: &BTreeSet<OsString>, after: &BTreeSet<OsString>) -> Vec<OsString> {
    before.difference(after).cloned().collect()
}

/// PURE: the pids of `criu` processes whose working directory is at or
/// below `area` (CRIU works in the restore's work directory), from
/// `(pid, comm, cwd)` triples.
pub fn criu_pids_working_in(procs: &[(i32, String, PathBuf)], area: &Path) -> Vec<i32> {
    procs
        .iter()
        .filter(|(_, comm, cwd)| comm == "criu" && cwd.starts_with(area))
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// SIGKILLs the CRIU processes working in `area` (an orphan of a killed
/// runtime, still restoring) and waits up to 5 s for them to go.
fn kill_criu_working_in(proc: &ProcRoot, area: &Path) {
    let Ok(area) = std::fs::canonicalize(area) else {
        return;
    };
    let scan = || -> Vec<i32> {
        let procs: Vec<(i32, String, PathBuf)> = proc
            .pids()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pid| {
                let p = proc.process(pid);
                let comm = p.comm().ok()??;
                Some((pid, comm.trim().to_string(), p.cwd().ok()?))
            })
            .collect();
        criu_pids_working_in(&procs, &area)
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = scan();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            log::warn!("killing criu {pid}, left working in {}", area.display());
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// PURE: the cgroup directories a runtime may have used for container `id`:
/// under every hierarchy, either the spec's `cgroupsPath`, or `/<id>` below
/// the hierarchy's root and below ckpt's own cgroup (runc nests there,
/// crun does not).
pub fn candidate_cgroup_dirs(
    own: &[Membership],
    mounts: &[Mount],
    cgroups_path: Option<&str>,
    id: &str,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for m in mounts.iter().filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2") {
        let own_path = own
            .iter()
            .find(|o| {
                if m.fstype == "cgroup2" {
                    o.hierarchy == 0 && o.controllers.is_empty()
                } else {
                    o.controllers.iter().any(|c| m.super_options.contains(c))
                }
            })
            .map(|o| o.path.clone());
        let rels: Vec<PathBuf> = match cgroups_path.filter(|p| !p.is_empty() && !p.contains(':')) {
            Some(p) => vec![PathBuf::from(p)],
            None => {
                let mut v = vec![Path::new("/").join(id)];
                if let Some(o) = own_path {
                    v.push(o.join(id));
                }
                v
            }
        };
        for rel in rels {
            let rel = rel.strip_prefix(&m.root).unwrap_or(&rel).to_path_buf();
            let dir = m.mount_point.join(rel.strip_prefix("/").unwrap_or(&rel));
            if !out.contains(&dir) {
                out.push(dir);
            }
        }
    }
    out
}

/// Kills every process in the container's cgroups and removes the empty
/// cgroups. Best effort: what cannot be removed is logged.
pub fn kill_restored_leftovers(proc: &ProcRoot, id: &str, cgroups_path: Option<&str>) {
    let own = parse_proc_cgroup(&proc.own().cgroup().unwrap_or_default());
    let mounts = mountinfo::parse(&proc.own().mountinfo().unwrap_or_default());
    let dirs: Vec<PathBuf> = candidate_cgroup_dirs(&own, &mounts, cgroups_path, id)
        .into_iter()
        .filter(|d| d.is_dir())
        .collect();
    let pids_in = |d: &Path| -> Vec<i32> {
        std::fs::read_to_string(d.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids: Vec<i32> = dirs.iter().flat_map(|d| pids_in(d)).collect();
        if pids.is_empty() || Instant::now() > deadline {
            break;
        }
        for pid in pids {
            log::warn!("killing process {pid} left by the failed restore of {id}");
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
        // A frozen leftover would never die.
        for d in &dirs {
            if d.join("freezer.state").exists() {
                let _ = std::fs::write(d.join("freezer.state"), "THAWED");
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for d in &dirs {
        // Runtimes leave helper sub-cgroups (crun's .proxy-crun) behind too.
        if let Ok(entries) = std::fs::read_dir(d) {
            for e in entries
                .flatten()
                .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
            {
                let _ = std::fs::remove_dir(e.path());
            }
        }
        if let Err(e) = std::fs::remove_dir(d) {
            log::debug!("cannot remove cgroup {}: {e}", d.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "30 25 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
31 25 0:35 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 25 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
    const OWN: &str = "6:freezer:/\n4:memory:/process_api/abc\n0::/\n";

    #[test]
    fn default_paths_cover_root_and_own_cgroup() {
        let d = candidate_cgroup_dirs(&parse_proc_cgroup(OWN), &mountinfo::parse(MOUNTS), None, "c1");
        assert!(d.contains(&PathBuf::from("/sys/fs/cgroup/freezer/c1")));
        assert!(
            d.contains(&PathBuf::from("/sys/fs/cgroup/memory/c1")),
            "crun: at the root"
        );
        assert!(
            d.contains(&PathBuf::from("/sys/fs/cgroup/memory/process_api/abc/c1")),
            "runc: below its own"
        );
        assert!(d.contains(&PathBuf::from("/sys/fs/cgroup/unified/c1")));
        assert_eq!(
            d.iter().filter(|p| p.ends_with("freezer/c1")).count(),
            1,
            "no duplicates"
        );
    }

    #[test]
    fn explicit_cgroups_path_wins() {
        let d = candidate_cgroup_dirs(
            &parse_proc_cgroup(OWN),
            &mountinfo::parse(MOUNTS),
            Some("/docker/abc"),
            "c1",
        );
        assert_eq!(d[0], PathBuf::from("/sys/fs/cgroup/freezer/docker/abc"));
        assert!(!d.iter().any(|p| p.ends_with("c1")));
        // systemd's slice:prefix:name form is not a path; fall back to the id.
        let d = candidate_cgroup_dirs(
            &parse_proc_cgroup(OWN),
            &mountinfo::parse(MOUNTS),
            Some("system.slice:docker:abc"),
            "c1",
        );
        assert!(d.contains(&PathBuf::from("/sys/fs/cgroup/freezer/c1")));
    }

    #[test]
    fn rootfs_path_cases() {
        #[rustfmt::skip]
        let cases: &[(serde_json::Value, Option<&str>)] = &[
            (serde_json::json!({"root": {"path": "rootfs"}}), Some("/b/rootfs")),
            (serde_json::json!({"root": {"path": "/var/lib/x/merged"}}), Some("/var/lib/x/merged")),
            (serde_json::json!({"root": {}}), None),
            (serde_json::json!({}), None),
        ];
        for (spec, want) in cases {
            assert_eq!(rootfs_path(Path::new("/b"), spec), want.map(PathBuf::from), "{spec}");
        }
    }

    #[test]
    fn lost_entries_are_what_disappeared() {
        let set = |v: &[&str]| v.iter().map(OsString::from).collect::<BTreeSet<_>>();
        let before = set(&["bin", "etc", "tmp"]);
        assert!(lost_entries(&before, &before).is_empty());
        assert!(lost_entries(&before, &set(&["bin", "etc", "tmp", "new"])).is_empty());
        assert_eq!(
            lost_entries(&before, &set(&["tmp"])),
            vec![OsString::from("bin"), "etc".into()]
        );
        assert_eq!(lost_entries(&before, &set(&[])).len(), 3, "emptied");
    }

    #[test]
    fn criu_working_in_the_area_only() {
        let p = |pid, comm: &str, cwd: &str| (pid, comm.to_string(), PathBuf::from(cwd));
        let procs = [
            p(10, "criu", "/s/c1/.ckpt-staging/restore.5.x"),
            p(11, "criu", "/s/c1/.ckpt-staging/restore.5.x (deleted)"),
            p(12, "criu", "/s/c10/.ckpt-staging/restore.5.x"),
            p(13, "counter", "/s/c1/.ckpt-staging/restore.5.x"),
            p(14, "criu", "/"),
        ];
        assert_eq!(
            criu_pids_working_in(&procs, Path::new("/s/c1/.ckpt-staging")),
            vec![10, 11]
        );
        assert_eq!(
            criu_pids_working_in(&procs, Path::new("/s/c1/.ckpt-staging/restore.5.x")),
            vec![10]
        );
        assert!(criu_pids_working_in(&procs, Path::new("/s/c2")).is_empty());
    }
}
