//! `ckpt start`: load → verify → restore through the runtime → confirm.
//!
//! Nothing is written until every check has passed (schema, checksums,
//! CRIU version, the bundle and its rootfs, bind-mount sources, the
//! target's files, the target not running), and all of it under the locks
//! of the source and the target: a refused start changes nothing, and of
//! two starts into one target the second sees what the first did. A
//! restore that fails, or that SIGINT, SIGTERM or SIGHUP interrupts, is
//! undone whole ([`crate::engine::oci::undo::undo_restore`]): the target is then
//! stopped and the checkpoint can be restored again. ckpt never dies of
//! those signals while the runtime restores: it lets the runtime finish,
//! then undoes.

use super::{require_root, Context, LOCK_WAIT};
use crate::cli::StartArgs;
use crate::criu::{Criu, CriuVersion};
use crate::engine::oci::runtime::{RestoreRequest, Runtime};
use crate::engine::oci::undo::{self, RestoreSite};
use crate::engine::{self, RuntimeKind, SearchRoots, Status};
use crate::error::{Error, ResultExt as _};
use crate::interrupt::{self, Interrupted};
use crate::plan::bundle::BundleChoice;
use crate::plan::confirm;
use crate::plan::restore::{self, restore_plan, How, RestoreFacts, RestoreOptions, Restorer, TargetState};
use crate::procfs::ProcRoot;
use crate::store::{names, CheckpointEntry, CheckpointMeta, ContainerLock, Log, Store, StoreError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, serde::Serialize)]
struct Started {
    container: String,
    checkpoint: String,
    pid: i32,
    runtime: String,
    output_log: PathBuf,
    restore_ms: u64,
}

