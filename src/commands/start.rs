//! `ckpt start`: load → verify → restore through the runtime → confirm.
//!
//! Nothing is written until every check has passed (schema, checksums,
//! CRIU version, the bundle and its rootfs, bind-mount sources, the
//! target's files, the target not running), and all of it under the locks
//! of the source and the target: a refused start changes nothing, and of
//! two starts into one target the second sees what the first did.

use super::{require_root, CommandError, Context, LOCK_WAIT};
use crate::cli::StartArgs;
use crate::criu::{Criu, CriuVersion};
use crate::discovery::{self, RuntimeKind, SearchRoots, Status};
use crate::restore;
use crate::restore::{BundleChoice, BundleRefusal};
use crate::runtime::{RestoreRequest, Runtime};
use crate::store::{names, CheckpointMeta, ContainerLock, Store, StoreError};
use anyhow::Context as _;
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

pub fn run(ctx: &Context, args: &StartArgs) -> anyhow::Result<()> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.checkpoint)?;
    if let Some(t) = super::docker_target(ctx, &args.container)? {
        super::refuse_ambiguous(ctx, &args.container, &t)?;
        return super::start_docker::run(ctx, args, t);
    }
    let target = args.name.clone().unwrap_or_else(|| args.container.clone());
    names::validate_container_id(&target)?;
    require_root("start")?;
    let criu = Criu::locate()?;
    let store = Store::open(&ctx.store_root)?;
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
    let kind = RuntimeKind::from_name(&meta.runtime).ok_or_else(|| {
        anyhow::anyhow!(
            "checkpoint {} was made for runtime {:?}, which this ckpt cannot restore",
            meta.name,
            meta.runtime
        )
    })?;
    let runtime_root = meta
        .runtime_root
        .clone()
        .unwrap_or_else(|| kind.default_roots()[0].clone());
    let runtime = Runtime::locate(kind, &runtime_root)?;

    // 2. Where will it go? Decided in full before anything is written.
    let bundle_choice = choose_bundle(&meta, &entry.dir, args.name.is_some())?;
    check_bind_sources(&meta.spec)?;
    // What this start writes into the target's directory must be ckpt's
    // own files, not symlinks planted there.
    store.check_no_symlinks(&target, TARGET_FILES)?;
    let roots = SearchRoots {
        roots: vec![(kind, runtime_root.clone())],
    };
    let found = discovery::lookup(&roots, &ctx.proc_root, &target)?;
    if found.as_ref().is_some_and(|f| f.status != Status::Stopped) {
        return Err(CommandError::TargetRunning { id: target }.into());
    }

    // Every check has passed: from here on, ckpt writes.
    let bundle = write_bundle(&store, &target, bundle_choice)?;
    if found.is_some() {
        log::info!("deleting the stopped container {target} so it can be restored");
        runtime.delete(&target)?;
    } else if runtime_root.join(&target).exists() {
        // A state dir without a state file: the leftover of an earlier
        // failed create or restore. The runtime refuses the id until it goes.
        log::info!("removing the leftover state of {target} in {}", runtime_root.display());
        let _ = runtime.delete(&target);
    }

    // 3. Restore.
    let work = tempfile::Builder::new()
        // `<name>.<pid>.<nonce>` like every staging entry, so that a work
        // dir left by a killed ckpt is cleaned by the next command.
        .prefix(&format!("restore.{}.", std::process::id()))
        .tempdir_in(
            crate::store::publish::ensure_private_dir(&store.layout().staging_root(&target))
                .map(|()| store.layout().staging_root(&target))?,
        )
        .map_err(|source| CommandError::Io {
            op: "create a work directory in",
            path: store.layout().staging_root(&target),
            source,
        })?;
    let output_log = store.layout().container_dir(&target).join("output.log");
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
    let kept_log = store.layout().container_dir(&target).join("restore.log");
    let _ = store.replace_file(&target, "restore.log", restore_log_text.as_bytes());
    // CRIU killed part-way leaves its cgroup yard mounted under the work dir.
    crate::cleanup::unmount_below(work.path());
    if restored.is_err() {
        // Leave no half-created container behind to block the next attempt,
        // and nothing running that the runtime no longer knows about.
        let _ = runtime.delete(&target);
        let cgroups_path = bundle_cgroups_path(&bundle);
        crate::cleanup::kill_restored_leftovers(&target, cgroups_path.as_deref());
    }
    restored.with_context(|| format!("nothing was started; restore log kept at {}", kept_log.display()))?;
    let restore_ms = started.elapsed().as_millis() as u64;

    // 4. Did the saved processes come back?
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| CommandError::NotResumed {
            id: target.clone(),
            reason: format!("{} wrote no pid file", kind.name()),
        })?;
    let live = restore::live_init(&ctx.proc_root, pid);
    restore::confirm_resumed(&meta, &live, Some(&restore_log_text)).map_err(|reason| CommandError::NotResumed {
        id: target.clone(),
        reason,
    })?;

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
pub fn check_criu_version(meta: &CheckpointMeta, criu: &Criu) -> Result<(), CommandError> {
    match CriuVersion::parse_plain(&meta.criu_version) {
        Some(made) if made > criu.version => Err(CommandError::CriuOlderThanCheckpoint {
            name: meta.name.clone(),
            made: made.to_string(),
            installed: criu.version.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The files `start` writes below `<store>/<target>/` (and their dirs).
const TARGET_FILES: &[&str] = &[
    "output.log",
    "restore.log",
    ".ckpt-staging",
    "bundle",
    "bundle/config.json",
];

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
fn choose_bundle(meta: &CheckpointMeta, dir: &Path, new_id: bool) -> anyhow::Result<BundleChoice> {
    let original = match (&meta.bundle, new_id) {
        (Some(bundle), false) => read_spec(&bundle.join("config.json"))?,
        _ => None,
    };
    let choice = restore::choose_bundle(meta, new_id, original.as_ref()).map_err(|r| match r {
        BundleRefusal::Inconsistent(reason) => anyhow::Error::new(StoreError::Corrupt {
            dir: dir.to_path_buf(),
            reason: format!("{}: {reason}", crate::store::metadata::META_FILE),
        }),
        BundleRefusal::NoRootfs => CommandError::MissingPath {
            what: "root filesystem",
            path: PathBuf::from("(not recorded)"),
        }
        .into(),
        changed => changed.into(),
    })?;
    if let (BundleChoice::Generated(_), Some(rootfs)) = (&choice, &meta.rootfs) {
        if !rootfs.is_dir() {
            return Err(CommandError::MissingPath {
                what: "root filesystem",
                path: rootfs.clone(),
            }
            .into());
        }
    }
    Ok(choice)
}

/// The parsed OCI spec at `path`; `None` if there is no file there.
fn read_spec(path: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(CommandError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            }
            .into())
        }
    };
    let spec =
        serde_json::from_slice(&bytes).with_context(|| format!("cannot parse the OCI spec {}", path.display()))?;
    Ok(Some(spec))
}

/// Puts the chosen bundle in place: the original as it is, or the
/// generated spec as `<store>/<target>/bundle/config.json`, written by the
/// store (0600, fsynced, renamed into place). Returns the bundle dir.
fn write_bundle(store: &Store, target: &str, choice: BundleChoice) -> anyhow::Result<PathBuf> {
    match choice {
        BundleChoice::Original(dir) => Ok(dir),
        BundleChoice::Generated(spec) => {
            let path = store.replace_file(target, "bundle/config.json", &serde_json::to_vec_pretty(&spec)?)?;
            Ok(path.parent().expect("a file in bundle/").to_path_buf())
        }
    }
}

/// Every bind mount's source must exist, or CRIU fails half-way.
fn check_bind_sources(spec: &serde_json::Value) -> Result<(), CommandError> {
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
                return Err(CommandError::MissingPath {
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
fn spawn_relay(output_log: &Path) -> anyhow::Result<std::os::fd::OwnedFd> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let exe = std::env::current_exe()?;
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
    cmd.spawn().context("cannot start the output relay")?;
    Ok(write)
}

/// `linux.cgroupsPath` of the bundle's spec, if any.
fn bundle_cgroups_path(bundle: &Path) -> Option<String> {
    let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(bundle.join("config.json")).ok()?).ok()?;
    spec["linux"]["cgroupsPath"].as_str().map(str::to_string)
}
