//! The engines that manage containers: runc and crun ([`oci`]) and Docker
//! ([`docker`]). Finding a container: its runtime, init process, bundle,
//! rootfs and cgroups.
//!
//! Each runtime module parses its own state file into a [`Container`] with
//! pure functions; this module searches the state roots and checks that the
//! recorded init pid is still the same process (pid reuse). Nothing here
//! changes the container.

pub mod docker;
pub mod oci;

use oci::{crun, runc};

use crate::procfs::ProcRoot;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Errors while looking up a container.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No runtime knows the id.
    #[error("no container {id:?} in {searched} (is it running? pass --runtime-root for another state root)")]
    NotFound { id: String, searched: String },
    /// More than one runtime knows the id.
    #[error(
        "container id {id:?} is known to several runtimes ({candidates}); pick one with --runtime or --runtime-root"
    )]
    Ambiguous { id: String, candidates: String },
    /// The container exists but is not running.
    #[error("container {id} is {status}, not running; only running containers can be checkpointed")]
    NotRunning { id: String, status: String },
    /// The recorded init pid now belongs to another process.
    #[error("container {id}'s init process {pid} has exited and the pid was reused (start time {expected} recorded, {found} now); the container is stopped")]
    PidReused {
        id: String,
        pid: i32,
        expected: u64,
        found: u64,
    },
    /// A state file could not be read.
    #[error("cannot read container state {path}")]
    ReadState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state file is malformed.
    #[error("cannot parse container state {path}: {reason}")]
    ParseState { path: PathBuf, reason: String },
    /// Talking to Docker failed.
    #[error(transparent)]
    Docker(#[from] docker::DockerError),
}

/// The runtime managing a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    Runc,
    Crun,
    /// Docker (through its Engine API), running the container with runc.
    Docker,
}

impl RuntimeKind {
    /// The runtime's binary and its name in messages and metadata.
    pub fn name(self) -> &'static str {
        match self {
            RuntimeKind::Runc => "runc",
            RuntimeKind::Crun => "crun",
            RuntimeKind::Docker => "docker",
        }
    }

    /// Parses a name from metadata.
    pub fn from_name(name: &str) -> Option<RuntimeKind> {
        match name {
            "runc" => Some(RuntimeKind::Runc),
            "crun" => Some(RuntimeKind::Crun),
            "docker" => Some(RuntimeKind::Docker),
            _ => None,
        }
    }

    /// The state roots searched by default.
    pub fn default_roots(self) -> Vec<PathBuf> {
        match self {
            RuntimeKind::Runc => vec![
                PathBuf::from("/run/runc"),
                PathBuf::from("/run/docker/runtime-runc/moby"),
                PathBuf::from("/run/containerd/runc/default"),
                PathBuf::from("/run/containerd/runc/k8s.io"),
            ],
            RuntimeKind::Crun => vec![PathBuf::from("/run/crun")],
            // Found through the daemon, never by scanning.
            RuntimeKind::Docker => vec![],
        }
    }
}

/// Whether the runtime considers the container running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Running,
    Paused,
    Stopped,
}

/// What ckpt knows about a container from its runtime's state.
#[derive(Debug, Clone, Serialize)]
pub struct Container {
    pub id: String,
    pub runtime: RuntimeKind,
    /// The state root the container was found in (`runc --root`).
    pub runtime_root: PathBuf,
    /// Init pid on the host.
    pub init_pid: i32,
    /// Init start time in clock ticks since boot (field 22 of stat).
    pub init_start: u64,
    pub bundle: PathBuf,
    /// Absolute root filesystem path on the host.
    pub rootfs: PathBuf,
    /// Path of the OCI spec the container was created from.
    pub spec_path: PathBuf,
    /// Init's stdio as recorded at start (`pipe:[N]`, `/dev/null`, ...).
    pub external_descriptors: Vec<String>,
    /// Controller → absolute cgroup directory, from the state file.
    pub cgroup_paths: BTreeMap<String, PathBuf>,
}

