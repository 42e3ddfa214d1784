//! Gathers [`HostFacts`] for the planner from the running system: the
//! container's mounts, masked files, joined namespaces, freezer cgroup and
//! free space in the store. Reads only; the decisions are in `plan`.

use crate::discovery::cgroups::{self, FreezerDir};
use crate::discovery::{Container, RuntimeKind};
use crate::mountinfo;
use crate::plan::{ExternalNaming, HostFacts};
use crate::spec::SpecFacts;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Errors gathering facts.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find the freezer cgroup of process {pid} (from {path}); is the cgroup filesystem mounted?")]
    NoFreezer { pid: i32, path: PathBuf },
}

fn read(path: PathBuf) -> Result<String, FactsError> {
    std::fs::read_to_string(&path).map_err(|source| FactsError::Read { path, source })
}

/// The freezer cgroup of `pid`, found through `/proc/<pid>/cgroup` and the
/// host's (ckpt's own) cgroup mounts.
pub fn freezer_of(proc_root: &Path, pid: i32) -> Result<FreezerDir, FactsError> {
    let cg_path = proc_root.join(pid.to_string()).join("cgroup");
    let memberships = cgroups::parse_proc_cgroup(&read(cg_path.clone())?);
    let host_mounts = mountinfo::parse(&read(proc_root.join("self/mountinfo"))?);
    cgroups::freezer_dir(&memberships, &host_mounts).ok_or(FactsError::NoFreezer { pid, path: cg_path })
}

/// Everything the planner needs besides the spec and the inventory.
pub fn gather(
    proc_root: &Path,
    c: &Container,
    spec: &SpecFacts,
    store_root: &Path,
) -> Result<(HostFacts, Option<FreezerDir>), FactsError> {
    let pid_dir = proc_root.join(c.init_pid.to_string());
    let container_mounts = mountinfo::parse(&read(pid_dir.join("mountinfo"))?);
    // runc bind-mounts /dev/null over masked paths that exist and are not
    // directories (directories get a read-only tmpfs CRIU dumps itself).
    let masked_files = spec
        .masked_paths
        .iter()
        .filter(|m| {
            let inside = pid_dir.join("root").join(m.trim_start_matches('/'));
            std::fs::metadata(inside).map(|md| !md.is_dir()).unwrap_or(false)
        })
        .cloned()
        .collect();
    let ns_inode = |typ: &str| {
        spec.namespace(typ)
            .and_then(|n| n.path.as_ref())
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.ino())
    };
    let freezer = freezer_of(proc_root, c.init_pid).ok();
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
        freezer_dir: freezer.as_ref().map(|f| f.dir.clone()),
        store_free_bytes,
        store_root: store_root.to_path_buf(),
        naming: match c.runtime {
            // Docker restores through runc.
            RuntimeKind::Runc | RuntimeKind::Docker => ExternalNaming::Runc,
            RuntimeKind::Crun => ExternalNaming::Crun,
        },
    };
    Ok((facts, freezer))
}

/// The init's stdio as runc records it (`readlink /proc/<pid>/fd/{0,1,2}`),
/// for runtimes that do not keep it in their state.
pub fn stdio_descriptors(proc_root: &Path, pid: i32) -> Vec<String> {
    (0..3)
        .map(|fd| {
            std::fs::read_link(proc_root.join(format!("{pid}/fd/{fd}")))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "/dev/null".into())
        })
        .collect()
}