pub fn run(ctx: &Context, args: &StartArgs) -> Result<(), Error> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.checkpoint)?;
    if let Some(t) = super::docker_target(ctx, &args.container)? {
        super::refuse_ambiguous(ctx, &args.container, &t)?;
        return super::start_docker::run(ctx, args, t);
    }
    let target = args.name.clone().unwrap_or_else(|| args.container.clone());
    names::validate_container_id(&target)?;
    require_root("start")?;
    // From here a signal is remembered, not fatal: the restore below must
    // finish or be undone, never be abandoned half-way.
    interrupt::install();
    let criu = Criu::locate()?;
    let store = Store::open_with(&ctx.store_root, &ctx.proc)?;
    // Look before locking: the lock would create the container's directory.
    if !store
        .layout()
        .checkpoint_dir(&args.container, &args.checkpoint)
        .exists()
    {
        return Err(crate::store::StoreError::NotFound {
            container: args.container.clone(),
            name: args.checkpoint.clone(),
        }
        .into());
    }
    let _locks = lock_in_order(&store, &args.container, &target)?;

    // 1. Is the checkpoint whole and ours?
    let entry = store.load(&args.container, &args.checkpoint)?;
    // In ckpt's own store every checkpoint has a ckpt.json: one without is
    // damaged (Docker's directory is where foreign checkpoints live).
    let meta = entry.meta.clone().ok_or_else(|| StoreError::Corrupt {
        dir: entry.dir.clone(),
        reason: "ckpt.json: missing".into(),
    })?;
    store.verify(&entry)?;

    // 2. Where will it go? Decided in full before anything is written.
    let facts = restore_facts(ctx, &store, &entry, &meta, &target, args.name.is_some(), criu.version)?;
    let opts = RestoreOptions {
        new_name: args.name.clone(),
    };
    let plan = restore_plan(&entry, &facts, &opts)?;
    let How::Oci {
        runtime: kind,
        binary,
        root: runtime_root,
        bundle: bundle_choice,
        clear_target,
    } = plan.how.clone()
    else {
        unreachable!("ckpt's store is restored by runc or crun");
    };
    let runtime = Runtime::locate(binary, &runtime_root, &ctx.proc)?;
    if let Some(sig) = interrupt::pending() {
        return Err(Error::from(Interrupted(sig)).context("nothing was started or changed"));
    }

    // Every check has passed: from here on, ckpt writes.
    let bundle = write_bundle(&store, &target, bundle_choice)?;
    let staging_root = store.layout().staging_root(&target);
    let site = |work_area| RestoreSite {
        runtime: &runtime,
        id: &target,
        bundle: &bundle,
        work_area,
        proc: &ctx.proc,
    };
    if clear_target {
        // A stopped container, or a state dir without a state file: the
        // leftover of an earlier failed or killed create or restore, which
        // may still have CRIU's and the runtime's mounts (the rootfs among
        // them) below it. The runtime refuses the id until it goes.
        log::info!(
            "removing the stopped or leftover container {target} in {}",
            runtime_root.display()
        );
        undo::undo_restore(&site(&staging_root)).with_context(|| {
            format!(
                "cannot remove the leftover state of {target} in {}; nothing was restored",
                runtime_root.display()
            )
        })?;
    }
    if let Some(sig) = interrupt::pending() {
        return Err(Error::from(Interrupted(sig)).context("nothing was started"));
    }

    // 3. Restore.
    let work = store.restore_work_dir(&target)?;
    let output_log = store.layout().log(&target, Log::Output);
    let started = std::time::Instant::now();
    let pipe_write = spawn_relay(&output_log)?;
    let pid_file = work.path().join("pid");
    let req = RestoreRequest {
        id: &target,
        bundle: &bundle,
        images: &entry.dir,
        work_dir: work.path(),
        pid_file: &pid_file,
        options: plan.options,
    };
    log::info!("restoring {} from {} with {}", target, entry.dir.display(), kind.name());
    let restored = runtime.restore(&req, pipe_write);
    let restore_log_text = std::fs::read_to_string(work.path().join("restore.log")).unwrap_or_default();
    let kept_log = store.layout().log(&target, Log::Restore);
    let _ = store.write_log(&target, Log::Restore, restore_log_text.as_bytes());
    let undo = |restore_error: Option<Error>| {
        let sig = interrupt::pending();
        let undone = undo::undo_restore(&site(work.path()));
        explain_undo(restore_error, sig, undone, &target, &args.checkpoint, &kept_log)
    };
    match restored {
        Err(e) => return Err(undo(Some(e.into()))),
        Ok(()) if interrupt::pending().is_some() => return Err(undo(None)),
        Ok(()) => {}
    }
    let restore_ms = started.elapsed().as_millis() as u64;

    // 4. Did the saved processes come back?
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::NotResumed {
            id: target.clone(),
            reason: format!("{} wrote no pid file", kind.name()),
        })?;
    let live = ctx.proc.live_init(pid);
    confirm::confirm_resumed(&meta, &live, Some(&restore_log_text)).map_err(|reason| Error::NotResumed {
        id: target.clone(),
        reason,
    })?;
    // The last moment to honour a signal: past it, success is reported.
    if interrupt::pending().is_some() {
        return Err(undo(None));
    }
    drop(work);

    let started = Started {
        container: target,
        checkpoint: meta.name.clone(),
        pid,
        runtime: kind.name().into(),
        output_log,
        restore_ms,
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&started)?);
    } else {
        ctx.say(format!(
            "container {} restored from checkpoint {} in {} ms (pid {}); its output goes to {}",
            started.container,
            started.checkpoint,
            started.restore_ms,
            started.pid,
            started.output_log.display()
        ));
    }
    Ok(())
}

/// Takes the locks of `source` and, when it is another id, of `target`,
/// always in the order of the ids: two starts crossing the same two ids
/// (`--name B A` and `--name A B`) then never each hold one lock while
/// waiting for the other. A target unknown to the store gets a directory
/// for its lock, which goes again if the start writes nothing there.
fn lock_in_order(store: &Store, source: &str, target: &str) -> Result<Vec<ContainerLock>, StoreError> {
    let mut ids = vec![source, target];
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(|id| store.lock(id, LOCK_WAIT)).collect()
}