/// Where to look for containers.
#[derive(Debug, Clone)]
pub struct SearchRoots {
    pub roots: Vec<(RuntimeKind, PathBuf)>,
}

impl SearchRoots {
    /// The roots for `--runtime` and `--runtime-root`. An explicit root is
    /// searched for the chosen runtime, or for both when `auto`.
    pub fn new(runtime: Option<RuntimeKind>, explicit: &[PathBuf]) -> SearchRoots {
        let kinds: Vec<RuntimeKind> = match runtime {
            Some(k) => vec![k],
            None => vec![RuntimeKind::Runc, RuntimeKind::Crun],
        };
        let mut roots = Vec::new();
        for kind in kinds {
            if explicit.is_empty() {
                roots.extend(kind.default_roots().into_iter().map(|r| (kind, r)));
            } else {
                roots.extend(explicit.iter().map(|r| (kind, r.clone())));
            }
        }
        SearchRoots { roots }
    }
}

/// A found container and the runtime's view of its status.
#[derive(Debug, Clone)]
pub struct Found {
    pub container: Container,
    pub status: Status,
}

/// Looks `id` up in every root. `Ok(None)` when no runtime knows it.
pub fn lookup(roots: &SearchRoots, proc: &ProcRoot, id: &str) -> Result<Option<Found>, EngineError> {
    let mut found: Vec<Found> = Vec::new();
    for (kind, root) in &roots.roots {
        let dir = root.join(id);
        // A runtime state dir must be a real directory named exactly `id`.
        if !dir.is_dir() {
            continue;
        }
        let container = match kind {
            RuntimeKind::Runc | RuntimeKind::Docker => runc::load(root, id)?,
            RuntimeKind::Crun => crun::load(root, id)?,
        };
        let Some(container) = container else { continue };
        let status = liveness(proc, &container);
        found.push(Found { container, status });
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(EngineError::Ambiguous {
            id: id.to_string(),
            candidates: found
                .iter()
                .map(|f| {
                    format!(
                        "{} in {}",
                        f.container.runtime.name(),
                        f.container.runtime_root.display()
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The container of a lookup, if it is running; otherwise why not.
pub fn require_running(found: Found, proc: &ProcRoot) -> Result<Container, EngineError> {
    let c = found.container;
    match found.status {
        Status::Running | Status::Paused => Ok(c),
        Status::Stopped => match proc.process(c.init_pid).stat().ok().and_then(|s| s.start_time) {
            Some(now) if now != c.init_start => Err(EngineError::PidReused {
                id: c.id,
                pid: c.init_pid,
                expected: c.init_start,
                found: now,
            }),
            _ => Err(EngineError::NotRunning {
                id: c.id,
                status: "stopped".into(),
            }),
        },
    }
}

/// Resolves `reference` to a running container: its runtime state, and the
/// Docker target when Docker manages it.
pub fn find_running(
    roots: &SearchRoots,
    mode: DockerMode,
    proc: &ProcRoot,
    reference: &str,
) -> Result<(Container, Option<docker::DockerTarget>), EngineError> {
    match resolve(roots, mode, proc, reference)? {
        Some(Target::Oci(found)) => Ok((require_running(found, proc)?, None)),
        Some(Target::Docker(t)) => Ok((docker::running_container(proc, &t)?, Some(*t))),
        None => Err(EngineError::NotFound {
            id: reference.to_string(),
            searched: describe(roots, mode),
        }),
    }
}

/// Where a lookup searched, for messages.
pub fn describe(roots: &SearchRoots, mode: DockerMode) -> String {
    let mut s = describe_roots(roots);
    if mode != DockerMode::Off {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| crate::engine::docker::client::DEFAULT_HOST.into());
        let docker = match docker::daemon::skipped() {
            Some(why) => format!("Docker ({host}), which could not be asked: {why}"),
            None => format!("Docker ({host})"),
        };
        if s.is_empty() {
            s = docker;
        } else {
            s.push_str(&format!(" and {docker}"));
        }
    }
    s
}

/// The roots as one line for messages.
pub fn describe_roots(roots: &SearchRoots) -> String {
    let mut seen: Vec<String> = Vec::new();
    for (_, r) in &roots.roots {
        let s = r.display().to_string();
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join(", ")
}

/// Whether to look for Docker containers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerMode {
    /// `--runtime runc|crun`: never.
    Off,
    /// `--runtime auto`: when the daemon answers.
    Auto,
    /// `--runtime docker`: only Docker; an unreachable daemon is an error.
    Only,
}

/// A container found by [`resolve`].
#[derive(Debug)]
pub enum Target {
    /// A runc or crun container, by id.
    Oci(Found),
    /// A Docker container, by name, id or id prefix.
    Docker(Box<docker::DockerTarget>),
}

/// Finds `reference` among OCI runtimes and Docker. A Docker container is
/// also visible in Docker's runc root; that is the same container, not an
/// ambiguity. Two different containers answering to the reference are.
pub fn resolve(
    roots: &SearchRoots,
    mode: DockerMode,
    proc: &ProcRoot,
    reference: &str,
) -> Result<Option<Target>, EngineError> {
    let oci = if mode == DockerMode::Only {
        None
    } else {
        lookup(roots, proc, reference)?
    };
    let docker = docker::find(mode, reference)?;
    match (oci, docker) {
        (Some(o), Some(d)) if o.container.id != d.view.id => Err(EngineError::Ambiguous {
            id: reference.to_string(),
            candidates: format!(
                "{} container {} in {}, Docker container {} ({})",
                o.container.runtime.name(),
                o.container.id,
                o.container.runtime_root.display(),
                d.view.name,
                &d.view.id[..12.min(d.view.id.len())]
            ),
        }),
        (_, Some(d)) => {
            log::info!("{reference} is Docker container {} ({})", d.view.name, d.view.id);
            Ok(Some(Target::Docker(Box::new(d))))
        }
        (Some(o), None) => Ok(Some(Target::Oci(o))),
        (None, None) => Ok(None),
    }
}

/// Running when the init pid is alive, not a zombie, and started at the
/// recorded time (otherwise the pid was reused by another process).
pub fn liveness(proc: &ProcRoot, c: &Container) -> Status {
    match proc.process(c.init_pid).stat() {
        Ok(s) if s.start_time == Some(c.init_start) && !s.is_dead() => Status::Running,
        _ => Status::Stopped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_roots_replace_defaults() {
        let r = SearchRoots::new(Some(RuntimeKind::Runc), &[PathBuf::from("/x")]);
        assert_eq!(r.roots, vec![(RuntimeKind::Runc, PathBuf::from("/x"))]);
        let r = SearchRoots::new(None, &[]);
        assert!(r.roots.contains(&(RuntimeKind::Crun, PathBuf::from("/run/crun"))));
        assert!(r.roots.contains(&(RuntimeKind::Runc, PathBuf::from("/run/runc"))));
    }

    fn fixture_container(pid: i32, start: u64) -> Container {
        Container {
            id: "c".into(),
            runtime: RuntimeKind::Runc,
            runtime_root: "/run/runc".into(),
            init_pid: pid,
            init_start: start,
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            spec_path: "/b/config.json".into(),
            external_descriptors: vec![],
            cgroup_paths: BTreeMap::new(),
        }
    }

    #[test]
    fn liveness_detects_reuse_and_zombies() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("42");
        std::fs::create_dir(&p).unwrap();
        let stat =
            |state: &str, start: u64| format!("42 (sh) {state} 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0");
        std::fs::write(p.join("stat"), stat("S", 100)).unwrap();
        let proc = ProcRoot::new(dir.path());
        assert_eq!(liveness(&proc, &fixture_container(42, 100)), Status::Running);
        assert_eq!(liveness(&proc, &fixture_container(42, 99)), Status::Stopped);
        std::fs::write(p.join("stat"), stat("Z", 100)).unwrap();
        assert_eq!(liveness(&proc, &fixture_container(42, 100)), Status::Stopped);
        assert_eq!(liveness(&proc, &fixture_container(43, 100)), Status::Stopped);
    }
}
