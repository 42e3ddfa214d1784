//! The engine seam: commands talk to containers only through an
//! [`Engine`], the engine that manages one container, found by [`Engines`].
//! There are two: runc and crun through their state roots and binaries
//! ([`oci::OciEngine`]), and a Docker daemon ([`docker::DockerEngine`]);
//! tests use a fake (`engine::fake`).
//!
//! An engine owns what differs between them: where the checkpoints of its
//! container live ([`Engine::home`]), its own rules before a dump
//! ([`Engine::check_dump`]), how the container is stopped after one
//! ([`Engine::stop_after_dump`]), what a restore needs to know
//! ([`Engine::restore_facts`]), and how a restore is executed and undone
//! ([`Engine::prepare`], [`Engine::restore`], [`Engine::undo`]). What is
//! decided is decided in `plan`, from what the engine read; what is the
//! same for every engine (the order of the steps, when to undo) is the
//! commands'.
//!
//! Which engine a reference names is decided by one rule,
//! [`resolve::choose`]: two different containers answering to it are an
//! ambiguity, one container seen by two sources is not.

pub mod docker;
#[cfg(test)]
pub mod fake;
pub mod oci;
pub mod resolve;

pub use resolve::Resolver;

use crate::cgroups::FreezerDir;
use crate::criu::CriuVersion;
use crate::error::Error;
use crate::plan::restore::{RestoreFacts, RestoreOptions, RestorePlan};
use crate::procfs::ProcRoot;
use crate::store::{CheckpointEntry, Store, WorkDir};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Errors while looking up a container.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No runtime knows the id.
    #[error("no container {id:?} in {searched} (is it running? pass --runtime-root for another state root)")]
    NotFound { id: String, searched: String },
    /// More than one container answers to the reference.
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

/// Who manages a container: what `ckpt.json` records as `runtime`, and
/// what `inspect` shows.
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

/// Where the checkpoints of a container live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// A store root: ckpt's store, or `<DockerRootDir>/containers`.
    pub root: PathBuf,
    /// The container's id below it (Docker's full id).
    pub id: String,
    /// How messages name the container (Docker: its name).
    pub name: String,
    /// Whether checkpoints ckpt did not make live there (Docker's own
    /// directory); in ckpt's store one without `ckpt.json` is damaged.
    pub foreign: bool,
}

/// A running container and the engine that manages it.
pub struct Found {
    pub container: Container,
    pub engine: Box<dyn Engine>,
}

/// A store root `ls` lists when no container is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing {
    pub root: PathBuf,
    /// The `runtime` of rows whose checkpoint does not say (Docker's own).
    pub runtime: Option<&'static str>,
    /// Whether failing to list it fails `ls` (else it is a warning).
    pub required: bool,
}

/// What a restore put in place before it ran, and what undoing removes.
#[derive(Debug)]
pub struct Prepared {
    /// The id restored into (for a Docker copy, its new full id).
    pub id: String,
    /// How messages name it.
    pub name: String,
    /// The engine made this container for the restore (a Docker copy).
    pub created: bool,
    /// runc/crun: the bundle the runtime restores from.
    pub bundle: Option<PathBuf>,
    /// runc/crun: the restore's work directory, removed on drop.
    pub work: Option<WorkDir>,
}

/// A restore the engine reports as done.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub restore_ms: u64,
    /// CRIU's log of the restore, when ckpt has one (runc/crun).
    pub restore_log: Option<String>,
    /// CRIU's `stats-restore`, when ckpt can read it (runc/crun: from the
    /// restore's work dir; Docker's CRIU runs in containerd's shim, whose
    /// work dir ckpt never sees).
    pub criu_stats: Option<crate::criu::stats::RestoreStats>,
    pub report: Report,
}

/// What the engine's restore adds to `start`'s output.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// runc/crun: the runtime, and where the container's output goes.
    Oci { runtime: RuntimeKind, output_log: PathBuf },
    /// Docker: retries of its stale-content error.
    Docker { retries: u32 },
}

/// Why a restore is being undone.
#[derive(Debug)]
pub struct Undo {
    /// The restore failed so.
    pub failure: Option<Error>,
    /// A signal asked ckpt to stop.
    pub signal: Option<i32>,
}

/// The engine that manages one container (see the module docs).
pub trait Engine {
    /// Where this container's checkpoints live.
    fn home(&self) -> Home;

    /// The engine's own rules before a dump of this container into
    /// checkpoint `name` (Docker's checkpoint names; whether it could
    /// restore a container `create` would stop). Warns of what does not
    /// refuse.
    fn check_dump(&self, name: &str, leave_running: bool) -> Result<(), Error>;

