//! PURE: what an export of a checkpoint writes. From the checkpoint (as
//! loaded and verified), what its engine knows of the container now (does
//! it run, where its root filesystem or writable layer is, its image), and
//! the user's flags, decide the archive's [`ExportSource`], or refuse.
//!
//! The one rule that is not obvious: a container that runs is refused
//! unless its root filesystem is left out. Its files would then be those of
//! the export's moment, not the checkpoint's (a `--leave-running` counter
//! has written on), and they change while the writer's two passes read
//! them. Pausing it would make the root filesystem consistent with itself
//! but still not with the checkpoint; stopping it is the user's call.

use crate::archive::{CheckpointFiles, EntryDigest, ExportSource, ImageRef, RootfsSource};
use crate::error::{NOT_FOUND, REFUSED};
use crate::store::metadata::{META_FILE, SEAL_FILE};
use crate::store::CheckpointEntry;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Where the engine finds the container's files.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportRootfs {
    /// A runc/crun bundle's root filesystem, whole.
    Tree(PathBuf),
    /// Docker: the writable layer (overlay2's upper directory), the paths
    /// Docker reports added or changed, and deleted, over `image`.
    Diff {
        upper: PathBuf,
        changed: Vec<PathBuf>,
        deleted: Vec<String>,
        image: ImageRef,
    },
    /// The engine cannot say (the reason is for the user).
    Unknown(String),
}

/// What the engine found, reading only.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportFacts {
    /// The container runs (or is paused) now.
    pub running: bool,
    pub rootfs: ExportRootfs,
    /// A human name (Docker's); `None` for runc and crun.
    pub container_name: Option<String>,
    /// When the container was created (RFC 3339), if known.
    pub created: Option<String>,
    /// The OCI runtime under the engine.
    pub oci_runtime: String,
    /// Docker: the create body that makes the container again.
    pub docker_create: Option<Value>,
}

/// The user's flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportOptions {
    /// `--no-rootfs` (Podman's name; `--no-rootfs`).
    pub ignore_rootfs: bool,
}

/// Why an export is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportProblem {
    Running {
        id: String,
        checkpoint: String,
    },
    NoRootfs {
        id: String,
        reason: String,
    },
    /// ckpt cannot export this kind of container yet.
    Unsupported {
        id: String,
        what: String,
    },
}

impl ExportProblem {
    pub fn exit_code(&self) -> u8 {
        match self {
            ExportProblem::Running { .. } => REFUSED,
            ExportProblem::NoRootfs { .. } => NOT_FOUND,
            ExportProblem::Unsupported { .. } => crate::error::FAILURE,
        }
    }
}

impl std::error::Error for ExportProblem {}

impl fmt::Display for ExportProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExportProblem::Running { id, checkpoint } => write!(
                f,
                "container {id} is running: its root filesystem is no longer the one checkpoint {checkpoint} saw, \
                 and would change while it is exported. Export a checkpoint of a stopped container (ckpt create \
                 without --leave-running), or leave the root filesystem out with --no-rootfs"
            ),
            ExportProblem::NoRootfs { id, reason } => write!(
                f,
                "cannot export the root filesystem of {id}: {reason}; leave it out with --no-rootfs if the target has it"
            ),
            ExportProblem::Unsupported { id, what } => {
                write!(f, "cannot export {id}: ckpt does not export {what} yet")
            }
        }
    }
}

/// The archive to write for `entry`, or why not.
pub fn export_plan(
    entry: &CheckpointEntry,
    runtime: &str,
    spec: Value,
    facts: &ExportFacts,
    opts: ExportOptions,
) -> Result<ExportSource, ExportProblem> {
    let id = facts
        .container_name
        .clone()
        .unwrap_or_else(|| entry.container_id.clone());
    let rootfs = if opts.ignore_rootfs {
        RootfsSource::None
    } else if facts.running {
        return Err(ExportProblem::Running {
            id,
            checkpoint: entry.name.clone(),
        });
    } else {
        match &facts.rootfs {
            ExportRootfs::Tree(p) => RootfsSource::Tree(p.clone()),
            ExportRootfs::Diff {
                upper,
                changed,
                deleted,
                image,
            } => RootfsSource::Diff {
                root: upper.clone(),
                changed: changed.clone(),
                deleted: deleted.clone(),
                image: image.clone(),
            },
            ExportRootfs::Unknown(reason) => {
                return Err(ExportProblem::NoRootfs {
                    id,
                    reason: reason.clone(),
                })
            }
        }
    };
    Ok(ExportSource {
        checkpoint: checkpoint_files(entry),
        container_id: entry.container_id.clone(),
        container_name: facts.container_name.clone(),
        checkpoint_name: entry.name.clone(),
        runtime: runtime.to_string(),
        oci_runtime: facts.oci_runtime.clone(),
        spec,
        created: facts.created.clone(),
        checkpointed_at: entry.meta.as_ref().map(|m| m.created_at.clone()).unwrap_or_default(),
        rootfs,
        docker_create: facts.docker_create.clone(),
    })
}

