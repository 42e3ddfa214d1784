//! ckpt's one top-level error type, and what each failure means to a
//! script: its exit code.
//!
//! Every module keeps its own `thiserror` enum, whose variants name the
//! step; [`Error`] wraps each of them, adds the failures only a command
//! can see (a refusal, a target that runs, a restore that did not resume),
//! and [`Error::Context`] for a sentence said above another error ("container
//! web was not changed and keeps running"). [`Error::exit_code`] decides the
//! code from the variants themselves, never from the message: adding context
//! cannot change a code, because a context's code is its source's.
//!
//! The codes are documented in `ckpt --help` and docs/usage.md (EXIT
//! STATUS); the table test below pins every one of them. Keep the three in
//! step.

use crate::archive::ArchiveError;
use crate::chunks::ChunkError;
use crate::criu::crit::CritError;
use crate::criu::CriuError;
use crate::engine::docker::DockerError;
use crate::engine::oci::runtime::RuntimeError;
use crate::engine::oci::undo::CleanupError;
use crate::engine::EngineError;
use crate::facts::FactsError;
use crate::freezer::FreezerError;
use crate::interrupt::Interrupted;
use crate::inventory::InventoryError;
use crate::mounts::MountError;
use crate::plan::restore::RestoreRefusal;
use crate::procfs::ProcError;
use crate::spec::SpecError;
use crate::store::checkpoint_dir::CheckpointDirError;
use crate::store::StoreError;
use std::path::PathBuf;

/// The command did what was asked.
pub const SUCCESS: u8 = 0;
/// Anything without a more specific code.
pub const FAILURE: u8 = 1;
/// Invalid command line, name or id; a reference naming two containers.
pub const USAGE: u8 = 2;
/// Refused (preflight, inspect's verdict, a running target, a changed bundle).
pub const REFUSED: u8 = 3;
/// No such container or checkpoint, or a path a restore needs is missing.
pub const NOT_FOUND: u8 = 4;
/// Not root, CRIU or a runtime missing or too old, an unsafe store, no Docker.
pub const PREREQUISITE: u8 = 5;
/// CRIU failed or made no progress; the container was left running.
pub const CRIU_FAILED: u8 = 6;
/// A checkpoint does not match its checksums or metadata.
pub const CORRUPT: u8 = 7;
/// Another ckpt holds the container's lock.
pub const BUSY: u8 = 8;
/// Interrupted by signal N: 128 + N.
pub const INTERRUPTED_BASE: u8 = 128;

