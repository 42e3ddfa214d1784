//! One file per verb. Each takes the parsed arguments and a [`Context`],
//! does the work, writes its result into an [`crate::output::Output`], and
//! returns an [`Error`]; `main` prints the output, then the error once,
//! and exits with the error's code.
//!
//! Commands talk to containers only through the engine seam
//! (`ctx.engines`, see [`crate::engine`]), to CRIU only through
//! `ctx.criu`, and decide through the plans; they never call each other,
//! and nothing but `main` calls them. Their unit tests (`tests.rs`) put a
//! fake engine and a fake CRIU in the context, and need no root.

pub mod contents;
pub mod create;
pub mod create_many;
pub mod export;
pub mod generate;
pub mod import;
pub mod incremental;
pub mod inspect;
pub mod ls;
pub mod prune;
pub mod relay;
pub mod retention;
pub mod rm;
pub mod start;
pub mod verify;
pub mod verify_all;

#[cfg(test)]
mod tests;

use crate::cli::{GlobalArgs, RuntimeChoice};
use crate::criu::{FromPath, Locate};
use crate::engine::oci::SearchRoots;
use crate::engine::{DockerMode, Engines, Home, Resolver, RuntimeKind};
use crate::error::Error;
use crate::procfs::ProcRoot;
use crate::store::checkpoint_dir::{self, CheckpointDirError};
use crate::store::{Layout, Store, StoreError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a command waits for another ckpt working on the same container.
pub const LOCK_WAIT: Duration = Duration::from_secs(10);

/// What every command needs: where things are, and the seams to the world.
pub struct Context {
    /// The ckpt store (`--store`).
    pub store_root: PathBuf,
    pub proc: ProcRoot,
    /// Where the host's cgroups are mounted (`/sys/fs/cgroup`): what is
    /// mounted there decides cgroup v1 or v2 (`cgroups::layout`).
    pub cgroup_root: PathBuf,
    /// `-q`: no progress bars either.
    pub quiet: bool,
    /// `--runtime-root` as given: an import records the first as the
    /// runtime root its restores use.
    pub runtime_roots: Vec<PathBuf>,
    /// The engines containers are found in and handled by.
    pub engines: Box<dyn Engines>,
    /// Where CRIU comes from.
    pub criu: Box<dyn Locate>,
    /// Whether ckpt runs as root.
    pub root: bool,
    /// ckpt's own binary, for the helper processes it starts (`__watchdog`).
    pub exe: Option<PathBuf>,
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
        let proc = ProcRoot::host();
        let exe = std::env::current_exe().ok();
        Context {
            store_root: g.store.clone(),
            runtime_roots: g.runtime_roots.clone(),
            engines: Box::new(Resolver {
                roots: SearchRoots::new(runtime, &g.runtime_roots),
                docker,
                store_root: g.store.clone(),
                proc: proc.clone(),
                exe: exe.clone(),
            }),
            proc,
            cgroup_root: PathBuf::from(crate::cgroups::CGROUP_ROOT),
            quiet: g.quiet,
            criu: Box::new(FromPath),
            root: nix::unistd::geteuid().is_root(),
            exe,
        }
    }

    /// Fails unless running as root.
    pub fn require_root(&self, verb: &'static str) -> Result<(), Error> {
        if self.root {
            Ok(())
        } else {
            Err(Error::NotRoot { verb })
        }
    }

    /// Opens the store at `root`, its staging judged by this context's
    /// processes.
    pub fn open_store(&self, root: &Path) -> Result<Store, StoreError> {
        Store::open_with(root, &self.proc)
    }
}

/// `home` with `--checkpoint-dir` applied: the same container's checkpoints
/// in the store that `dir` names (see `store::checkpoint_dir`). Docker's
/// own directory cannot be moved: Docker restores only from there.
pub fn with_checkpoint_dir(home: Home, dir: Option<&Path>) -> Result<Home, Error> {
    let Some(dir) = dir else { return Ok(home) };
    if home.foreign {
        return Err(CheckpointDirError::Docker { name: home.name }.into());
    }
    let base_reading = Layout::new(dir).checkpoints_dir(&home.id).is_dir();
    let (root, form) = checkpoint_dir::resolve(dir, Some(&home.id), base_reading)?;
    log::info!(
        "--checkpoint-dir {} read as {form:?}: store {}",
        dir.display(),
        root.display()
    );
    Ok(Home { root, ..home })
}

/// RFC 3339 UTC now, to the second.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