/// What the plan of a restore into `target` needs to know, read from the
/// system: the runtime recorded in `meta` (its binary must be there), the
/// target in that runtime's state root, the original bundle's spec, the
/// paths the restore needs, and what start would write in the store.
fn restore_facts(
    ctx: &Context,
    store: &Store,
    entry: &CheckpointEntry,
    meta: &CheckpointMeta,
    target: &str,
    new_id: bool,
    criu: CriuVersion,
) -> Result<RestoreFacts, Error> {
    let mut state = TargetState::Absent;
    if let Ok((kind, binary, root)) = restore::recorded_runtime(meta) {
        Runtime::locate(binary, &root, &ctx.proc)?;
        let roots = SearchRoots {
            roots: vec![(binary, root.clone())],
        };
        state = match engine::lookup(&roots, &ctx.proc, target)? {
            Some(found) if found.status != Status::Stopped => {
                warn_of_leftover_mounts(&ctx.proc, &root.join(target), target, kind);
                TargetState::Running
            }
            Some(_) => TargetState::Stopped,
            None if root.join(target).exists() => TargetState::Leftover,
            None => TargetState::Absent,
        };
    }
    let original_spec = match (&meta.bundle, new_id) {
        (Some(bundle), false) => crate::spec::read_raw(&bundle.join("config.json"))?,
        _ => None,
    };
    // What this start writes into the target's directory must be ckpt's
    // own files, not symlinks planted there.
    let unsafe_target = match store.check_restore_target(target) {
        Ok(()) => None,
        Err(StoreError::UnsafeStore { path, reason }) => Some((path, reason)),
        Err(e) => return Err(e.into()),
    };
    Ok(RestoreFacts {
        restorer: Restorer::Oci,
        criu: Some(criu),
        home_id: entry.container_id.clone(),
        target_name: target.to_string(),
        target: state,
        original_spec,
        present: restore::paths_to_check(entry)
            .into_iter()
            .filter(|p| p.exists())
            .collect(),
        unsafe_target,
        missing_image: None,
    })
}

/// Puts the chosen bundle in place: the original as it is, or the
/// generated spec as `<store>/<target>/bundle/config.json`, written by the
/// store (0600, fsynced, renamed into place). Returns the bundle dir.
fn write_bundle(store: &Store, target: &str, choice: BundleChoice) -> Result<PathBuf, Error> {
    match choice {
        BundleChoice::Original(dir) => Ok(dir),
        BundleChoice::Generated(spec) => Ok(store.write_bundle(target, &serde_json::to_vec_pretty(&spec)?)?),
    }
}

/// Starts `ckpt __relay <output_log>` in its own session reading a new
/// pipe; returns the pipe's write end for the restored container.
fn spawn_relay(output_log: &Path) -> Result<std::os::fd::OwnedFd, Error> {
    let spawn_err = |source| Error::Spawn {
        what: "the output relay",
        source,
    };
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| spawn_err(e.into()))?;
    let exe = std::env::current_exe().map_err(spawn_err)?;
    let mut cmd = Command::new(exe);
    cmd.arg("__relay")
        .arg(output_log)
        .stdin(Stdio::from(read))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the relay must not die with
    // ckpt's terminal session.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()?;
            Ok(())
        });
    }
    cmd.spawn().map_err(spawn_err)?;
    Ok(write)
}

/// A restore whose ckpt and runtime were killed together just after CRIU
/// resumed the tasks runs on, but the runtime never unmounted the rootfs
/// from below its state dir; a `runc delete --force` of the container
/// would then delete the rootfs through that mount. A refused start
/// changes nothing, so it only says so (ckpt's own deletes unmount first).
fn warn_of_leftover_mounts(proc: &ProcRoot, state_dir: &Path, id: &str, kind: RuntimeKind) {
    let mounts = crate::mountinfo::parse(&proc.own().mountinfo().unwrap_or_default());
    let Ok(dir) = std::fs::canonicalize(state_dir) else {
        return;
    };
    if let Err(left) = crate::mounts::delete_verdict(&mounts, &dir) {
        let first = left[0].display();
        log::warn!(
            "{id} runs, but an interrupted restore left {} mounted below {}: `{} delete --force {id}` would \
             delete the files it shows (the container's root filesystem); unmount it first (umount -l {first})",
            left.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            dir.display(),
            kind.name(),
        );
    }
}

