//! Undoing a failed restore completely. When CRIU dies part-way through a
//! `runc restore`, runc forgets the container, but CRIU may already have
//! restored processes into the container's cgroups and left its own mounts
//! (`.criu.cgyard.*`) under the work directory. Both are removed here, so
//! that a failed start leaves nothing running and nothing mounted.

use crate::discovery::cgroups::{parse_proc_cgroup, Membership};
use crate::mountinfo::{self, Mount};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
pub fn kill_restored_leftovers(id: &str, cgroups_path: Option<&str>) {
    let own = parse_proc_cgroup(&std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default());
    let mounts = mountinfo::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
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

/// Lazily unmounts every mount at or below `dir`, deepest first.
pub fn unmount_below(dir: &Path) {
    let mounts = mountinfo::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default());
    let mut below: Vec<&Mount> = mounts.iter().filter(|m| m.mount_point.starts_with(dir)).collect();
    below.sort_by_key(|m| std::cmp::Reverse(m.mount_point.components().count()));
    for m in below {
        if let Err(e) = nix::mount::umount2(&m.mount_point, nix::mount::MntFlags::MNT_DETACH) {
            log::warn!("cannot unmount {} left by CRIU: {e}", m.mount_point.display());
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
}
