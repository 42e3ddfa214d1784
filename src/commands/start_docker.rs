//! `ckpt start` for Docker containers: the restore goes through the Engine
//! API's start-with-checkpoint so that Docker keeps managing the container
//! (`docker ps`, `docker stop`). ckpt adds what Docker lacks: it checks the
//! checkpoint first, refuses Docker versions known to break the restore,
//! retries Docker's intermittent stale-content error once, removes the
//! full-size copy containerd leaves in its temp dir, and confirms that the
//! saved processes really came back.

use super::{require_root, Context, LOCK_WAIT};
use crate::cli::StartArgs;
use crate::criu::Criu;
use crate::engine::docker::DockerTarget;
use crate::error::Error;
use crate::plan::confirm;
use crate::plan::restore::{restore_plan, How, RestoreFacts, RestoreOptions, Restorer, TargetState};
use crate::store::{names, Store, StoreError};
use std::path::{Path, PathBuf};

#[derive(Debug, serde::Serialize)]
struct Started {
    container: String,
    id: String,
    checkpoint: String,
    pid: i32,
    runtime: &'static str,
    restore_ms: u64,
    retries: u32,
}

pub fn run(ctx: &Context, args: &StartArgs, t: DockerTarget) -> Result<(), Error> {
    if let Some(name) = &args.name {
        names::validate_container_id(name)?;
    }
    require_root("start")?;
    let daemon = &t.daemon;
    daemon.require_experimental()?;
    // A `--name` copy is created without NetworkDisabled (create_body_from
    // drops it), so Docker sets up its network even where the original has
    // none.
    let network_disabled = t.view.network_disabled && args.name.is_none();
    if let Some(blocker) =
        crate::engine::docker::restore_blocker(&daemon.info.version, &t.view.network_mode, network_disabled)
    {
        return Err(blocker.into());
    }
    let store = Store::open_with(&daemon.store_root(), &ctx.proc)?;
    if !store.layout().checkpoint_dir(&t.view.id, &args.checkpoint).exists() {
        return Err(StoreError::NotFound {
            container: t.view.name.clone(),
            name: args.checkpoint.clone(),
        }
        .into());
    }
    let _lock = store.lock(&t.view.id, LOCK_WAIT)?;
    let entry = store.load(&t.view.id, &args.checkpoint)?;
    let criu = match &entry.meta {
        Some(_) => {
            store.verify(&entry)?;
            Some(Criu::locate()?.version)
        }
        None => None,
    };
    let facts = RestoreFacts {
        restorer: Restorer::Docker,
        criu,
        home_id: t.view.id.clone(),
        target_name: t.view.name.clone(),
        target: match (&args.name, t.view.running) {
            (Some(_), _) => TargetState::Absent,
            (None, true) => TargetState::Running,
            (None, false) => TargetState::Stopped,
        },
        original_spec: None,
        present: Default::default(),
        unsafe_target: None,
        missing_image: entry
            .meta
            .is_none()
            .then(|| crate::store::listing::missing_core_image(&entry.dir))
            .flatten(),
    };
    let opts = RestoreOptions {
        new_name: args.name.clone(),
    };
    let plan = restore_plan(&entry, &facts, &opts)?;

    let (target_id, target_name, created) = match &plan.how {
        How::Docker { copy: false } => (t.view.id.clone(), t.view.name.clone(), false),
        _ => {
            let new = &plan.target;
            let id = daemon.create_like(&t.raw, new)?;
            log::info!(
                "created Docker container {new} ({id}) with the config of {}",
                t.view.name
            );
            if let Err(e) = store.copy_checkpoint(&entry, &id) {
                let _ = daemon.remove(&id);
                return Err(e.into());
            }
            (id, new.clone(), true)
        }
    };

    let temp_dirs = containerd_temp_dirs(&ctx.proc);
    let before = checkpoint_copies(&temp_dirs);
    let started = std::time::Instant::now();
    let result = daemon.start_from_checkpoint(&target_id, &args.checkpoint);
    // containerd 1.7 leaves a full copy of the images behind on every
    // start-with-checkpoint; ckpt does not. Only copies of *this*
    // checkpoint are removed: another restore may be using its own.
    let ours = image_signature(&entry.dir);
    for leftover in checkpoint_copies(&temp_dirs).difference(&before) {
        if image_signature(leftover) == ours {
            log::info!("removing containerd's leftover copy {}", leftover.display());
            // containerd's plain copy has no mounts; should one be there,
            // remove_tree stops at it instead of deleting what it shows.
            if let Err(e) = crate::mounts::remove_tree(leftover) {
                log::warn!("cannot remove {}: {e}", leftover.display());
            }
        }
    }
    let retries = match result {
        Ok(r) => r,
        Err(e) => {
            if created {
                let _ = daemon.remove(&target_id);
            }
            return Err(Error::from(e).context(format!("container {target_name} was not started")));
        }
    };
    let restore_ms = started.elapsed().as_millis() as u64;

    let (view, _) = daemon.inspect(&target_id)?.ok_or_else(|| Error::Vanished {
        name: target_name.clone(),
    })?;
    let live = ctx.proc.live_init(view.pid);
    confirm::confirm(entry.meta.as_ref(), &live, None).map_err(|reason| Error::NotResumed {
        id: target_name.clone(),
        reason,
    })?;

    let out = Started {
        container: target_name,
        id: target_id,
        checkpoint: args.checkpoint.clone(),
        pid: view.pid,
        runtime: "docker",
        restore_ms,
        retries,
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        ctx.say(format!(
            "Docker container {} restored from checkpoint {} in {} ms (pid {}){}; see `docker logs {}`",
            out.container,
            out.checkpoint,
            out.restore_ms,
            out.pid,
            match out.retries {
                0 => String::new(),
                n => format!(
                    " after {n} retr{} (Docker's stale-content error, moby#42900)",
                    if n == 1 { "y" } else { "ies" }
                ),
            },
            out.container
        ));
    }
    Ok(())
}

/// The temp dirs of running containerd daemons (`$TMPDIR`, default /tmp).
fn containerd_temp_dirs(proc: &crate::procfs::ProcRoot) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for pid in proc.pids().unwrap_or_default() {
        let p = proc.process(pid);
        if p.comm().ok().flatten().is_some_and(|c| c.trim() == "containerd") {
            let env = p.environ().unwrap_or_default();
            let tmp = crate::procfs::env_value(&env, "TMPDIR")
                .map(|v| PathBuf::from(String::from_utf8_lossy(v).into_owned()))
                .unwrap_or_else(|| PathBuf::from("/tmp"));
            if !dirs.contains(&tmp) {
                dirs.push(tmp);
            }
        }
    }
    dirs
}

/// The names and sizes of a directory's CRIU images: what identifies a
/// copy of a checkpoint.
fn image_signature(dir: &Path) -> Vec<(std::ffi::OsString, u64)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".img"))
                .filter_map(|e| Some((e.file_name(), e.metadata().ok()?.len())))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `ctrd-checkpoint*` directories in `dirs`.
fn checkpoint_copies(dirs: &[PathBuf]) -> std::collections::BTreeSet<PathBuf> {
    dirs.iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|rd| rd.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with("ctrd-checkpoint"))
        .map(|e| e.path())
        .collect()
}
