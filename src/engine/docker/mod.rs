//! Everything Docker: the Engine API parsed and judged ([`api`], pure), the
//! HTTP client ([`client`]), one daemon's calls ([`daemon`]), what
//! containerd leaves behind ([`containerd`]), and [`DockerEngine`], the
//! engine of one Docker container. Docker containers are found by name,
//! full id or unique id prefix through the Engine API; their runc state is
//! then read like any runc container's.
//!
//! Restores go through the Engine API's start-with-checkpoint so that
//! Docker keeps managing the container (`docker ps`, `docker stop`). ckpt
//! adds what Docker lacks: it checks the checkpoint first, refuses Docker
//! versions known to break the restore, retries Docker's intermittent
//! stale-content error, removes the full-size copy containerd leaves in its
//! temp dir, and confirms that the saved processes really came back.

pub mod api;
pub mod client;
pub mod containerd;
pub mod daemon;

pub use api::{restore_blocker, ContainerView, DaemonInfo};
pub use client::DockerClient;
pub use daemon::Daemon;

use super::oci::runc;
use super::{Container, DockerMode, Engine, EngineError, Home, Prepared, Report, Restored, RuntimeKind, Undo};
use crate::cgroups::FreezerDir;
use crate::criu::CriuVersion;
use crate::error::Error;
use crate::plan::restore::{How, RestoreFacts, RestoreOptions, RestorePlan, Restorer, TargetState};
use crate::procfs::ProcRoot;
use crate::store::{names, CheckpointEntry, Store};
use std::time::Duration;

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
fn running_container(proc: &ProcRoot, t: &DockerTarget) -> Result<Container, EngineError> {
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

/// The engine of one Docker container.
#[derive(Debug)]
pub struct DockerEngine {
    proc: ProcRoot,
    target: DockerTarget,
}

impl DockerEngine {
    pub fn new(proc: &ProcRoot, target: DockerTarget) -> DockerEngine {
        DockerEngine {
            proc: proc.clone(),
            target,
        }
    }

    /// The running container's runc state, found through its shim.
    pub fn running_container(&self) -> Result<Container, EngineError> {
        running_container(&self.proc, &self.target)
    }

    fn daemon(&self) -> &Daemon {
        &self.target.daemon
    }

    fn view(&self) -> &ContainerView {
        &self.target.view
    }
}

impl Engine for DockerEngine {
    /// Docker only restores checkpoints from its own directory.
    fn home(&self) -> Home {
        Home {
            root: self.daemon().store_root(),
            id: self.view().id.clone(),
            name: self.view().name.clone(),
            foreign: true,
        }
    }

    fn check_dump(&self, name: &str, leave_running: bool) -> Result<(), Error> {
        names::validate_docker_checkpoint_name(name)?;
        let view = self.view();
        if let Some(blocker) = restore_blocker(&self.daemon().info.version, &view.network_mode, view.network_disabled) {
            if !leave_running {
                // Stopping a container this Docker cannot restore would lose it.
                return Err(Error::from(blocker).context(format!(
                    "refusing to stop {} for a checkpoint it could not be restored from",
                    view.name
                )));
            }
            log::warn!("{blocker}");
        }
        Ok(())
    }

    /// Docker records a pause itself; its record decides.
    fn recorded_pause(&self) -> Option<bool> {
        match self.daemon().inspect(&self.view().id) {
            Ok(Some((view, _))) => Some(view.paused),
            _ => None,
        }
    }

    /// containerd reaps the task and Docker marks the container exited, as
    /// after `docker checkpoint create`; wait so a start can follow.
    fn stop_after_dump(&self, c: &Container, freezer: &FreezerDir) -> Result<(), Error> {
        super::kill_frozen(&self.proc, c, freezer)?;
        self.daemon().wait_stopped(&c.id, Duration::from_secs(10))?;
        Ok(())
    }

    fn defers_signals(&self) -> bool {
        false
    }

    fn target_lock_id(&self, _opts: &RestoreOptions) -> Option<String> {
        None
    }

    fn check_restore(&self, opts: &RestoreOptions) -> Result<(), Error> {
        self.daemon().require_experimental()?;
        // A `--name` copy is created without NetworkDisabled
        // (create_body_from drops it), so Docker sets up its network even
        // where the original has none.
        let view = self.view();
        let network_disabled = view.network_disabled && opts.new_name.is_none();
        match restore_blocker(&self.daemon().info.version, &view.network_mode, network_disabled) {
            Some(blocker) => Err(blocker.into()),
            None => Ok(()),
        }
    }

    fn restore_facts(
        &self,
        _store: &Store,
        entry: &CheckpointEntry,
        opts: &RestoreOptions,
        criu: Option<CriuVersion>,
    ) -> Result<RestoreFacts, Error> {
        let view = self.view();
        Ok(RestoreFacts {
            restorer: Restorer::Docker,
            criu,
            home_id: view.id.clone(),
            target_name: view.name.clone(),
            target: match (&opts.new_name, view.running) {
                (Some(_), _) => TargetState::Absent,
                (None, true) => TargetState::Running,
                (None, false) => TargetState::Stopped,
            },
            original_spec: None,
            present: Default::default(),
            unsafe_target: None,
            missing_image: match entry.meta {
                Some(_) => None,
                None => crate::store::listing::missing_core_image(&entry.dir),
            },
        })
    }

    /// For `--name`: a new container with the source's config, and the
    /// checkpoint copied into its directory (the container is removed again
    /// if the copy fails).
    fn prepare(&self, store: &Store, entry: &CheckpointEntry, plan: &RestorePlan) -> Result<Prepared, Error> {
        let view = self.view();
        if plan.how != (How::Docker { copy: true }) {
            return Ok(Prepared {
                id: view.id.clone(),
                name: view.name.clone(),
                created: false,
                bundle: None,
                work: None,
            });
        }
        let new = &plan.target;
        let id = self.daemon().create_like(&self.target.raw, new)?;
        log::info!("created Docker container {new} ({id}) with the config of {}", view.name);
        if let Err(e) = store.copy_checkpoint(entry, &id) {
            let _ = self.daemon().remove(&id);
            return Err(e.into());
        }
        Ok(Prepared {
            id,
            name: new.clone(),
            created: true,
            bundle: None,
            work: None,
        })
    }

    fn restore(&self, _store: &Store, plan: &RestorePlan, prepared: &Prepared) -> Result<Restored, Error> {
        let temp_dirs = containerd::temp_dirs(&self.proc);
        let before = containerd::checkpoint_copies(&temp_dirs);
        let started = std::time::Instant::now();
        let result = self.daemon().start_from_checkpoint(&prepared.id, &plan.checkpoint);
        // containerd 1.7 leaves a full copy of the images behind on every
        // start-with-checkpoint; ckpt does not. Only copies of *this*
        // checkpoint are removed: another restore may be using its own.
        let ours = containerd::image_signature(&plan.images);
        for leftover in containerd::checkpoint_copies(&temp_dirs).difference(&before) {
            if containerd::image_signature(leftover) == ours {
                log::info!("removing containerd's leftover copy {}", leftover.display());
                // containerd's plain copy has no mounts; should one be there,
                // remove_tree stops at it instead of deleting what it shows.
                if let Err(e) = crate::mounts::remove_tree(leftover) {
                    log::warn!("cannot remove {}: {e}", leftover.display());
                }
            }
        }
        let retries = result?;
        Ok(Restored {
            restore_ms: started.elapsed().as_millis() as u64,
            restore_log: None,
            criu_stats: None,
            report: Report::Docker { retries },
        })
    }

    fn restored_init(&self, _plan: &RestorePlan, prepared: &Prepared) -> Result<i32, Error> {
        let (view, _) = self.daemon().inspect(&prepared.id)?.ok_or_else(|| Error::Vanished {
            name: prepared.name.clone(),
        })?;
        Ok(view.pid)
    }

    /// Removes the copy this restore made, if it made one; Docker undoes
    /// its own failed start.
    /// Not built yet: a Docker container's writable layer and its create
    /// body (docs/archive-format.md, "Docker's writable layer").
    fn export_facts(&self, _entry: &CheckpointEntry) -> Result<crate::plan::export::ExportFacts, Error> {
        Err(crate::plan::export::ExportProblem::Unsupported {
            id: self.home().name,
            what: "Docker containers (their writable layer and create body)".into(),
        }
        .into())
    }

    fn undo(&self, _store: &Store, _plan: &RestorePlan, prepared: &Prepared, why: Undo) -> Error {
        if prepared.created {
            let _ = self.daemon().remove(&prepared.id);
        }
        let message = format!("container {} was not started", prepared.name);
        match (why.failure, why.signal) {
            (Some(e), _) => e.context(message),
            (None, Some(sig)) => Error::from(crate::interrupt::Interrupted(sig)).context(message),
            (None, None) => Error::RestoreUndone {
                detail: format!(": {message}"),
            },
        }
    }
}
