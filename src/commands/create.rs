//! `ckpt create`: discover → inventory → plan → freeze → dump → publish
//! → (stop the container unless --leave-running).
//!
//! Order matters for "never lose a container": CRIU always dumps with
//! --leave-running, and when the user wants the container stopped, ckpt
//! freezes it first so CRIU leaves it frozen; the container is killed only
//! after the checkpoint is durably published. Any failure before that
//! thaws the container, which carries on as if nothing happened.

use super::{require_root, Context, LOCK_WAIT};
use crate::cgroups::FreezerDir;
use crate::cli::CreateArgs;
use crate::criu::{self, args::DUMP_LOG, Criu};
use crate::dump_watch::DumpWatch;
use crate::engine::oci::runtime::Runtime;
use crate::engine::{self, docker::DockerTarget, Container};
use crate::error::{Error, ResultExt as _};
use crate::freezer::{self, FreezeGuard};
use crate::interrupt::{self, Interrupted};
use crate::inventory::{self, Inventory};
use crate::plan::{self, AfterDump, DumpOptions};
use crate::procfs::ProcRoot;
use crate::progress::DirProgress;
use crate::store::{self, names, CheckpointMeta, InventorySummary, Store};
use crate::watchdog::Watchdog;
use std::time::{Duration, Instant};

/// Result of a create, printed as text or JSON.
#[derive(Debug, serde::Serialize)]
struct Created {
    container: String,
    name: String,
    dir: std::path::PathBuf,
    size_bytes: u64,
    frozen_ms: u64,
    dump_ms: u64,
    leave_running: bool,
    warnings: Vec<String>,
}