    /// Whether the engine itself records the container as paused now
    /// (Docker does, and its record decides); `None` when it keeps no record.
    fn recorded_pause(&self) -> Option<bool>;

    /// Stops `container` after its checkpoint is published: kills its
    /// (frozen) tasks, thaws them so the kill lands, waits for init to go,
    /// and frees the id for a restore, as `runc checkpoint` does.
    fn stop_after_dump(&self, container: &Container, freezer: &FreezerDir) -> Result<(), Error>;

    /// Whether a restore runs in ckpt's own children, which must finish or
    /// be undone, so that `start` remembers SIGINT, SIGTERM and SIGHUP
    /// instead of dying of them (runc/crun); Docker's runs in dockerd.
    fn defers_signals(&self) -> bool;

    /// The id in the store, besides the source's, that a restore with
    /// `opts` writes under and so must lock: runc/crun's target. Docker's
    /// copy gets its id only when Docker creates it.
    fn target_lock_id(&self, opts: &RestoreOptions) -> Option<String>;

    /// The engine's prerequisites of any restore (Docker: experimental mode,
    /// a version that can restore this container's network).
    fn check_restore(&self, opts: &RestoreOptions) -> Result<(), Error>;

    /// What the restore plan needs to know, reading only: the target as
    /// the engine sees it, the original bundle, the paths the restore
    /// needs, what `start` would write. `criu` is the installed CRIU's
    /// version, when it was looked for.
    fn restore_facts(
        &self,
        store: &Store,
        entry: &CheckpointEntry,
        opts: &RestoreOptions,
        criu: Option<CriuVersion>,
    ) -> Result<RestoreFacts, Error>;

    /// Puts in place what `plan` needs before the restore: the generated
    /// bundle and the removal of a stopped target's leftovers (runc/crun),
    /// the copy of the container and its checkpoint (Docker `--name`).
    fn prepare(&self, store: &Store, entry: &CheckpointEntry, plan: &RestorePlan) -> Result<Prepared, Error>;

    /// Restores the prepared target from the checkpoint.
    fn restore(&self, store: &Store, plan: &RestorePlan, prepared: &Prepared) -> Result<Restored, Error>;

    /// The host pid of the restored init.
    fn restored_init(&self, plan: &RestorePlan, prepared: &Prepared) -> Result<i32, Error>;

    /// Undoes a restore that failed or is interrupted, completely, and
    /// returns the error that says why and in which state it left things.
    fn undo(&self, store: &Store, plan: &RestorePlan, prepared: &Prepared, why: Undo) -> Error;

    /// What an export of `entry` needs to know, reading only: does the
    /// container run now, where its root filesystem is.
    fn export_facts(&self, entry: &CheckpointEntry) -> Result<crate::plan::export::ExportFacts, Error>;
}

/// The engines a command may talk to: how a reference is resolved among
/// them (the real one is [`Resolver`]).
pub trait Engines {
    /// The running container `reference` names, with its engine.
    fn running(&self, reference: &str) -> Result<Found, Error>;

    /// The engine whose home holds the checkpoints of `reference`: Docker's
    /// when Docker knows it, ckpt's store (restored by runc or crun)
    /// otherwise.
    fn home(&self, reference: &str) -> Result<Box<dyn Engine>, Error>;

    /// Every store root `ls` lists when no container is given.
    fn listings(&self) -> Result<Vec<Listing>, Error>;

    /// Every running or paused container the searched state roots hold
    /// (`create --all`/`--latest`), each to be found again by its id with
    /// [`Engines::running`]. Docker's containers are listed by the runc
    /// root Docker runs them in.
    fn running_all(&self) -> Result<Vec<crate::plan::select::Listed>, Error>;
}

/// Kills every task of the (frozen) container, thaws it so the kill lands,
/// and waits until its init is gone: the first half of
/// [`Engine::stop_after_dump`], the same for every engine.
pub fn kill_frozen(proc: &ProcRoot, c: &Container, freezer: &FreezerDir) -> Result<(), Error> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for pid in crate::freezer::pids(freezer)? {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(c.init_pid), Signal::SIGKILL);
    // Thaw even a container the user had paused: frozen tasks do not act
    // on SIGKILL, and stopping it is what the user asked for.
    crate::freezer::thaw(freezer, Duration::from_secs(10))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Exited once gone, reaped or a zombie (its reaper is not ours to wait for).
    while oci::liveness(proc, c) == Status::Running {
        if Instant::now() > deadline {
            return Err(Error::StillRunning { pid: c.init_pid });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// The first existing directory at or above `path` (where a store that
/// does not exist yet would be made), for free-space questions.
pub fn existing_ancestor(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}
