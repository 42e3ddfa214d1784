//! Where a process's freezer cgroup is, and whether it is cgroup v1 or v2.
//!
//! The version is decided the way runc decides it: by what is mounted at
//! the cgroup root (`/sys/fs/cgroup`), never by which lines
//! `/proc/<pid>/cgroup` lists. A process stays a member of every v1
//! hierarchy even where none is mounted (a private mount namespace with a
//! cgroup2 mount at the root still lists `6:freezer:/`), so those lines
//! say nothing about the layout the runtime used. Everything here is pure:
//! the mounts, the memberships and the root are passed in.

use crate::mountinfo::Mount;
use serde::Serialize;
use std::collections::BTreeMap;
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

/// The cgroup root a runtime looks at (runc's `/sys/fs/cgroup`).
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The host's cgroup layout, from what is mounted at the cgroup root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The root is a cgroup2 mount: a pure v2 host. Runtimes put every
    /// container in this hierarchy and freeze with `cgroup.freeze`.
    Unified(Mount),
    /// The root is a directory of v1 hierarchies (legacy or hybrid):
    /// runtimes freeze with the v1 freezer hierarchy mounted in it.
    Legacy { freezer: Mount },
    /// A root of v1 hierarchies without a v1 freezer but with a cgroup2
    /// mount in it (hybrid with the freezer left to v2).
    HybridV2(Mount),
}

/// PURE: the layout seen through `host_mounts` (ckpt's own mountinfo) at
/// `root`; `None` when nothing usable is mounted there. When several
/// mounts stack on `root`, the last one (the visible one) counts, and only
/// the hierarchies mounted in it (its children) are looked at.
pub fn layout(host_mounts: &[Mount], root: &Path) -> Option<Layout> {
    let top = host_mounts.iter().rev().find(|m| m.mount_point == root)?;
    if top.fstype == "cgroup2" {
        return Some(Layout::Unified(top.clone()));
    }
    let children = || {
        host_mounts
            .iter()
            .rev()
            .filter(|m| m.parent == top.id && m.mount_point.parent() == Some(root))
    };
    if let Some(freezer) = children().find(|m| m.fstype == "cgroup" && m.super_options.iter().any(|o| o == "freezer")) {
        return Some(Layout::Legacy {
            freezer: freezer.clone(),
        });
    }
    children()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| Layout::HybridV2(m.clone()))
}

/// PURE: the freezer of a process, given the host's `layout`, the
/// process's memberships (`/proc/<pid>/cgroup`) and the cgroup paths its
/// runtime recorded (`state.json`'s `cgroup_paths`: controller → directory,
/// `""` for the unified hierarchy; may be empty). The membership of the
/// layout's version wins; the runtime's record is the fallback, used only
/// when it lies in the layout's hierarchy.
pub fn freezer_dir(
    layout: &Layout,
    memberships: &[Membership],
    recorded: &BTreeMap<String, PathBuf>,
) -> Option<FreezerDir> {
    let (mount, version, key) = match layout {
        Layout::Legacy { freezer } => (freezer, CgroupVersion::V1, "freezer"),
        Layout::Unified(m) | Layout::HybridV2(m) => (m, CgroupVersion::V2, ""),
    };
    let member = memberships.iter().find(|m| match version {
        CgroupVersion::V1 => m.controllers.iter().any(|c| c == "freezer"),
        CgroupVersion::V2 => m.hierarchy == 0 && m.controllers.is_empty(),
    });
    let dir = match (member, recorded.get(key)) {
        (Some(m), _) => join_cgroup(mount, &m.path),
        // runc records absolute directories; crun the path in the hierarchy.
        (None, Some(p)) if p.starts_with(&mount.mount_point) => p.clone(),
        (None, Some(p)) if p.is_absolute() => join_cgroup(mount, p),
        _ => return None,
    };
    Some(FreezerDir { dir, version })
}

/// Which cgroup hierarchies CRIU dumps and restores.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDump {
    /// Every hierarchy the container is a member of (CRIU's default).
    #[default]
    All,
    /// Only these, by CRIU's names (`--cgroup-dump-controller`): `unified`
    /// for cgroup2, else the controllers of a `/proc/<pid>/cgroup` line
    /// as it writes them (`cpu,cpuacct`, `name=systemd`).
    Only(Vec<String>),
    /// None at all (`--manage-cgroups=ignore`): the container has no
    /// cgroup of its own anywhere.
    Nothing,
}

