//! PURE planning of a restore, beside the dump's: the checkpoint (as loaded
//! and verified) + facts about the target and the host (gathered by the
//! engine that restores it, reading only) + what the user asked → a
//! [`RestorePlan`] the engine executes, or a [`RestoreRefusal`] that lists
//! every problem.
//!
//! The problems are listed, and the refusal's exit code is its first
//! problem's, in the order `start` checked them one by one before there was
//! a plan: the installed CRIU, what `ckpt.json` says (runtime, container,
//! images), the bundle and its rootfs, the bind-mount sources, the target's
//! files in the store, the target itself. A refusal with one problem says
//! exactly what that check said on its own.
//!
//! Nothing here touches the system.

use super::bundle::{choose_bundle, BundleChoice, BundleRefusal};
use super::dump::DumpOptions;
use super::stdio::{restored_stdio, StdioSource};
use crate::criu::CriuVersion;
use crate::engine::RuntimeKind;
use crate::error::{CORRUPT, FAILURE, NOT_FOUND, PREREQUISITE, REFUSED, USAGE};
use crate::store::metadata::META_FILE;
use crate::store::{CheckpointEntry, CheckpointMeta, StoreError};
use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

/// Who restores the checkpoint, and so which rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restorer {
    /// runc or crun, driven by ckpt from ckpt's store (`runc restore`).
    Oci,
    /// A Docker daemon (`POST /containers/{id}/start?checkpoint=`), from
    /// Docker's own checkpoint directory, which may hold checkpoints ckpt
    /// did not make.
    Docker,
}

/// What the target of a restore is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// No container of that id (or a copy still to be made).
    Absent,
    /// A stopped container of that id.
    Stopped,
    /// A runtime state directory without a state file: what a failed or
    /// killed create or restore leaves.
    Leftover,
    /// Running or paused.
    Running,
}

/// What the engine found, reading only, for [`restore_plan`].
#[derive(Debug, Clone)]
pub struct RestoreFacts {
    pub restorer: Restorer,
    /// The installed CRIU; `None` when it was not looked for (a checkpoint
    /// without metadata has no version to compare).
    pub criu: Option<CriuVersion>,
    /// The id of the container whose checkpoints these are (Docker's
    /// full id; in ckpt's store, the id given).
    pub home_id: String,
    /// The target's id, or its name for a Docker container, for messages.
    pub target_name: String,
    pub target: TargetState,
    /// ckpt's store, same id: the recorded bundle's `config.json` as it is
    /// now, `None` if it is gone.
    pub original_spec: Option<serde_json::Value>,
    /// Which of [`paths_to_check`] exist.
    pub present: BTreeSet<PathBuf>,
    /// ckpt's store: a path `start` writes in the target's directory that
    /// is not ckpt's own, and why (see `Store::check_restore_target`).
    pub unsafe_target: Option<(PathBuf, &'static str)>,
    /// Docker's directory: the first of `store::listing::CORE_IMAGES` a checkpoint ckpt
    /// did not make lacks.
    pub missing_image: Option<&'static str>,
}

/// What the user asked for (`ckpt start` flags).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `--name NEW_ID`: restore as a new container.
    pub new_name: Option<String>,
    /// `--tcp-close`: CRIU restores established TCP connections closed.
    pub tcp_close: bool,
}

/// Everything the engine executes.
#[derive(Debug, Clone, PartialEq)]
pub struct RestorePlan {
    /// The checkpoint's name and directory.
    pub checkpoint: String,
    pub images: PathBuf,
    /// The id restored into (Docker: the name of the copy, or the container).
    pub target: String,
    /// The CRIU options the dump recorded; the restore repeats them.
    pub options: DumpOptions,
    pub how: How,
}

/// The engine's part of a plan.
#[derive(Debug, Clone, PartialEq)]
pub enum How {
    /// `<binary> --root <root> restore` into `target` with this bundle.
    Oci {
        /// As `ckpt.json` records it, and as the output says it.
        runtime: RuntimeKind,
        /// The binary that restores it.
        binary: RuntimeKind,
        root: PathBuf,
        bundle: BundleChoice,
        /// A stopped container or a leftover state dir of the target is
        /// removed first (the runtime refuses the id while it is there).
        clear_target: bool,
        /// What the runtime gets as its fds 0–2, which become the restored
        /// stdio (see [`super::stdio`]).
        stdio: [StdioSource; 3],
        /// `--tcp-close`: neither runc nor crun has the flag, so the
        /// (generated) bundle's `org.criu.config` annotation names a CRIU
        /// config file with `tcp-close` (see [`super::bundle::criu_config_text`]).
        tcp_close: bool,
    },
    /// Docker starts the container from the checkpoint; with `copy`, a
    /// new container named `target` with the source's config first.
    Docker { copy: bool },
}

