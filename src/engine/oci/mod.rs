//! runc and crun: their state directories ([`runc`], [`crun`], pure
//! parsers), their binaries ([`runtime`]), restores through them
//! ([`restore`]), and undoing a restore that failed ([`undo`]).
//!
//! [`OciEngine`] is the engine of a runc or crun container, and of every
//! checkpoint in ckpt's store: those are restored by the runtime
//! `ckpt.json` recorded, from the state root it recorded.

pub mod crun;
pub mod restore;
pub mod runc;
pub mod runtime;
pub mod undo;

use super::Container;
use super::{DockerMode, Engine, EngineError, Home, Prepared, Restored, RuntimeKind, Status, Undo};
use crate::cgroups::FreezerDir;
use crate::criu::CriuVersion;
use crate::error::Error;
use crate::plan::restore::{RestoreFacts, RestoreOptions, RestorePlan};
use crate::procfs::ProcRoot;
use crate::store::{CheckpointEntry, Store};
use runtime::Runtime;
use std::path::PathBuf;

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

/// A container found in a state root and the runtime's view of its status.
#[derive(Debug, Clone)]
pub struct Found {
    pub container: Container,
    pub status: Status,
}

/// Looks `id` up in every root: every runtime state that knows it.
pub fn lookup_all(roots: &SearchRoots, proc: &ProcRoot, id: &str) -> Result<Vec<Found>, EngineError> {
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
    Ok(found)
}

/// Every running or paused container in `roots`, with the runtime's
/// created time. A root that is missing or unreadable, or a state that
/// cannot be parsed, is skipped (logged): listing is best effort, and each
/// container listed is looked up again before anything is done to it.
pub fn list_running(roots: &SearchRoots, proc: &ProcRoot) -> Vec<crate::plan::select::Listed> {
    let mut out = Vec::new();
    for (kind, root) in &roots.roots {
        let Ok(entries) = std::fs::read_dir(root) else {
            continue;
        };
        for entry in entries.flatten() {
            let Some(id) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let (loaded, state_file) = match kind {
                RuntimeKind::Runc | RuntimeKind::Docker => (runc::load(root, &id), "state.json"),
                RuntimeKind::Crun => (crun::load(root, &id), "status"),
            };
            let container = match loaded {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => {
                    log::debug!("skipping {id} in {}: {}", root.display(), crate::error::chain(&e));
                    continue;
                }
            };
            if liveness(proc, &container) == Status::Stopped {
                continue;
            }
            let created = std::fs::read_to_string(root.join(&id).join(state_file))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["created"].as_str().and_then(crate::plan::select::created_time));
            out.push(crate::plan::select::Listed {
                id,
                runtime: *kind,
                created,
            });
        }
    }
    out
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

/// Running when the init pid is alive, not a zombie, and started at the
/// recorded time (otherwise the pid was reused by another process).
pub fn liveness(proc: &ProcRoot, c: &Container) -> Status {
    match proc.process(c.init_pid).stat() {
        Ok(s) if s.start_time == Some(c.init_start) && !s.is_dead() => Status::Running,
        _ => Status::Stopped,
    }
}

/// Where a lookup searched, for messages.
pub fn describe(roots: &SearchRoots, mode: DockerMode) -> String {
    let mut s = describe_roots(roots);
    if mode != DockerMode::Off {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| super::docker::client::DEFAULT_HOST.into());
        let docker = match super::docker::daemon::skipped() {
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

/// The engine of a runc or crun container, and of ckpt's store.
#[derive(Debug, Clone)]
pub struct OciEngine {
    proc: ProcRoot,
    store_root: PathBuf,
    /// ckpt's own binary, for the output relay of a restore.
    exe: Option<PathBuf>,
    /// The container whose checkpoints these are.
    id: String,
}

impl OciEngine {
    /// The engine of ckpt's store at `store_root`.
    pub fn new(proc: &ProcRoot, store_root: &std::path::Path, exe: Option<PathBuf>) -> OciEngine {
        OciEngine {
            proc: proc.clone(),
            store_root: store_root.to_path_buf(),
            exe,
            id: String::new(),
        }
    }

    /// Bound to a running container.
    pub fn running(self, c: &Container) -> OciEngine {
        self.store_home(&c.id)
    }

    /// Bound to the checkpoints of `id` in the store.
    pub fn store_home(self, id: &str) -> OciEngine {
        OciEngine {
            id: id.to_string(),
            ..self
        }
    }
}

impl Engine for OciEngine {
    fn home(&self) -> Home {
        Home {
            root: self.store_root.clone(),
            id: self.id.clone(),
            name: self.id.clone(),
            foreign: false,
        }
    }

    fn check_dump(&self, _name: &str, _leave_running: bool) -> Result<(), Error> {
        Ok(())
    }

    fn recorded_pause(&self) -> Option<bool> {
        None
    }

    /// Has the runtime delete the container so that its id is free for
    /// the restore (what `runc checkpoint` does too).
    fn stop_after_dump(&self, c: &Container, freezer: &FreezerDir) -> Result<(), Error> {
        super::kill_frozen(&self.proc, c, freezer)?;
        let runtime = Runtime::locate(c.runtime, &c.runtime_root, &self.proc)?;
        runtime.delete(&c.id)?;
        Ok(())
    }

    fn defers_signals(&self) -> bool {
        true
    }

    fn target_lock_id(&self, opts: &RestoreOptions) -> Option<String> {
        Some(opts.new_name.clone().unwrap_or_else(|| self.id.clone()))
    }

    fn check_restore(&self, _opts: &RestoreOptions) -> Result<(), Error> {
        Ok(())
    }

    fn restore_facts(
        &self,
        store: &Store,
        entry: &CheckpointEntry,
        opts: &RestoreOptions,
        criu: Option<CriuVersion>,
    ) -> Result<RestoreFacts, Error> {
        let target = opts.new_name.as_deref().unwrap_or(&self.id);
        restore::facts(&self.proc, store, entry, target, opts.new_name.is_some(), criu)
    }

    fn prepare(&self, store: &Store, _entry: &CheckpointEntry, plan: &RestorePlan) -> Result<Prepared, Error> {
        restore::prepare(&self.proc, store, plan)
    }

    fn restore(&self, store: &Store, plan: &RestorePlan, prepared: &Prepared) -> Result<Restored, Error> {
        restore::run(&self.proc, self.exe.as_deref(), store, plan, prepared)
    }

    fn restored_init(&self, plan: &RestorePlan, prepared: &Prepared) -> Result<i32, Error> {
        restore::pid_of(plan, prepared)
    }

    fn undo(&self, store: &Store, plan: &RestorePlan, prepared: &Prepared, why: Undo) -> Error {
        restore::undo(&self.proc, store, plan, prepared, why)
    }

    fn export_facts(&self, entry: &CheckpointEntry) -> Result<crate::plan::export::ExportFacts, Error> {
        restore::export_facts(&self.proc, entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

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