/// PURE: which hierarchies to hand CRIU, given the host's `layout` and the
/// container init's `memberships`.
///
/// On a pure v2 host only the unified hierarchy: the v1 lines the kernel
/// still lists are no runtime's. Elsewhere, every hierarchy except those
/// in which the container sits at the root `/`. A container at the root
/// has no cgroup of its own there (crun on a hybrid host never joins the
/// unified hierarchy), and CRIU dumps the whole subtree of the container's
/// cgroup: at `/` that is every cgroup on the host, which the restore then
/// recreates below the restored container's own, doubling the host's
/// cgroups with every restore.
pub fn dump_selection(layout: &Layout, memberships: &[Membership]) -> CgroupDump {
    if let Layout::Unified(_) = layout {
        return CgroupDump::Only(vec!["unified".to_string()]);
    }
    let at_root = |m: &&Membership| m.path == Path::new("/");
    if !memberships.iter().any(|m| at_root(&m)) {
        return CgroupDump::All;
    }
    let own: Vec<String> = memberships
        .iter()
        .filter(|m| !at_root(m))
        .map(|m| match m.controllers.is_empty() {
            true => "unified".to_string(),
            false => m.controllers.join(","),
        })
        .collect();
    match own.is_empty() {
        true => CgroupDump::Nothing,
        false => CgroupDump::Only(own),
    }
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

    /// This machine: a tmpfs of v1 hierarchies plus the unified one.
    const HYBRID: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
    /// Debian 12, Fedora, RHEL 9.
    const V2: &str = "30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate";
    /// scripts/in-cgroup2: the hybrid root lazily unmounted, cgroup2 in its place.
    const PRIVATE_V2: &str = "52 51 0:38 / /sys/fs/cgroup rw - cgroup2 none rw";
    /// A cgroup2 mount stacked on the hybrid tmpfs without unmounting it:
    /// the v1 hierarchies below the hidden tmpfs are not visible.
    const STACKED_V2: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
37 31 0:34 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
60 31 0:38 / /sys/fs/cgroup rw - cgroup2 none rw";
    const LEGACY_NO_FREEZER: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw";
    /// v1 freezer mounted somewhere else than in the root.
    const ELSEWHERE: &str = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
37 23 0:34 / /mnt/freezer rw - cgroup cgroup rw,freezer";

    #[test]
    fn criu_dumps_only_the_hierarchies_where_the_container_has_a_cgroup_of_its_own() {
        let hybrid = layout(&mountinfo::parse(HYBRID), Path::new("/sys/fs/cgroup")).unwrap();
        let v2 = layout(&mountinfo::parse(V2), Path::new("/sys/fs/cgroup")).unwrap();
        let only = |names: &[&str]| CgroupDump::Only(names.iter().map(|n| n.to_string()).collect());
        // (layout, /proc/<pid>/cgroup, what CRIU is handed)
        let table: Vec<(&Layout, &str, CgroupDump)> = vec![
            // runc on the hybrid host: a cgroup of its own everywhere.
            (
                &hybrid,
                "4:memory:/c1\n3:cpu,cpuacct:/c1\n1:name=systemd:/c1\n0::/c1\n",
                CgroupDump::All,
            ),
            // crun on the hybrid host: never in the unified hierarchy.
            (
                &hybrid,
                "4:memory:/c1\n3:cpu,cpuacct:/c1\n1:name=systemd:/c1\n0::/\n",
                only(&["memory", "cpu,cpuacct", "name=systemd"]),
            ),
            // At the root of a v1 hierarchy too: left out the same way.
            (
                &hybrid,
                "4:memory:/c1\n1:name=systemd:/\n0::/c1\n",
                only(&["memory", "unified"]),
            ),
            // At the root everywhere: nothing of its own to dump.
            (&hybrid, "4:memory:/\n0::/\n", CgroupDump::Nothing),
            // A pure v2 host: the unified hierarchy whatever else is listed.
            (&v2, "6:freezer:/\n0::/c1\n", only(&["unified"])),
        ];
        for (l, proc_cgroup, want) in table {
            assert_eq!(
                dump_selection(l, &parse_proc_cgroup(proc_cgroup)),
                want,
                "{proc_cgroup:?}"
            );
        }
    }

    fn kind(l: &Option<Layout>) -> Option<&'static str> {
        l.as_ref().map(|l| match l {
            Layout::Unified(_) => "unified",
            Layout::Legacy { .. } => "legacy",
            Layout::HybridV2(_) => "hybrid-v2",
        })
    }

    #[test]
    fn layout_is_decided_by_what_is_mounted_at_the_root() {
        let root = Path::new(CGROUP_ROOT);
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            ("hybrid host", HYBRID, Some("legacy"), "/sys/fs/cgroup/freezer"),
            ("pure v2 host", V2, Some("unified"), "/sys/fs/cgroup"),
            ("private v2 namespace", PRIVATE_V2, Some("unified"), "/sys/fs/cgroup"),
            (
                "cgroup2 stacked on the hybrid root",
                STACKED_V2,
                Some("unified"),
                "/sys/fs/cgroup",
            ),
            (
                "v1 without freezer, unified present",
                LEGACY_NO_FREEZER,
                Some("hybrid-v2"),
                "/sys/fs/cgroup/unified",
            ),
            ("freezer mounted outside the root", ELSEWHERE, None, ""),
            ("nothing mounted", "", None, ""),
        ];
        for (what, mounts, want, at) in cases {
            let l = layout(&mountinfo::parse(mounts), root);
            assert_eq!(kind(&l), *want, "{what}");
            if let Some(l) = l {
                let m = match l {
                    Layout::Unified(m) | Layout::HybridV2(m) | Layout::Legacy { freezer: m } => m,
                };
                assert_eq!(m.mount_point, PathBuf::from(at), "{what}");
            }
        }
        assert_eq!(layout(&mountinfo::parse(V2), Path::new("/elsewhere")), None);
    }

    /// The lines this kernel lists inside scripts/in-cgroup2: v1 lines
    /// first, although no v1 hierarchy is mounted.
    const V1_LINES_IN_V2: &str = "6:freezer:/\n4:memory:/process_api/d8\n0::/ckpt-t-1-0\n";

    fn paths(pairs: &[(&str, &str)]) -> BTreeMap<String, PathBuf> {
        pairs.iter().map(|(k, v)| (k.to_string(), PathBuf::from(v))).collect()
    }

    #[test]
    fn freezer_follows_the_layout_not_the_proc_lines() {
        let l = |t| layout(&mountinfo::parse(t), Path::new(CGROUP_ROOT)).unwrap();
        let none = BTreeMap::new();
        let v1 = CgroupVersion::V1;
        let v2 = CgroupVersion::V2;
        // (case, layout, /proc/<pid>/cgroup, runtime's record, expected)
        type Case = (
            &'static str,
            Layout,
            &'static str,
            BTreeMap<String, PathBuf>,
            Option<(&'static str, CgroupVersion)>,
        );
        let cases: Vec<Case> = vec![
            (
                "hybrid: the v1 freezer",
                l(HYBRID),
                "6:freezer:/exp1\n4:memory:/a/exp1\n0::/exp1\n",
                none.clone(),
                Some(("/sys/fs/cgroup/freezer/exp1", v1)),
            ),
            (
                "v2 host",
                l(V2),
                "0::/system.slice/docker-abc.scope\n",
                none.clone(),
                Some(("/sys/fs/cgroup/system.slice/docker-abc.scope", v2)),
            ),
            (
                "private v2 namespace listing v1 lines (the bug)",
                l(PRIVATE_V2),
                V1_LINES_IN_V2,
                none.clone(),
                Some(("/sys/fs/cgroup/ckpt-t-1-0", v2)),
            ),
            (
                "hybrid with the freezer in v2",
                l(LEGACY_NO_FREEZER),
                "4:memory:/x\n0::/x\n",
                none.clone(),
                Some(("/sys/fs/cgroup/unified/x", v2)),
            ),
            (
                "v2, no 0:: line: runc's state.json",
                l(V2),
                "",
                paths(&[("", "/sys/fs/cgroup/exp1")]),
                Some(("/sys/fs/cgroup/exp1", v2)),
            ),
            (
                "v2, no 0:: line: crun's cgroup-path",
                l(V2),
                "",
                paths(&[("", "/expc1")]),
                Some(("/sys/fs/cgroup/expc1", v2)),
            ),
            (
                "hybrid, no freezer line: runc's freezer path",
                l(HYBRID),
                "",
                paths(&[
                    ("freezer", "/sys/fs/cgroup/freezer/exp1"),
                    ("", "/sys/fs/cgroup/unified/exp1"),
                ]),
                Some(("/sys/fs/cgroup/freezer/exp1", v1)),
            ),
            (
                "v2 with only v1 lines and no record",
                l(PRIVATE_V2),
                "6:freezer:/\n",
                none.clone(),
                None,
            ),
            ("hybrid with only the v2 line", l(HYBRID), "0::/x\n", none.clone(), None),
        ];
        for (what, layout, lines, recorded, want) in cases {
            let got = freezer_dir(&layout, &parse_proc_cgroup(lines), &recorded);
            let want = want.map(|(d, version)| FreezerDir {
                dir: PathBuf::from(d),
                version,
            });
            assert_eq!(got, want, "{what}");
        }
    }

    #[test]
    fn parses_named_hierarchies() {
        let m = parse_proc_cgroup("9:name=systemd:/exp1\n1:cpu,cpuacct:/y\n");
        assert_eq!(m[0].controllers, vec!["name=systemd"]);
        assert_eq!(m[1].controllers, vec!["cpu", "cpuacct"]);
    }
}