/// One reason a checkpoint cannot be restored as asked.
#[derive(Debug, Clone, PartialEq)]
pub enum RestoreProblem {
    /// Made by a CRIU newer than the installed one.
    CriuTooOld {
        name: String,
        made: CriuVersion,
        installed: CriuVersion,
    },
    /// `ckpt.json` names a runtime this ckpt does not drive.
    UnknownRuntime { name: String, runtime: String },
    /// A Docker checkpoint among another container's checkpoints.
    WrongContainer {
        name: String,
        made_from: String,
        target: String,
    },
    /// The checkpoint contradicts itself, or is not a CRIU checkpoint
    /// (said as the store says a corrupt checkpoint).
    Corrupt { dir: PathBuf, reason: String },
    /// The bundle a restore would use is refused.
    Bundle(BundleRefusal),
    /// A path the restore needs does not exist.
    MissingPath { what: &'static str, path: PathBuf },
    /// What `start` would write is not ckpt's own (said as the store says
    /// an unsafe path).
    Unsafe { path: PathBuf, reason: &'static str },
    /// The target runs (or is paused).
    TargetRunning { id: String },
    /// An imported checkpoint's spec asks for what its import's policy
    /// did not allow (or a hook, or an engine file of the source host).
    ImportPolicy { name: String, detail: String },
    /// `--tcp-close` for a restore Docker does: Docker passes no CRIU
    /// options through.
    TcpCloseDocker,
}

impl RestoreProblem {
    /// The exit code of a refusal whose first problem this is.
    pub fn exit_code(&self) -> u8 {
        match self {
            RestoreProblem::CriuTooOld { .. } | RestoreProblem::Unsafe { .. } => PREREQUISITE,
            RestoreProblem::UnknownRuntime { .. } | RestoreProblem::WrongContainer { .. } => FAILURE,
            RestoreProblem::Corrupt { .. } => CORRUPT,
            RestoreProblem::Bundle(BundleRefusal::Inconsistent(_)) => CORRUPT,
            RestoreProblem::Bundle(BundleRefusal::NoRootfs) | RestoreProblem::MissingPath { .. } => NOT_FOUND,
            RestoreProblem::Bundle(BundleRefusal::Changed { .. })
            | RestoreProblem::TargetRunning { .. }
            | RestoreProblem::ImportPolicy { .. } => REFUSED,
            RestoreProblem::TcpCloseDocker => USAGE,
        }
    }
}

impl fmt::Display for RestoreProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreProblem::CriuTooOld { name, made, installed } => write!(
                f,
                "checkpoint {name} was made by CRIU {made}, newer than the installed CRIU {installed}; install CRIU >= {made}"
            ),
            RestoreProblem::UnknownRuntime { name, runtime } => write!(
                f,
                "checkpoint {name} was made for runtime {runtime:?}, which this ckpt cannot restore"
            ),
            RestoreProblem::WrongContainer {
                name,
                made_from,
                target,
            } => write!(
                f,
                "checkpoint {name} was made from container {made_from}, not {target}; restore it into a copy of its own container with --name"
            ),
            RestoreProblem::Corrupt { dir, reason } => write!(
                f,
                "{}",
                StoreError::Corrupt {
                    dir: dir.clone(),
                    reason: reason.clone()
                }
            ),
            RestoreProblem::Unsafe { path, reason } => write!(
                f,
                "{}",
                StoreError::UnsafeStore {
                    path: path.clone(),
                    reason
                }
            ),
            RestoreProblem::Bundle(e) => write!(f, "{e}"),
            RestoreProblem::MissingPath { what, path } => write!(
                f,
                "{what} {} does not exist; the checkpoint needs it to restore",
                path.display()
            ),
            RestoreProblem::TargetRunning { id } => write!(
                f,
                "container {id} is running; stop it first, or restore the checkpoint as a new container with --name NEW_ID"
            ),
            RestoreProblem::TcpCloseDocker => write!(
                f,
                "--tcp-close cannot be used for a Docker container: Docker's start-with-checkpoint passes no CRIU options to its runtime"
            ),
            RestoreProblem::ImportPolicy { name, detail } => write!(
                f,
                "imported checkpoint {name} asks for {detail}, which its import did not allow; import it again, with the flag that allows it if you trust it"
            ),
        }
    }
}

/// Every reason a checkpoint cannot be restored as asked.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreRefusal {
    pub checkpoint: String,
    pub target: String,
    pub problems: Vec<RestoreProblem>,
}

