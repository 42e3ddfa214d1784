//! One file per verb. Each takes the parsed arguments and a [`Context`],
//! does the work, prints its result, and returns an [`Error`] for `main`
//! to print once and map to an exit code.

pub mod create;
pub mod inspect;
pub mod ls;
pub mod relay;
pub mod rm;
pub mod start;
pub mod start_docker;
pub mod verify;

use crate::cli::{GlobalArgs, RuntimeChoice};
use crate::engine::{DockerMode, RuntimeKind, SearchRoots};
use crate::error::Error;
use crate::procfs::ProcRoot;
use std::path::PathBuf;
use std::time::Duration;

/// How long a command waits for another ckpt working on the same container.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What every command needs to know.
#[derive(Debug, Clone)]
pub struct Context {
    pub store_root: PathBuf,
    pub roots: SearchRoots,
    pub docker: DockerMode,
    pub proc: ProcRoot,
    pub quiet: bool,
}

impl Context {
    /// From the global options.
    pub fn new(g: &GlobalArgs) -> Context {
        let (runtime, docker) = match g.runtime {
            RuntimeChoice::Auto => (None, DockerMode::Auto),
            RuntimeChoice::Runc => (Some(RuntimeKind::Runc), DockerMode::Off),
            RuntimeChoice::Crun => (Some(RuntimeKind::Crun), DockerMode::Off),
            RuntimeChoice::Docker => (None, DockerMode::Only),
        };
        // An explicit runtime root is a request for that runtime, not Docker.
        let docker = if !g.runtime_roots.is_empty() && docker == DockerMode::Auto {
            DockerMode::Off
        } else {
            docker
        };
        Context {
            store_root: g.store.clone(),
            roots: SearchRoots::new(runtime, &g.runtime_roots),
            docker,
            proc: ProcRoot::host(),
            quiet: g.quiet,
        }
    }

    /// Prints a line to stdout unless --quiet.
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            crate::outln!("{}", line.as_ref());
        }
    }
}

/// Fails unless running as root.
pub fn require_root(verb: &'static str) -> Result<(), Error> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(Error::NotRoot { verb })
    }
}

/// RFC 3339 UTC now, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// The Docker container `reference` names, when Docker is searched and
/// knows it; with `--runtime docker` an unknown name is an error.
pub fn docker_target(
    ctx: &Context,
    reference: &str,
) -> Result<Option<crate::engine::docker::DockerTarget>, crate::engine::EngineError> {
    match crate::engine::docker::find(ctx.docker, reference)? {
        None if ctx.docker == DockerMode::Only => Err(crate::engine::docker::DockerError::NoSuchContainer {
            reference: reference.to_string(),
        }
        .into()),
        found => Ok(found),
    }
}

/// Where the checkpoints of `reference` live and its full id: Docker's
/// directory for Docker containers, the ckpt store otherwise.
pub fn checkpoint_home(ctx: &Context, reference: &str) -> Result<(PathBuf, String), crate::engine::EngineError> {
    Ok(match docker_target(ctx, reference)? {
        Some(t) => {
            refuse_ambiguous(ctx, reference, &t)?;
            (t.daemon.store_root(), t.view.id)
        }
        None => (ctx.store_root.clone(), reference.to_string()),
    })
}

/// In auto mode, a reference that names a Docker container *and* has
/// checkpoints of its own in the ckpt store names two things: refuse
/// rather than guess (`--runtime` picks one).
pub fn refuse_ambiguous(
    ctx: &Context,
    reference: &str,
    t: &crate::engine::docker::DockerTarget,
) -> Result<(), crate::engine::EngineError> {
    let in_store = ctx.store_root.join(reference).join("checkpoints");
    if ctx.docker == DockerMode::Auto && reference != t.view.id && in_store.is_dir() {
        return Err(crate::engine::EngineError::Ambiguous {
            id: reference.to_string(),
            candidates: format!(
                "Docker container {} ({}), checkpoints in {}",
                t.view.name,
                &t.view.id[..12.min(t.view.id.len())],
                in_store.display()
            ),
        });
    }
    Ok(())
}