/// Every way a ckpt command can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Discovery(#[from] EngineError),
    /// A `--checkpoint-dir` refused (relative, `..`, ambiguous, Docker's).
    #[error(transparent)]
    CheckpointDir(#[from] CheckpointDirError),
    #[error(transparent)]
    Docker(#[from] DockerError),
    #[error(transparent)]
    Criu(#[from] CriuError),
    /// Reading a foreign checkpoint's images with crit.
    #[error(transparent)]
    Crit(#[from] CritError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Cleanup(#[from] CleanupError),
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Facts(#[from] FactsError),
    #[error(transparent)]
    Freezer(#[from] FreezerError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error(transparent)]
    Proc(#[from] ProcError),
    /// A JSON value ckpt writes could not be made (a path that is not UTF-8).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Reading or writing a checkpoint archive.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// A signal stopped the command.
    #[error(transparent)]
    Interrupted(#[from] Interrupted),

    /// The chunk store of an incremental checkpoint failed at `step`
    /// (`store the pages of`, `reassemble`, `verify the chunks of`, ...).
    #[error("cannot {step} checkpoint {checkpoint} of {container}")]
    Chunks {
        step: &'static str,
        container: String,
        checkpoint: String,
        #[source]
        source: Box<ChunkError>,
    },

    /// The preflight's refusal of `create`, with the container named.
    #[error("cannot checkpoint container {id} (nothing was frozen or changed):\n  {}", .refusal.to_string().replace('\n', "\n  "))]
    Refused { id: String, refusal: crate::plan::Refusal },
    /// `inspect` found reasons to refuse a checkpoint (already printed).
    #[error("the container cannot be checkpointed as is ({count} problem(s) above)")]
    NotCheckpointable { count: usize },
    /// An export refused by its plan.
    #[error(transparent)]
    Export(#[from] crate::plan::export::ExportProblem),
    /// An import refused by its plan, with every problem.
    #[error(transparent)]
    ImportRefused(#[from] crate::plan::import::ImportRefusal),
    /// `verify --all` found damaged checkpoints (each listed above).
    #[error("{damaged} of {total} checkpoint(s) are damaged (see above)")]
    Damaged { damaged: usize, total: usize },
    /// Flags that do not go together.
    #[error("{message}")]
    Usage { message: String },
    /// A retention policy that keeps nothing or says nothing
    /// (`prune`, `create --retain`).
    #[error(transparent)]
    Retention(#[from] crate::chunks::retention::PolicyError),
    /// A restore refused by its plan, with every problem.
    #[error(transparent)]
    RestoreRefused(#[from] RestoreRefusal),
    /// `create --all`/`--latest`: some containers were not checkpointed
    /// (each one's error was printed); `code` is [`crate::plan::select::many_code`]'s.
    #[error("{failed} of {total} container(s) were not checkpointed (see each above)")]
    SomeFailed { failed: usize, total: usize, code: u8 },
    #[error("ckpt {verb} must run as root (CRIU needs CAP_SYS_ADMIN and friends); try: sudo ckpt {verb} ...")]
    NotRoot { verb: &'static str },
    #[error("the restore of {id} did not resume the checkpointed processes: {reason}")]
    NotResumed { id: String, reason: String },
    /// A restore undone though neither it nor a signal said why (kept so
    /// that every path out of `start` has an error).
    #[error("nothing was started{detail}")]
    RestoreUndone { detail: String },
    /// `ls ID` of an id that no runtime, no Docker and no store knows.
    #[error("no such container {id:?}: no runtime or Docker knows it, and {store} holds no checkpoints of it")]
    UnknownContainer { id: String, store: PathBuf },
    #[error("Docker container {name} vanished after the restore")]
    Vanished { name: String },
    #[error("init process {pid} did not exit after SIGKILL")]
    StillRunning { pid: i32 },
    /// A helper process of ckpt's own could not be started.
    #[error("cannot start {what}")]
    Spawn {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A sentence for the user above the error that caused it; its exit
    /// code is its source's.
    #[error("{message}")]
    Context {
        message: String,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Says `message` above this error; the exit code stays this error's.
    pub fn context(self, message: impl Into<String>) -> Error {
        Error::Context {
            message: message.into(),
            source: Box::new(self),
        }
    }

    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Store(e) => store_code(e),
            Error::Discovery(e) => match e {
                EngineError::NotFound { .. } | EngineError::NotRunning { .. } | EngineError::PidReused { .. } => {
                    NOT_FOUND
                }
                EngineError::Ambiguous { .. } => USAGE,
                EngineError::Docker(d) => docker_code(d),
                EngineError::ReadState { .. } | EngineError::ParseState { .. } => FAILURE,
            },
            Error::Docker(e) => docker_code(e),
            Error::CheckpointDir(_) => USAGE,
            Error::Criu(e) => match e {
                CriuError::Failed { .. } | CriuError::Stalled { .. } => CRIU_FAILED,
                CriuError::NotInstalled
                | CriuError::TooOld { .. }
                | CriuError::UnknownVersion { .. }
                | CriuError::Spawn { .. } => PREREQUISITE,
            },
            Error::Crit(e) => match e {
                CritError::NotInstalled => PREREQUISITE,
                CritError::Failed { .. } => FAILURE,
            },
            Error::Runtime(e) => runtime_code(e),
            Error::Cleanup(e) => match e {
                // The runtime's delete failed: as the runtime says.
                CleanupError::Delete(r) => runtime_code(r),
                CleanupError::Mounts(_) | CleanupError::RootfsChanged { .. } => FAILURE,
            },
            Error::Spec(_)
            | Error::Inventory(_)
            | Error::Facts(_)
            | Error::Freezer(_)
            | Error::Mount(_)
            | Error::Proc(_)
            | Error::Json(_) => FAILURE,
            Error::Archive(e) => match e {
                // Hostile, damaged or not what the checkpoint recorded.
                ArchiveError::Refused { .. } | ArchiveError::Source { .. } => CORRUPT,
                ArchiveError::Io { .. } => FAILURE,
            },
            Error::Interrupted(Interrupted(sig)) => interrupted_code(*sig),
            Error::Chunks { source, .. } => chunk_code(source),
            Error::Damaged { .. } => CORRUPT,
            Error::Refused { .. } | Error::NotCheckpointable { .. } => REFUSED,
            Error::UnknownContainer { .. } => NOT_FOUND,
            Error::RestoreRefused(r) => r.exit_code(),
            Error::Export(e) => e.exit_code(),
            Error::ImportRefused(r) => r.exit_code(),
            Error::Usage { .. } | Error::Retention(_) => USAGE,
            Error::SomeFailed { code, .. } => *code,
            Error::NotRoot { .. } => PREREQUISITE,
            Error::NotResumed { .. }
            | Error::RestoreUndone { .. }
            | Error::Vanished { .. }
            | Error::StillRunning { .. }
            | Error::Spawn { .. }
            | Error::Io { .. } => FAILURE,
            Error::Context { source, .. } => source.exit_code(),
        }
    }
}

/// The exit status of a command: [`SUCCESS`], or its error's code.
pub fn exit_status(error: Option<&Error>) -> u8 {
    error.map_or(SUCCESS, Error::exit_code)
}

/// `128 + N` for signal N (saturating: no real signal gets there).
pub fn interrupted_code(sig: i32) -> u8 {
    u8::try_from(sig).map_or(u8::MAX, |s| INTERRUPTED_BASE.saturating_add(s))
}

/// A missing or corrupt chunk or recipe is a damaged checkpoint (7); the
/// chunk lock held by another command is Busy (8).
fn chunk_code(e: &ChunkError) -> u8 {
    match e {
        e if e.is_corruption() => CORRUPT,
        ChunkError::Busy { .. } => BUSY,
        ChunkError::Unsafe { .. } => PREREQUISITE,
        _ => FAILURE,
    }
}

fn store_code(e: &StoreError) -> u8 {
    match e {
        StoreError::InvalidName { .. } | StoreError::InvalidContainerId { .. } => USAGE,
        StoreError::NotFound { .. } => NOT_FOUND,
        StoreError::Busy { .. } => BUSY,
        StoreError::Corrupt { .. } | StoreError::FutureSchema { .. } => CORRUPT,
        StoreError::UnsafeStore { .. } => PREREQUISITE,
        StoreError::AlreadyExists { .. } | StoreError::NoSpace { .. } | StoreError::Io { .. } => FAILURE,
    }
}

fn runtime_code(e: &RuntimeError) -> u8 {
    match e {
        RuntimeError::NotInstalled { .. } => PREREQUISITE,
        RuntimeError::NotDriven { .. }
        | RuntimeError::Spawn { .. }
        | RuntimeError::MountsBelow { .. }
        | RuntimeError::Failed { .. } => FAILURE,
    }
}

fn docker_code(e: &DockerError) -> u8 {
    match e {
        DockerError::UnsupportedHost { .. } | DockerError::Unreachable { .. } | DockerError::NotExperimental { .. } => {
            PREREQUISITE
        }
        DockerError::BrokenRestore { .. } => REFUSED,
        DockerError::NoSuchContainer { .. } => NOT_FOUND,
        DockerError::AmbiguousReference { .. } => USAGE,
        DockerError::Api { .. } | DockerError::Protocol { .. } => FAILURE,
    }
}

/// An error and its sources as one line, `a: b: c` (for a log line or a
/// sentence that tells one error inside another).
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Adds a sentence above an error, keeping its exit code.
pub trait ResultExt<T> {
    /// [`Error::context`] on the error.
    fn context(self, message: impl Into<String>) -> Result<T, Error>;
    /// [`Error::context`], the message made only on error.
    fn with_context<M: Into<String>>(self, message: impl FnOnce() -> M) -> Result<T, Error>;
}

impl<T, E: Into<Error>> ResultExt<T> for Result<T, E> {
    fn context(self, message: impl Into<String>) -> Result<T, Error> {
        self.map_err(|e| e.into().context(message))
    }

    fn with_context<M: Into<String>>(self, message: impl FnOnce() -> M) -> Result<T, Error> {
        self.map_err(|e| e.into().context(message()))
    }
}

#[cfg(test)]
mod tests;
