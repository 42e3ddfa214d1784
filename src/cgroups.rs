//! Where a process's freezer cgroup is, from `/proc/<pid>/cgroup` and the
//! host's cgroup mounts. Works the same for every runtime, so runtime state
//! files need not agree on how they record cgroup paths.

use crate::mountinfo::Mount;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The freezer of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FreezerDir {
    /// The cgroup directory (holds `freezer.state` or `cgroup.freeze`).
    pub dir: PathBuf,
    pub version: CgroupVersion,
}

/// cgroup v1 (`freezer.state`) or v2 (`cgroup.freeze`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub hierarchy: u32,
    /// Controllers (`freezer`, `name=systemd`); empty for the v2 line.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

/// Parses `/proc/<pid>/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(Membership {
                hierarchy,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// Finds the freezer: the v1 freezer hierarchy when mounted (it is the one
/// runc and Docker use on hybrid hosts), else the v2 unified hierarchy.
pub fn freezer_dir(memberships: &[Membership], host_mounts: &[Mount]) -> Option<FreezerDir> {
    let v1 = memberships
        .iter()
        .find(|m| m.controllers.iter().any(|c| c == "freezer"));
    if let Some(m) = v1 {
        let mount = host_mounts
            .iter()
            .find(|mt| mt.fstype == "cgroup" && mt.super_options.iter().any(|o| o == "freezer"))?;
        return Some(FreezerDir {
            dir: join_cgroup(mount, &m.path),
            version: CgroupVersion::V1,
        });
    }
    let v2 = memberships
        .iter()
        .find(|m| m.hierarchy == 0 && m.controllers.is_empty())?;
    let mount = host_mounts.iter().find(|mt| mt.fstype == "cgroup2")?;
    Some(FreezerDir {
        dir: join_cgroup(mount, &v2.path),
        version: CgroupVersion::V2,
    })
}

/// `mount_point + (path relative to the mount's root)`.
fn join_cgroup(mount: &Mount, path: &Path) -> PathBuf {
    let rel = path.strip_prefix(&mount.root).unwrap_or(path);
    let rel = rel.strip_prefix("/").unwrap_or(rel);
    mount.mount_point.join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo;

    const HOST: &str = "30 25 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
38 25 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
    const V2_HOST: &str = "30 25 0:34 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";

    #[test]
    fn prefers_v1_freezer_on_hybrid_hosts() {
        let m = parse_proc_cgroup("6:freezer:/exp1\n4:memory:/a/exp1\n0::/exp1\n");
        let f = freezer_dir(&m, &mountinfo::parse(HOST)).unwrap();
        assert_eq!(f.dir, PathBuf::from("/sys/fs/cgroup/freezer/exp1"));
        assert_eq!(f.version, CgroupVersion::V1);
    }

    #[test]
    fn uses_unified_on_v2_hosts() {
        let m = parse_proc_cgroup("0::/system.slice/docker-abc.scope\n");
        let f = freezer_dir(&m, &mountinfo::parse(V2_HOST)).unwrap();
        assert_eq!(f.dir, PathBuf::from("/sys/fs/cgroup/system.slice/docker-abc.scope"));
        assert_eq!(f.version, CgroupVersion::V2);
    }

    #[test]
    fn none_without_mounts() {
        let m = parse_proc_cgroup("0::/x\n");
        assert_eq!(freezer_dir(&m, &[]), None);
    }

    #[test]
    fn parses_named_hierarchies() {
        let m = parse_proc_cgroup("9:name=systemd:/exp1\n1:cpu,cpuacct:/y\n");
        assert_eq!(m[0].controllers, vec!["name=systemd"]);
        assert_eq!(m[1].controllers, vec!["cpu", "cpuacct"]);
    }
}
