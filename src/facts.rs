//! Gathers [`HostFacts`] for the planner from the running system: the
//! container's mounts, masked files, joined namespaces, freezer cgroup and
//! free space in the store. Reads only; the decisions are in `plan`.

use crate::cgroups::{self, FreezerDir};
use crate::engine::{Container, RuntimeKind};
use crate::mountinfo;
use crate::plan::{ExternalNaming, HostFacts};
use crate::procfs::{ProcError, ProcRoot};
use crate::spec::SpecFacts;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Errors gathering facts.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Proc(#[from] ProcError),
    #[error("cannot find the freezer cgroup of process {pid} (from {path} and the cgroup mounts at {root}); is the cgroup filesystem mounted?")]
    NoFreezer { pid: i32, path: PathBuf, root: PathBuf },
}

/// The freezer cgroup of `pid`: v1 or v2 as the mounts at `cgroup_root`
/// (ckpt's own, as the runtime sees them) say, the directory from
/// `/proc/<pid>/cgroup` or else from the runtime's `recorded` paths.
pub fn freezer_of(
    proc: &ProcRoot,
    cgroup_root: &Path,
    pid: i32,
    recorded: &BTreeMap<String, PathBuf>,
) -> Result<FreezerDir, FactsError> {
    let process = proc.process(pid);
    let memberships = cgroups::parse_proc_cgroup(&process.cgroup()?);
    let host_mounts = mountinfo::parse(&proc.own().mountinfo()?);
    cgroups::layout(&host_mounts, cgroup_root)
        .and_then(|layout| cgroups::freezer_dir(&layout, &memberships, recorded))
        .ok_or_else(|| FactsError::NoFreezer {
            pid,
            path: process.dir().join("cgroup"),
            root: cgroup_root.to_path_buf(),
        })
}

/// Everything the planner needs besides the spec and the inventory.
pub fn gather(
    proc: &ProcRoot,
    cgroup_root: &Path,
    c: &Container,
    spec: &SpecFacts,
    store_root: &Path,
) -> Result<HostFacts, FactsError> {
    let init = proc.process(c.init_pid);
    let container_mounts = mountinfo::parse(&init.mountinfo()?);
    // runc bind-mounts /dev/null over masked paths that exist and are not
    // directories (directories get a read-only tmpfs CRIU dumps itself).
    let masked_files = spec
        .masked_paths
        .iter()
        .filter(|m| {
            std::fs::metadata(init.in_root(m))
                .map(|md| !md.is_dir())
                .unwrap_or(false)
        })
        .cloned()
        .collect();
    let ns_inode = |typ: &str| {
        spec.namespace(typ)
            .and_then(|n| n.path.as_ref())
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.ino())
    };
    let freezer = freezer_of(proc, cgroup_root, c.init_pid, &c.cgroup_paths).ok();
    let cgroup_dump = match cgroups::layout(&mountinfo::parse(&proc.own().mountinfo()?), cgroup_root) {
        Some(layout) => cgroups::dump_selection(&layout, &cgroups::parse_proc_cgroup(&init.cgroup()?)),
        None => cgroups::CgroupDump::All,
    };
    let store_free_bytes = nix::sys::statvfs::statvfs(store_root)
        .ok()
        .map(|s| s.blocks_available() * s.fragment_size());
    let facts = HostFacts {
        init_pid: c.init_pid,
        rootfs: c.rootfs.clone(),
        container_mounts,
        masked_files,
        runtime_root: c.runtime_root.clone(),
        joined_netns_inode: ns_inode("network"),
        joined_pidns_inode: ns_inode("pid"),
        freezer,
        cgroup_dump,
        recorded_stdio: c.external_descriptors.clone(),
        live_stdio: stdio_descriptors(proc, c.init_pid),
        store_free_bytes,
        store_root: store_root.to_path_buf(),
        naming: match c.runtime {
            // Docker restores through runc.
            RuntimeKind::Runc | RuntimeKind::Docker => ExternalNaming::Runc,
            RuntimeKind::Crun => ExternalNaming::Crun,
        },
    };
    Ok(facts)
}

/// The init's stdio as runc records it (`readlink /proc/<pid>/fd/{0,1,2}`),
/// for runtimes that do not keep it in their state.
pub fn stdio_descriptors(proc: &ProcRoot, pid: i32) -> Vec<String> {
    let init = proc.process(pid);
    (0..3)
        .map(|fd| init.fd_target(fd).unwrap_or_else(|_| "/dev/null".into()))
        .collect()
}
