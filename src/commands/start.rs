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
use crate::procfs::ProcRoot;
use crate::restore;
use crate::restore::{BundleChoice, BundleRefusal};
use crate::store::{names, CheckpointMeta, ContainerLock, Log, Store, StoreError};
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
    check_criu_version(&meta, &criu)?;
    let kind = RuntimeKind::from_name(&meta.runtime).ok_or_else(|| Error::UnknownRuntime {
        name: meta.name.clone(),
        runtime: meta.runtime.clone(),
    })?;
    let runtime_root = meta
        .runtime_root
        .clone()
        .unwrap_or_else(|| kind.default_roots()[0].clone());
    let runtime = Runtime::locate(kind, &runtime_root, &ctx.proc)?;

    // 2. Where will it go? Decided in full before anything is written.
    let bundle_choice = choose_bundle(&meta, &entry.dir, args.name.is_some())?;
    check_bind_sources(&meta.spec)?;
    // What this start writes into the target's directory must be ckpt's
    // own files, not symlinks planted there.
    store.check_restore_target(&target)?;
    let roots = SearchRoots {
        roots: vec![(kind, runtime_root.clone())],
    };
    let found = engine::lookup(&roots, &ctx.proc, &target)?;
    if let Some(found) = &found {
        if found.status != Status::Stopped {
            warn_of_leftover_mounts(&ctx.proc, &runtime_root.join(&target), &target, kind);
            return Err(Error::TargetRunning { id: target });
        }
    }
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
    if found.is_some() || runtime_root.join(&target).exists() {
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
        options: crate::plan::DumpOptions {
            leave_running: meta.options.leave_running,
            tcp_established: meta.options.tcp_established,
            file_locks: meta.options.file_locks,
            ext_unix_sk: meta.options.ext_unix_sk,
        },
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
    let live = restore::live_init(&ctx.proc, pid);
    restore::confirm_resumed(&meta, &live, Some(&restore_log_text)).map_err(|reason| Error::NotResumed {
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

/// Refuses checkpoints made by a newer CRIU than the installed one.
pub fn check_criu_version(meta: &CheckpointMeta, criu: &Criu) -> Result<(), Error> {
    match CriuVersion::parse_plain(&meta.criu_version) {
        Some(made) if made > criu.version => Err(Error::CriuOlderThanCheckpoint {
            name: meta.name.clone(),
            made: made.to_string(),
            installed: criu.version.to_string(),
        }),
        _ => Ok(()),
    }
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

/// Decides the bundle to restore into (see [`restore::choose_bundle`]) and
/// checks that a generated one's rootfs exists. Reads, never writes.
fn choose_bundle(meta: &CheckpointMeta, dir: &Path, new_id: bool) -> Result<BundleChoice, Error> {
    let original = match (&meta.bundle, new_id) {
        (Some(bundle), false) => read_spec(&bundle.join("config.json"))?,
        _ => None,
    };
    let choice = restore::choose_bundle(meta, new_id, original.as_ref()).map_err(|r| match r {
        BundleRefusal::Inconsistent(reason) => Error::from(StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("{}: {reason}", crate::store::metadata::META_FILE),
        }),
        BundleRefusal::NoRootfs => Error::MissingPath {
            what: "root filesystem",
            path: PathBuf::from("(not recorded)"),
        },
        changed => changed.into(),
    })?;
    if let (BundleChoice::Generated(_), Some(rootfs)) = (&choice, &meta.rootfs) {
        if !rootfs.is_dir() {
            return Err(Error::MissingPath {
                what: "root filesystem",
                path: rootfs.clone(),
            });
        }
    }
    Ok(choice)
}

/// The parsed OCI spec at `path`; `None` if there is no file there.
fn read_spec(path: &Path) -> Result<Option<serde_json::Value>, Error> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let spec =
        serde_json::from_slice(&bytes).with_context(|| format!("cannot parse the OCI spec {}", path.display()))?;
    Ok(Some(spec))
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

/// Every bind mount's source must exist, or CRIU fails half-way.
fn check_bind_sources(spec: &serde_json::Value) -> Result<(), Error> {
    let Some(mounts) = spec.get("mounts").and_then(|m| m.as_array()) else {
        return Ok(());
    };
    for m in mounts {
        let is_bind = m["type"] == "bind"
            || m["options"]
                .as_array()
                .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"));
        if let (true, Some(src)) = (is_bind, m["source"].as_str()) {
            if !Path::new(src).exists() {
                return Err(Error::MissingPath {
                    what: "bind-mount source",
                    path: src.into(),
                });
            }
        }
    }
    Ok(())
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
