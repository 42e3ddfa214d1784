//! Everything Docker: the Engine API parsed and judged ([`api`], pure), the
//! HTTP client ([`client`]), one daemon's calls ([`daemon`]), and what
//! containerd leaves behind ([`containerd`]). Docker containers are found
//! by name, full id or unique id prefix through the Engine API; their runc
//! state is then read like any runc container's.

pub mod api;
pub mod client;
pub mod containerd;
pub mod daemon;

pub use api::{restore_blocker, ContainerView, DaemonInfo};
pub use client::DockerClient;
pub use daemon::Daemon;

use super::oci::runc;
use super::{Container, DockerMode, EngineError, RuntimeKind};
use crate::procfs::ProcRoot;

/// Errors talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("DOCKER_HOST={host} is not supported: {why}")]
    UnsupportedHost { host: String, why: String },
    #[error("cannot reach the Docker daemon at {host}: {reason} (is dockerd running? set DOCKER_HOST=unix:///path/to/docker.sock or tcp://HOST:PORT)")]
    Unreachable { host: String, reason: String },
    #[error("unexpected answer from the Docker daemon: {reason}")]
    Protocol { reason: String },
    #[error("Docker {action} failed: {message}")]
    Api {
        action: &'static str,
        status: u16,
        message: String,
    },
    #[error("the Docker daemon at {socket} is not in experimental mode, which checkpoint/restore needs; add \"experimental\": true to /etc/docker/daemon.json and restart dockerd")]
    NotExperimental { socket: String },
    #[error("Docker {version} cannot restore containers with their own network namespace (network mode {network_mode:?}): since 28.0 it sets up the network for pid 0 (containerd#12141). Use Docker 26.0.1 to 27.x, or a container with --network host")]
    BrokenRestore { version: String, network_mode: String },
    #[error("no Docker container {reference:?}")]
    NoSuchContainer { reference: String },
    #[error(
        "{reference:?} is the prefix of several Docker containers' ids ({message}); give more of the id, or the name"
    )]
    AmbiguousReference { reference: String, message: String },
}

/// A container Docker knows, with the daemon that knows it.
#[derive(Debug)]
pub struct DockerTarget {
    pub daemon: Daemon,
    pub view: ContainerView,
    /// The full `inspect` answer (used to create copies).
    pub raw: serde_json::Value,
}

/// Asks the daemon (see [`daemon::daemon`]) about `reference`; `None` when Docker
/// is not searched, not there in auto mode, or knows no such container.
pub fn find(mode: DockerMode, reference: &str) -> Result<Option<DockerTarget>, EngineError> {
    let Some(daemon) = daemon::daemon(mode)? else {
        return Ok(None);
    };
    Ok(daemon
        .inspect(reference)?
        .map(|(view, raw)| DockerTarget { daemon, view, raw }))
}

/// The running container's runc state, found through its shim.
pub fn running_container(proc: &ProcRoot, t: &DockerTarget) -> Result<Container, EngineError> {
    if !t.view.running || t.view.pid <= 0 {
        return Err(EngineError::NotRunning {
            id: t.view.name.clone(),
            status: "not running".into(),
        });
    }
    let root = containerd::runc_root_of(proc, t.view.pid).ok_or_else(|| EngineError::ParseState {
        path: proc.process(t.view.pid).dir().join("stat"),
        reason: format!(
            "cannot find the containerd shim and runc state of Docker container {}",
            t.view.name
        ),
    })?;
    let mut c = runc::load(&root, &t.view.id)?.ok_or_else(|| EngineError::ParseState {
        path: root.join(&t.view.id),
        reason: "Docker says the container runs but runc has no state for it".into(),
    })?;
    c.runtime = RuntimeKind::Docker;
    Ok(c)
}
