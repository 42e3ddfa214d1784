//! Docker containers: found by name, full id or unique id prefix through the
//! Engine API; their runc state is then read like any runc container's.

use super::{runc, Container, DiscoveryError, DockerMode, RuntimeKind};
use crate::docker::{ContainerView, Daemon, DockerError};
use crate::procfs::ProcRoot;

/// A container Docker knows, with the daemon that knows it.
#[derive(Debug)]
pub struct DockerTarget {
    pub daemon: Daemon,
    pub view: ContainerView,
    /// The full `inspect` answer (used to create copies).
    pub raw: serde_json::Value,
}

/// The daemon of `DOCKER_HOST` when `mode` searches Docker. The one place
/// that decides what an unusable daemon means: an error when Docker was
/// asked for (`--runtime docker`); in auto mode, no Docker containers, the
/// other runtimes are searched, and the reason is kept for the "no
/// container" message ([`skipped`]). A `DOCKER_HOST` the user set that is
/// unsupported or unreachable is also said once, as a warning.
pub fn daemon(mode: DockerMode) -> Result<Option<Daemon>, DockerError> {
    match mode {
        DockerMode::Off => Ok(None),
        DockerMode::Only => Daemon::connect().map(Some),
        DockerMode::Auto => match Daemon::connect() {
            Err(e @ (DockerError::Unreachable { .. } | DockerError::UnsupportedHost { .. })) => {
                note_skipped(&e);
                Ok(None)
            }
            other => other.map(Some),
        },
    }
}

static SKIPPED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn note_skipped(e: &DockerError) {
    let first = SKIPPED.get().is_none();
    let _ = SKIPPED.set(e.to_string());
    if !first {
        return;
    }
    // A DOCKER_HOST the user set is worth a warning; the default socket
    // missing is the normal state of a host without Docker.
    if matches!(e, DockerError::UnsupportedHost { .. }) || std::env::var_os("DOCKER_HOST").is_some() {
        log::warn!("{e}; Docker containers are not searched");
    } else {
        log::info!("{e}; Docker containers are not searched");
    }
}

/// Why Docker was not searched in auto mode during this command, if it was
/// not (for "no container" messages).
pub fn skipped() -> Option<&'static str> {
    SKIPPED.get().map(String::as_str)
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
pub fn running_container(proc: &ProcRoot, t: &DockerTarget) -> Result<Container, DiscoveryError> {
    if !t.view.running || t.view.pid <= 0 {
        return Err(DiscoveryError::NotRunning {
            id: t.view.name.clone(),
            status: "not running".into(),
        });
    }
    let root = crate::docker::runc_root_of(proc, t.view.pid).ok_or_else(|| DiscoveryError::ParseState {
        path: proc.process(t.view.pid).dir().join("stat"),
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
