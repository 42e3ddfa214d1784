//! Docker containers: found by name, full id or unique id prefix through the
//! Engine API; their runc state is then read like any runc container's.

use super::{runc, Container, DiscoveryError, DockerMode, RuntimeKind};
use crate::docker::{ContainerView, Daemon, DockerError};
use std::path::Path;

/// A container Docker knows, with the daemon that knows it.
#[derive(Debug)]
pub struct DockerTarget {
    pub daemon: Daemon,
    pub view: ContainerView,
    /// The full `inspect` answer (used to create copies).
    pub raw: serde_json::Value,
}

/// The daemon of `DOCKER_HOST` when `mode` searches Docker. The one place
/// that decides what an unreachable daemon means: nothing in auto mode
/// (no Docker containers here), an error when Docker was asked for.
pub fn daemon(mode: DockerMode) -> Result<Option<Daemon>, DockerError> {
    match mode {
        DockerMode::Off => Ok(None),
        DockerMode::Only => Daemon::connect().map(Some),
        DockerMode::Auto => match Daemon::connect() {
            Err(DockerError::Unreachable { .. }) => Ok(None),
            other => other.map(Some),
        },
    }
}

/// Asks the daemon (see [`daemon`]) about `reference`; `None` when Docker
/// is not searched, not there in auto mode, or knows no such container.
pub fn find(mode: DockerMode, reference: &str) -> Result<Option<DockerTarget>, DiscoveryError> {
    let Some(daemon) = daemon(mode)? else { return Ok(None) };
    Ok(daemon
        .inspect(reference)?
        .map(|(view, raw)| DockerTarget { daemon, view, raw }))
}

/// The running container's runc state, found through its shim.
pub fn running_container(proc_root: &Path, t: &DockerTarget) -> Result<Container, DiscoveryError> {
    if !t.view.running || t.view.pid <= 0 {
        return Err(DiscoveryError::NotRunning {
            id: t.view.name.clone(),
            status: "not running".into(),
        });
    }
    let root = crate::docker::runc_root_of(proc_root, t.view.pid).ok_or_else(|| DiscoveryError::ParseState {
        path: proc_root.join(format!("{}/stat", t.view.pid)),
        reason: format!(
            "cannot find the containerd shim and runc state of Docker container {}",
            t.view.name
        ),
    })?;
    let mut c = runc::load(&root, &t.view.id)?.ok_or_else(|| DiscoveryError::ParseState {
        path: root.join(&t.view.id),
        reason: "Docker says the container runs but runc has no state for it".into(),
    })?;
    c.runtime = RuntimeKind::Docker;
    Ok(c)
}