pub fn run(ctx: &Context, args: &CreateArgs) -> Result<(), Error> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.name)?;
    require_root("create")?;
    // Only create holds a container frozen: it alone must outlive a signal
    // long enough to thaw; the other commands may simply die.
    interrupt::install();
    let criu = Criu::locate()?;
    let (container, docker) = engine::find_running(&ctx.roots, ctx.docker, &ctx.proc, &args.container)?;
    log::info!(
        "found {} container {} (init pid {})",
        container.runtime.name(),
        container.id,
        container.init_pid
    );
    if let Some(d) = &docker {
        names::validate_docker_checkpoint_name(&args.name)?;
        if let Some(blocker) = crate::engine::docker::restore_blocker(
            &d.daemon.info.version,
            &d.view.network_mode,
            d.view.network_disabled,
        ) {
            if !args.leave_running {
                // Stopping a container this Docker cannot restore would lose it.
                return Err(Error::from(blocker).context(format!(
                    "refusing to stop {} for a checkpoint it could not be restored from",
                    d.view.name
                )));
            }
            log::warn!("{blocker}");
        }
    }
    let spec = crate::spec::load(&container.spec_path)?;
    // Docker only restores checkpoints from its own directory.
    let store_root = docker
        .as_ref()
        .map(|d| d.daemon.store_root())
        .unwrap_or_else(|| ctx.store_root.clone());
    let store = Store::open_with(&store_root, &ctx.proc)?;
    let _lock = store.lock(&container.id, LOCK_WAIT)?;

    let inventory = inventory::collect(&ctx.proc, container.init_pid)?;
    let host = crate::facts::gather(&ctx.proc, &container, &spec.facts, store.root())?;
    let opts = DumpOptions {
        leave_running: args.leave_running,
        tcp_established: args.criu.tcp_established,
        file_locks: args.criu.file_locks,
        ext_unix_sk: args.criu.ext_unix_sk,
    };
    let plan = plan::dump_plan(&spec.facts, &inventory, &host, &opts).map_err(|r| Error::Refused {
        id: container.id.clone(),
        refusal: r,
    })?;
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    let freezer = plan.freezer.clone();

    let staging = store.begin(&container.id, &args.name)?;
    staging.write_file("descriptors.json", serde_json::to_string(&plan.descriptors)?.as_bytes())?;
    staging.write_file("inventory.json", serde_json::to_string_pretty(&inventory)?.as_bytes())?;

    let mut guard = FreezeGuard::new(freezer.clone())?;
    // From here on the container may be frozen (by ckpt or by CRIU): a
    // watchdog leaves it as the user wants it should ckpt die, however it dies.
    let mut watchdog = Watchdog::spawn(&freezer, guard.paused_before()).map_err(|source| Error::Spawn {
        what: "the watchdog",
        source,
    })?;
    let dump_log = staging.dir().join(DUMP_LOG);
    watchdog.announce_log(&dump_log);
    let created_at = super::now_rfc3339();
    let started = Instant::now();
    // ckpt freezes the container itself, with or without --leave-running:
    // CRIU then finds it frozen and re-freezes it before it releases the
    // tasks, on success and on its own error paths. That is what makes a
    // user's pause during the dump safe to lend to CRIU (see `pause`).
    if !guard.paused_before() {
        freezer::freeze(&freezer, Duration::from_secs(10))?;
    }
    let frozen_at = Instant::now();
    log::info!(
        "dumping {} process(es) with criu {}",
        inventory.processes.len(),
        criu.version
    );
    let mut progress = DirProgress::new(
        "dumping",
        staging.dir(),
        inventory.estimated_image_bytes(),
        !ctx.quiet && !args.json,
    );
    let (dumped, lent) = {
        let mut watch = DumpWatch::new(
            &container.id,
            &freezer,
            staging.dir().to_path_buf(),
            dump_log.clone(),
            &mut guard,
            &mut watchdog,
            &mut progress,
        );
        let dumped = criu.run(
            "dump",
            &criu::args::dump_args(&plan, staging.dir()),
            &dump_log,
            &mut watch,
        );
        log::debug!("longest time the dump did not grow: {:?}", watch.longest_idle);
        (dumped, watch.lent())
    };
    progress.finish();
    if let Some(d) = &docker {
        // Docker records a pause itself; its record decides.
        if let Ok(Some((view, _))) = d.daemon.inspect(&container.id) {
            guard.will_mut().docker_paused = Some(view.paused);
        }
    }
    let left = if guard.will().wants_paused() {
        "is left paused, as the user left it"
    } else {
        "keeps running"
    };
    if let (Err(_), Some(sig)) = (&dumped, interrupt::pending()) {
        // CRIU died of the signal ckpt forwarded: report the interrupt.
        return Err(Interrupted(sig).into());
    }
    if let Err(mut e) = dumped {
        // The staging dir (and the log in it) goes away with this error:
        // point the message at the copy that stays.
        if let (criu::CriuError::Failed { log_path, .. } | criu::CriuError::Stalled { log_path, .. }, Some(kept)) =
            (&mut e, keep_failed_log(&store, &container.id, &dump_log))
        {
            *log_path = kept;
        }
        return Err(Error::from(e).context(format!("container {} was not changed and {left}", container.id)));
    }
    if let Some(sig) = interrupt::pending() {
        return Err(Interrupted(sig).into());
    }
    if plan.after == AfterDump::Resume {
        // Thaw at once (unless the user paused it): publishing takes a while.
        guard.settle()?;
    }
    let frozen_ms = frozen_at.elapsed().as_millis() as u64;
    if lent && guard.will().wants_paused() {
        log::warn!(
            "container {} was paused while CRIU dumped it; {}",
            container.id,
            match plan.after {
                AfterDump::Resume => "it is left paused",
                AfterDump::Stop => "it is stopped now, as asked",
            }
        );
    }
    let dump_ms = started.elapsed().as_millis() as u64;

    let meta = metadata(
        &container,
        &spec.raw,
        &inventory,
        &criu,
        &args.name,
        created_at,
        frozen_ms,
        dump_ms,
        &plan.options,
        plan.descriptors.clone(),
    );
    let dir = staging.publish(meta)?;
    let size_bytes = store.load(&container.id, &args.name).map(|e| e.size_bytes).unwrap_or(0);

    if plan.after == AfterDump::Stop {
        stop_container(&ctx.proc, &container, &freezer, docker.as_ref()).with_context(|| {
            format!(
                "checkpoint {} is saved in {}, but container {} could not be stopped",
                args.name,
                dir.display(),
                container.id
            )
        })?;
    }
    drop(guard);
    watchdog.disarm();

    let created = Created {
        container: container.id.clone(),
        name: args.name.clone(),
        dir,
        size_bytes,
        frozen_ms,
        dump_ms,
        leave_running: args.leave_running,
        warnings: plan.warnings,
    };
    if args.json {
        crate::outln!("{}", serde_json::to_string_pretty(&created)?);
    } else {
        ctx.say(format!(
            "checkpoint {} of {} created: {} in {} (frozen {} ms, dump {} ms){}",
            created.name,
            created.container,
            plan::human_bytes(created.size_bytes),
            created.dir.display(),
            created.frozen_ms,
            created.dump_ms,
            if created.leave_running {
                "; container left running"
            } else {
                "; container stopped"
            }
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn metadata(
    c: &Container,
    spec: &serde_json::Value,
    inv: &Inventory,
    criu: &Criu,
    name: &str,
    created_at: String,
    frozen_ms: u64,
    dump_ms: u64,
    opts: &DumpOptions,
    descriptors: Vec<String>,
) -> CheckpointMeta {
    CheckpointMeta {
        schema_version: store::SCHEMA_VERSION,
        tool: format!("ckpt {}", env!("CARGO_PKG_VERSION")),
        container_id: c.id.clone(),
        name: name.to_string(),
        runtime: c.runtime.name().to_string(),
        runtime_root: Some(c.runtime_root.clone()),
        bundle: Some(c.bundle.clone()),
        rootfs: Some(c.rootfs.clone()),
        spec: spec.clone(),
        inventory: InventorySummary {
            process_count: inv.processes.len(),
            fd_count: inv.processes.iter().map(|p| p.fds.len()).sum(),
            anon_rss_bytes: inv.processes.iter().map(|p| p.memory.anon_rss).sum(),
            processes: inv
                .processes
                .iter()
                .map(|p| (p.ns_pid.unwrap_or(p.pid), p.comm.clone()))
                .collect(),
        },
        criu_version: criu.version.to_string(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        created_at,
        frozen_ms,
        dump_ms,
        size_bytes: 0,
        options: store::metadata::DumpOptionsRecord {
            leave_running: opts.leave_running,
            tcp_established: opts.tcp_established,
            file_locks: opts.file_locks,
            ext_unix_sk: opts.ext_unix_sk,
        },
        descriptors,
        files: Default::default(),
    }
}

/// Kills every task of the (frozen) container, thaws it so the kill lands,
/// waits for init to go, and has the runtime delete the container so that
/// its id is free for the restore (what `runc checkpoint` does too).
fn stop_container(
    proc: &ProcRoot,
    c: &Container,
    freezer: &FreezerDir,
    docker: Option<&DockerTarget>,
) -> Result<(), Error> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    for pid in freezer::pids(freezer)? {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(c.init_pid), Signal::SIGKILL);
    // Thaw even a container the user had paused: frozen tasks do not act
    // on SIGKILL, and stopping it is what the user asked for.
    freezer::thaw(freezer, Duration::from_secs(10))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    // Exited once gone, reaped or a zombie (its reaper is not ours to wait for).
    while engine::liveness(proc, c) == engine::Status::Running {
        if Instant::now() > deadline {
            return Err(Error::StillRunning { pid: c.init_pid });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    if let Some(d) = docker {
        // containerd reaps the task and Docker marks the container exited,
        // as after `docker checkpoint create`; wait so a start can follow.
        d.daemon.wait_stopped(&c.id, Duration::from_secs(10))?;
        return Ok(());
    }
    let runtime = Runtime::locate(c.runtime, &c.runtime_root, proc)?;
    runtime.delete(&c.id)?;
    Ok(())
}

/// Copies a failed dump's log next to the container's checkpoints so it
/// survives the removal of the staging directory. Written by the store
/// (0600, renamed into place), never through a symlink planted there.
fn keep_failed_log(store: &Store, id: &str, log: &std::path::Path) -> Option<std::path::PathBuf> {
    let kept = std::fs::read(log)
        .map_err(|source| Error::Io {
            op: "read",
            path: log.to_path_buf(),
            source,
        })
        .and_then(|text| Ok(store.write_log(id, crate::store::Log::DumpFailed, &text)?));
    kept.map_err(|e| log::warn!("cannot keep CRIU's log of the failed dump: {}", crate::error::chain(&e)))
        .ok()
}