/// The error of a start whose restore failed or was interrupted and has
/// been undone (or failed to be): why, and in which state it left things.
fn explain_undo(
    restore_error: Option<Error>,
    sig: Option<i32>,
    undone: Result<(), undo::CleanupError>,
    target: &str,
    checkpoint: &str,
    kept_log: &Path,
) -> Error {
    // The cleanup's failure is told in the same sentence: it says what is
    // left behind, which matters more than why the restore failed.
    let failed_cleanup = undone.err().map(|e| crate::error::chain(&e));
    let cleanup = failed_cleanup
        .as_ref()
        .map(|e| format!(", but cleaning up after it failed: {e}"))
        .unwrap_or_default();
    let log = kept_log.display();
    match (sig, restore_error) {
        (Some(sig), _) if failed_cleanup.is_none() => Error::from(Interrupted(sig)).context(format!(
            "the restore was undone: container {target} is stopped, and checkpoint {checkpoint} is unchanged \
             and can be restored again; restore log kept at {log}"
        )),
        (Some(sig), _) => Error::from(Interrupted(sig)).context(format!(
            "the restore was interrupted{cleanup}; restore log kept at {log}"
        )),
        (None, Some(e)) => e.context(format!("nothing was started{cleanup}; restore log kept at {log}")),
        (None, None) => Error::RestoreUndone {
            detail: format!("{cleanup}; restore log kept at {log}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explained(restore_failed: bool, sig: Option<i32>, cleanup_failed: bool) -> (u8, String) {
        let restore_error = restore_failed.then(|| {
            Error::from(crate::engine::oci::runtime::RuntimeError::Failed {
                runtime: "runc",
                action: "restore",
                id: "c1".into(),
                message: "runc restore failed".into(),
            })
        });
        let undone = if cleanup_failed {
            Err(undo::CleanupError::RootfsChanged {
                rootfs: "/b/rootfs".into(),
                lost: vec!["bin".into()],
            })
        } else {
            Ok(())
        };
        let e = explain_undo(restore_error, sig, undone, "c1", "s1", Path::new("/s/c1/restore.log"));
        (e.exit_code(), crate::error::chain(&e))
    }

    /// (restore failed, signal, cleanup failed, exit code, phrases in the message)
    type Case = (bool, Option<i32>, bool, u8, &'static [&'static str]);

    #[test]
    fn undo_is_explained_with_the_right_exit_code() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (true, None, false, 1, &["nothing was started; restore log kept at /s/c1/restore.log", "runc restore failed"]),
            (true, None, true, 1, &["nothing was started, but cleaning up after it failed", "/b/rootfs", "runc restore failed"]),
            (false, Some(15), false, 143, &["the restore was undone: container c1 is stopped", "checkpoint s1 is unchanged", "interrupted by signal 15"]),
            (true, Some(2), false, 130, &["the restore was undone", "interrupted by signal 2"]),
            (false, Some(1), true, 129, &["the restore was interrupted, but cleaning up after it failed", "/b/rootfs"]),
        ];
        for (failed, sig, cleanup_failed, code, phrases) in cases {
            let (got, text) = explained(*failed, *sig, *cleanup_failed);
            assert_eq!(got, *code, "{text}");
            for p in *phrases {
                assert!(text.contains(p), "{p:?} not in {text:?}");
            }
        }
        let (_, text) = explained(false, Some(15), true);
        assert!(!text.contains("undone"), "a failed cleanup is not an undo: {text}");
    }
}