/// The checkpoint's files as the writer takes them: every file its
/// `ckpt.json` records, with the recorded digests (the writer checks each
/// while it copies), and `ckpt.json` and its seal to be hashed. A
/// checkpoint ckpt did not make has no record: `files` is then what is in
/// its directory, each hashed first (given by the caller in `entry`'s
/// listing, see [`foreign_files`]).
pub fn checkpoint_files(entry: &CheckpointEntry) -> CheckpointFiles {
    let mut files = BTreeMap::new();
    if let Some(meta) = &entry.meta {
        for (k, d) in &meta.files {
            files.insert(
                k.clone(),
                Some(EntryDigest {
                    size: d.size,
                    blake3: d.blake3.clone(),
                }),
            );
        }
        files.insert(META_FILE.to_string(), None);
        if meta.is_sealed() {
            files.insert(SEAL_FILE.to_string(), None);
        }
    }
    CheckpointFiles {
        dir: entry.dir.clone(),
        files,
    }
}

/// A foreign checkpoint's files (names of the regular files in its
/// directory), each to be hashed before it is written.
pub fn foreign_files(entry: &CheckpointEntry, names: Vec<String>) -> CheckpointFiles {
    CheckpointFiles {
        dir: entry.dir.clone(),
        files: names.into_iter().map(|n| (n, None)).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> CheckpointEntry {
        let meta = serde_json::from_value(json!({
            "schema_version": 2, "tool": "ckpt", "container_id": "web", "name": "one", "runtime": "runc",
            "runtime_root": "/run/runc", "bundle": "/b", "rootfs": "/b/rootfs", "spec": {},
            "inventory": {"process_count": 1, "fd_count": 3, "anon_rss_bytes": 0, "processes": []},
            "criu_version": "4.1.1", "kernel": "6", "created_at": "2026-12-01T00:00:00Z", "frozen_ms": 0,
            "dump_ms": 0, "size_bytes": 3, "options": {"leave_running": false, "tcp_established": false,
            "file_locks": false, "ext_unix_sk": false}, "descriptors": [],
            "files": {"pstree.img": {"size": 3, "blake3": "a".repeat(64)}}
        }))
        .unwrap();
        CheckpointEntry {
            container_id: "web".into(),
            name: "one".into(),
            dir: "/s/web/checkpoints/one".into(),
            meta: Some(meta),
            size_bytes: 3,
        }
    }

    fn facts(running: bool, rootfs: ExportRootfs) -> ExportFacts {
        ExportFacts {
            running,
            rootfs,
            container_name: None,
            created: None,
            oci_runtime: "runc".into(),
            docker_create: None,
        }
    }

    #[test]
    fn what_an_export_writes() {
        let tree = ExportRootfs::Tree("/b/rootfs".into());
        let yes = ExportOptions { ignore_rootfs: true };
        let no = ExportOptions::default();
        // (running, rootfs, ignore, Ok(rootfs source) or Err(code))
        let cases: Vec<(bool, ExportRootfs, ExportOptions, Result<&str, u8>)> = vec![
            (false, tree.clone(), no, Ok("tree")),
            (false, tree.clone(), yes, Ok("none")),
            (true, tree.clone(), no, Err(REFUSED)),
            (true, tree.clone(), yes, Ok("none")),
            (false, ExportRootfs::Unknown("gone".into()), no, Err(NOT_FOUND)),
            (false, ExportRootfs::Unknown("gone".into()), yes, Ok("none")),
        ];
        for (running, rootfs, opts, want) in cases {
            let got = export_plan(&entry(), "runc", json!({}), &facts(running, rootfs.clone()), opts);
            match (got, want) {
                (Ok(src), Ok(kind)) => {
                    let k = match src.rootfs {
                        RootfsSource::None => "none",
                        RootfsSource::Tree(_) => "tree",
                        RootfsSource::Diff { .. } => "diff",
                    };
                    assert_eq!(k, kind, "{running} {rootfs:?} {opts:?}");
                    assert_eq!(src.checkpointed_at, "2026-12-01T00:00:00Z");
                }
                (Err(p), Err(code)) => assert_eq!(p.exit_code(), code, "{p}"),
                (got, want) => panic!("{running} {rootfs:?}: {got:?} for {want:?}"),
            }
        }
        let e = export_plan(&entry(), "runc", json!({}), &facts(true, tree), no).unwrap_err();
        assert!(
            e.to_string().contains("--no-rootfs") && e.to_string().contains("checkpoint one"),
            "{e}"
        );
    }

    #[test]
    fn the_recorded_digests_go_with_the_files_and_the_seal_is_hashed() {
        let f = checkpoint_files(&entry());
        assert_eq!(f.files["pstree.img"].as_ref().unwrap().size, 3);
        assert_eq!(f.files["ckpt.json"], None);
        assert_eq!(f.files["ckpt.json.blake3"], None);
        assert_eq!(f.files.len(), 3);
    }
}