impl RestoreRefusal {
    /// The first problem's exit code.
    pub fn exit_code(&self) -> u8 {
        self.problems.first().map_or(FAILURE, RestoreProblem::exit_code)
    }
}

impl std::error::Error for RestoreRefusal {}

impl fmt::Display for RestoreRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "{one}"),
            many => {
                write!(
                    f,
                    "cannot restore checkpoint {} into {} (nothing was changed):",
                    self.checkpoint, self.target
                )?;
                for p in many {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

/// The runtime that restores a checkpoint from ckpt's store, and its state
/// root, as `ckpt.json` recorded them (never `--runtime`/`--runtime-root`).
/// A Docker container's checkpoint found there is restored with runc, as
/// Docker runs it. `Err` names a runtime ckpt does not drive.
pub fn recorded_runtime(meta: &CheckpointMeta) -> Result<(RuntimeKind, RuntimeKind, PathBuf), String> {
    let kind = RuntimeKind::from_name(&meta.runtime).ok_or_else(|| meta.runtime.clone())?;
    let binary = match kind {
        RuntimeKind::Docker => RuntimeKind::Runc,
        other => other,
    };
    let root = match &meta.runtime_root {
        Some(root) => root.clone(),
        None => kind
            .default_roots()
            .first()
            .cloned()
            .ok_or_else(|| meta.runtime.clone())?,
    };
    Ok((kind, binary, root))
}

/// The paths whose presence [`RestoreFacts::present`] must say: the
/// recorded rootfs and every bind-mount source of the recorded spec.
pub fn paths_to_check(entry: &CheckpointEntry) -> Vec<PathBuf> {
    let Some(meta) = &entry.meta else { return Vec::new() };
    meta.rootfs
        .iter()
        .cloned()
        .chain(crate::spec::bind_sources(&meta.spec))
        .collect()
}

/// Plans the restore of `entry`, or refuses with every problem found.
pub fn restore_plan(
    entry: &CheckpointEntry,
    facts: &RestoreFacts,
    opts: &RestoreOptions,
) -> Result<RestorePlan, RestoreRefusal> {
    let target = opts.new_name.clone().unwrap_or_else(|| facts.target_name.clone());
    let mut problems = Vec::new();
    let meta = entry.meta.as_ref();
    if let (Some(meta), Some(installed)) = (meta, facts.criu) {
        if let Some(made) = CriuVersion::parse_plain(&meta.criu_version).filter(|made| *made > installed) {
            problems.push(RestoreProblem::CriuTooOld {
                name: meta.name.clone(),
                made,
                installed,
            });
        }
    }
    let how = match facts.restorer {
        Restorer::Oci => oci(entry, facts, opts, &mut problems),
        Restorer::Docker => {
            if opts.tcp_close {
                problems.push(RestoreProblem::TcpCloseDocker);
            }
            docker(entry, facts, &mut problems);
            Some(How::Docker {
                copy: opts.new_name.is_some(),
            })
        }
    };
    if let Some((path, reason)) = &facts.unsafe_target {
        problems.push(RestoreProblem::Unsafe {
            path: path.clone(),
            reason,
        });
    }
    let copy = matches!(how, Some(How::Docker { copy: true }));
    if facts.target == TargetState::Running && !copy {
        problems.push(RestoreProblem::TargetRunning {
            id: facts.target_name.clone(),
        });
    }
    match how {
        Some(how) if problems.is_empty() => Ok(RestorePlan {
            checkpoint: entry.name.clone(),
            images: entry.dir.clone(),
            target,
            options: meta.map(|m| recorded_options(&m.options)).unwrap_or_default(),
            how,
        }),
        _ => Err(RestoreRefusal {
            checkpoint: entry.name.clone(),
            target,
            problems,
        }),
    }
}

/// runc/crun: which runtime, which bundle, which paths must exist.
fn oci(
    entry: &CheckpointEntry,
    facts: &RestoreFacts,
    opts: &RestoreOptions,
    problems: &mut Vec<RestoreProblem>,
) -> Option<How> {
    let Some(meta) = &entry.meta else {
        // In ckpt's store every checkpoint has a ckpt.json.
        problems.push(RestoreProblem::Corrupt {
            dir: entry.dir.clone(),
            reason: format!("{META_FILE}: missing"),
        });
        return None;
    };
    let runtime = match recorded_runtime(meta) {
        Ok(r) => Some(r),
        Err(runtime) => {
            problems.push(RestoreProblem::UnknownRuntime {
                name: meta.name.clone(),
                runtime,
            });
            None
        }
    };
    let new_id = opts.new_name.is_some();
    let original = if new_id { None } else { facts.original_spec.as_ref() };
    // --tcp-close needs an annotation the original bundle lacks, and the
    // user's bundle is never written: a generated bundle, as for --name.
    let bundle = match choose_bundle(meta, new_id || opts.tcp_close, original) {
        Ok(choice) => {
            if let (BundleChoice::Generated(_), Some(rootfs)) = (&choice, &meta.rootfs) {
                if !facts.present.contains(rootfs) {
                    problems.push(RestoreProblem::MissingPath {
                        what: "root filesystem",
                        path: rootfs.clone(),
                    });
                }
            }
            Some(choice)
        }
        Err(BundleRefusal::Inconsistent(reason)) => {
            problems.push(RestoreProblem::Corrupt {
                dir: entry.dir.clone(),
                reason: format!("{META_FILE}: {reason}"),
            });
            None
        }
        Err(BundleRefusal::NoRootfs) => {
            problems.push(RestoreProblem::MissingPath {
                what: "root filesystem",
                path: PathBuf::from("(not recorded)"),
            });
            None
        }
        Err(refusal) => {
            problems.push(RestoreProblem::Bundle(refusal));
            None
        }
    };
    if let Some(record) = &meta.imported {
        imported_policy(entry, meta, record, problems);
    }
    // Every bind mount's source must exist, or CRIU fails half-way.
    for source in crate::spec::bind_sources(&meta.spec) {
        if !facts.present.contains(&source) {
            problems.push(RestoreProblem::MissingPath {
                what: "bind-mount source",
                path: source,
            });
        }
    }
    let (runtime, binary, root) = runtime?;
    Some(How::Oci {
        runtime,
        binary,
        root,
        bundle: bundle?,
        clear_target: matches!(facts.target, TargetState::Stopped | TargetState::Leftover),
        stdio: restored_stdio(&meta.descriptors),
        tcp_close: opts.tcp_close,
    })
}

/// An imported checkpoint runs only with what its import's policy
/// allowed: its spec is checked again with exactly the options recorded
/// at import. A hook or a refusal is a problem, and so is an engine file
/// bound from anywhere but the private files the import made
/// (`checkpoints/<name>/binds/`).
fn imported_policy(
    entry: &CheckpointEntry,
    meta: &CheckpointMeta,
    record: &crate::store::ImportRecord,
    problems: &mut Vec<RestoreProblem>,
) {
    use crate::archive::policy::{self, Action, PolicyOptions};
    let opts = PolicyOptions {
        allowed_bind_sources: record.allowed_bind_sources.clone(),
        allow_host_namespaces: record.allow_host_namespaces,
        allow_privileges: record.allow_privileges,
    };
    for f in policy::check_spec(&meta.spec, &opts) {
        if matches!(f.action, Action::Refuse | Action::Drop) {
            problems.push(RestoreProblem::ImportPolicy {
                name: meta.name.clone(),
                detail: f.detail,
            });
        }
    }
    let own = entry.dir.join(crate::store::layout::IMPORTED_BINDS);
    for (dest, source) in policy::engine_binds(&meta.spec) {
        if !source.starts_with(&own) {
            problems.push(RestoreProblem::ImportPolicy {
                name: meta.name.clone(),
                detail: format!(
                    "{dest} bound from {}, not from its own {}",
                    source.display(),
                    own.display()
                ),
            });
        }
    }
}

/// Docker: the checkpoint must be this container's, or CRIU's at least.
fn docker(entry: &CheckpointEntry, facts: &RestoreFacts, problems: &mut Vec<RestoreProblem>) {
    match &entry.meta {
        Some(meta) if meta.container_id != facts.home_id => problems.push(RestoreProblem::WrongContainer {
            name: meta.name.clone(),
            made_from: meta.container_id.clone(),
            target: facts.home_id.clone(),
        }),
        Some(_) => {}
        // Made by `docker checkpoint create`: no checksums to check, but
        // the images CRIU cannot restore without must be there.
        None => {
            if let Some(image) = facts.missing_image {
                problems.push(RestoreProblem::Corrupt {
                    dir: entry.dir.clone(),
                    reason: crate::store::listing::missing_image_reason(image),
                });
            }
        }
    }
}

/// The CRIU options recorded at dump, as the restore repeats them.
pub fn recorded_options(r: &crate::store::metadata::DumpOptionsRecord) -> DumpOptions {
    DumpOptions {
        leave_running: r.leave_running,
        tcp_established: r.tcp_established,
        file_locks: r.file_locks,
        ext_unix_sk: r.ext_unix_sk,
    }
}

#[cfg(test)]
#[path = "restore_tests.rs"]
mod tests;
