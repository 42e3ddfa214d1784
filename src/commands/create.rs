//! `ckpt create`: discover → inventory → plan → freeze → dump → publish
//! → (stop the container unless --leave-running).
//!
//! Order matters for "never lose a container": CRIU always dumps with
//! --leave-running, and when the user wants the container stopped, ckpt
//! freezes it first so CRIU leaves it frozen; the container is killed only
//! after the checkpoint is durably published. Any failure before that
//! thaws the container, which carries on as if nothing happened.

use super::{Context, LOCK_WAIT};
use crate::cli::{CreateArgs, Targets};
use crate::criu::{self, args::DUMP_LOG};
use crate::dump_watch::DumpWatch;
use crate::engine::{Container, Found};
use crate::error::{Error, ResultExt as _};
use crate::freezer::{self, FreezeGuard};
use crate::interrupt::{self, Interrupted};
use crate::inventory::{self, Inventory};
use crate::output::Output;
use crate::plan::{self, AfterDump, DumpOptions, DumpPlan};
use crate::progress::DirProgress;
use crate::stats::{micros, CheckpointPhases, CheckpointStats, ContainerCheckpointStats};
use crate::store::{self, names, CheckpointMeta, InventorySummary, Store};
use crate::watchdog::Watchdog;
use std::time::{Duration, Instant};

/// Result of a create, printed as text or JSON.
#[derive(Debug, serde::Serialize)]
pub(super) struct Created {
    container: String,
    name: String,
    dir: std::path::PathBuf,
    size_bytes: u64,
    frozen_ms: u64,
    dump_ms: u64,
    leave_running: bool,
    warnings: Vec<String>,
    /// `--export`: what was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    export: Option<super::export::Exported>,
    /// With --print-stats.
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<CheckpointStats>,
    /// With --incremental: what went into the chunk store.
    #[serde(skip_serializing_if = "Option::is_none")]
    incremental: Option<Stored>,
    /// With --retain: what retention removed after the publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<super::retention::Pruned>,
}

/// What an incremental create stored: its page bytes, and how many of them
/// were new to the container's chunk store.
#[derive(Debug, serde::Serialize)]
struct Stored {
    logical_bytes: u64,
    new_bytes: u64,
    chunks: usize,
    new_chunks: usize,
}

pub fn run(ctx: &Context, args: &CreateArgs, out: &mut Output) -> Result<(), Error> {
    match args.targets().map_err(|message| Error::Usage { message })? {
        Targets::One { container, name } => {
            let created = checkpoint(ctx, args, &container, &name)?;
            print(&created, args.json, out)
        }
        Targets::Many { which, name } => super::create_many::run(ctx, args, which, &name, out),
    }
}

/// Checkpoints the running container `reference` into `name`.
pub(super) fn checkpoint(ctx: &Context, args: &CreateArgs, reference: &str, name: &str) -> Result<Created, Error> {
    let begun = Instant::now();
    let mut phases = CheckpointPhases::default();
    names::validate_container_id(reference)?;
    names::validate_checkpoint_name(name)?;
    if args.export.is_some() && args.leave_running && !args.archive.no_rootfs {
        // Refused before anything is frozen: a running container's root
        // filesystem is no longer the checkpoint's (plan::export).
        return Err(Error::Usage {
            message: "--export with --leave-running needs --no-rootfs: the root filesystem of a running container changes under the export".into(),
        });
    }
    // --retain 0 is refused before anything is frozen.
    let retain = args
        .retain
        .map(|n| crate::chunks::retention::Policy::new(Some(n), None))
        .transpose()?;
    ctx.require_root("create")?;
    // Only create holds a container frozen: it alone must outlive a signal
    // long enough to thaw; the other commands may simply die.
    interrupt::install();
    let criu = ctx.criu.locate()?;
    let Found { container, engine } = ctx.engines.running(reference)?;
    log::info!(
        "found {} container {} (init pid {})",
        container.runtime.name(),
        container.id,
        container.init_pid
    );
    if args.incremental {
        let docker = container.runtime == crate::engine::RuntimeKind::Docker;
        if let Some(message) = crate::plan::incremental::incremental_refusal(&container.id, docker) {
            return Err(Error::Usage { message });
        }
    }
    engine.check_dump(name, args.leave_running)?;
    let spec = crate::spec::load(&container.spec_path)?;
    let home = super::with_checkpoint_dir(engine.home(), args.checkpoint_dir.as_deref())?;
    let store = ctx.open_store(&home.root)?;
    let _lock = store.lock(&home.id, LOCK_WAIT)?;

    let preflight = Instant::now();
    let inventory = inventory::collect(&ctx.proc, container.init_pid)?;
    let host = crate::facts::gather(&ctx.proc, &ctx.cgroup_root, &container, &spec.facts, store.root())?;
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
    phases.preflight = micros(preflight.elapsed());
    for w in &plan.warnings {
        log::warn!("{w}");
    }
    let freezer = plan.freezer.clone();

    let staging = store.begin(&home.id, name)?;
    staging.write_file("descriptors.json", serde_json::to_string(&plan.descriptors)?.as_bytes())?;
    staging.write_file("inventory.json", serde_json::to_string_pretty(&inventory)?.as_bytes())?;

    let mut guard = FreezeGuard::new(freezer.clone())?;
    // From here on the container may be frozen (by ckpt or by CRIU): a
    // watchdog leaves it as the user wants it should ckpt die, however it dies.
    let mut watchdog =
        Watchdog::spawn(ctx.exe.as_deref(), &freezer, guard.paused_before()).map_err(|source| Error::Spawn {
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
    phases.freeze = micros(frozen_at - started);
    log::info!(
        "dumping {} process(es) with criu {}",
        inventory.processes.len(),
        criu.version()
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
        phases.dump = micros(frozen_at.elapsed());
        log::debug!("longest time the dump did not grow: {:?}", watch.longest_idle);
        (dumped, watch.lent())
    };
    progress.finish();
    if let Some(paused) = engine.recorded_pause() {
        // The engine records a pause itself (Docker); its record decides.
        guard.will_mut().docker_paused = Some(paused);
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
        let kept = if args.keep {
            keep_failed_dump(&store, &home.id, staging)
        } else {
            keep_failed_log(&store, &home.id, &dump_log)
        };
        if let (criu::CriuError::Failed { log_path, .. } | criu::CriuError::Stalled { log_path, .. }, Some(kept)) =
            (&mut e, kept)
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
    // CRIU's own account of the dump, read before publishing moves it.
    let criu_stats = args.print_stats.then(|| read_dump_stats(staging.dir())).flatten();

    // --incremental: the page files become a recipe of chunks before the
    // publish; the chunk session is held until the publish is done.
    let chunked = match args.incremental {
        true => Some(super::incremental::chunk_staging(&store, &home.id, name, &staging)?),
        false => None,
    };
    let mut meta = metadata(
        &container,
        &spec.raw,
        &inventory,
        &plan,
        Recorded {
            name,
            criu: criu.version(),
            created_at,
            frozen_ms,
            dump_ms,
        },
    );
    if let Some(c) = &chunked {
        meta.schema_version = store::INCREMENTAL_SCHEMA;
        meta.incremental = Some(c.record.clone());
    }
    let publishing = Instant::now();
    let dir = staging.publish(meta)?;
    let stored = chunked.map(|c| {
        drop(c.session);
        Stored {
            logical_bytes: c.stats.bytes,
            new_bytes: c.stats.new_bytes,
            chunks: c.stats.chunks,
            new_chunks: c.stats.new_chunks,
        }
    });
    let size_bytes = store.load(&home.id, name).map(|e| e.size_bytes).unwrap_or(0);
    phases.publish = micros(publishing.elapsed());

    let stopping = Instant::now();
    if plan.after == AfterDump::Stop {
        engine.stop_after_dump(&container, &freezer).with_context(|| {
            format!(
                "checkpoint {} is saved in {}, but container {} could not be stopped",
                name,
                dir.display(),
                container.id
            )
        })?;
    }
    phases.stop = micros(stopping.elapsed());
    drop(guard);
    watchdog.disarm();
    let export = match &args.export {
        None => None,
        Some(file) => {
            let entry = store.load(&home.id, name)?;
            Some(
                super::export::export_verified(&store, engine.as_ref(), &entry, file, &args.archive, ctx.quiet)
                    .with_context(|| {
                        format!(
                            "checkpoint {} is saved in {}, but its export to {} failed",
                            name,
                            dir.display(),
                            file.display()
                        )
                    })?,
            )
        }
    };

    // Retention only after everything the create promised is done: the
    // checkpoint is published (and exported), so the one just made is
    // protected and a failure here loses nothing of it.
    let retention = match retain {
        None => None,
        Some(policy) => Some(
            super::retention::apply(&store, &home.id, policy, Some(name), false).with_context(|| {
                format!(
                    "checkpoint {} is saved in {}, but retention (--retain) failed",
                    name,
                    dir.display()
                )
            })?,
        ),
    };

    let created = Created {
        container: container.id.clone(),
        name: name.to_string(),
        dir,
        size_bytes,
        frozen_ms,
        dump_ms,
        leave_running: args.leave_running,
        warnings: plan.warnings,
        export,
        incremental: stored,
        retention,
        stats: args.print_stats.then(|| CheckpointStats {
            ckpt_checkpoint_duration: micros(begun.elapsed()),
            container_statistics: vec![ContainerCheckpointStats {
                id: container.id.clone(),
                runtime_checkpoint_duration: phases.dump,
                criu_statistics: criu_stats.map(Into::into),
                phases,
            }],
        }),
    };
    Ok(created)
}

/// Prints one create's result, as JSON or as its result line (and the
/// statistics' lines).
pub(super) fn print(created: &Created, json: bool, out: &mut Output) -> Result<(), Error> {
    if json {
        out.json(created)?;
    } else {
        out.say(format!(
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
        if let Some(s) = &created.incremental {
            out.say(format!(
                "incremental: {} of {} page bytes were new ({} of {} chunks)",
                plan::human_bytes(s.new_bytes),
                plan::human_bytes(s.logical_bytes),
                s.new_chunks,
                s.chunks
            ));
        }
        if let Some(e) = &created.export {
            out.say(super::export::describe(e));
        }
        if let Some(p) = &created.retention {
            for line in super::retention::describe(&created.container, p) {
                out.say(line);
            }
        }
        if let Some(stats) = &created.stats {
            for l in crate::stats::text_lines(stats) {
                out.line(l);
            }
        }
    }
    Ok(())
}

/// CRIU's stats-dump in `dir`, if CRIU wrote one ckpt can read (a missing
/// or unreadable one is a warning: the checkpoint itself is fine).
fn read_dump_stats(dir: &std::path::Path) -> Option<criu::stats::DumpStats> {
    let path = dir.join("stats-dump");
    let stats = std::fs::read(&path)
        .ok()
        .and_then(|b| criu::stats::parse_dump_stats(&b));
    if stats.is_none() {
        log::warn!("no CRIU statistics: cannot read {}", path.display());
    }
    stats
}

/// What a dump measured and used, for its metadata.
struct Recorded<'a> {
    name: &'a str,
    criu: crate::criu::CriuVersion,
    created_at: String,
    frozen_ms: u64,
    dump_ms: u64,
}

fn metadata(c: &Container, spec: &serde_json::Value, inv: &Inventory, plan: &DumpPlan, r: Recorded) -> CheckpointMeta {
    CheckpointMeta {
        schema_version: store::SCHEMA_VERSION,
        tool: format!("ckpt {}", env!("CARGO_PKG_VERSION")),
        container_id: c.id.clone(),
        name: r.name.to_string(),
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
        criu_version: r.criu.to_string(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        created_at: r.created_at,
        frozen_ms: r.frozen_ms,
        dump_ms: r.dump_ms,
        size_bytes: 0,
        options: store::metadata::DumpOptionsRecord {
            leave_running: plan.options.leave_running,
            tcp_established: plan.options.tcp_established,
            file_locks: plan.options.file_locks,
            ext_unix_sk: plan.options.ext_unix_sk,
        },
        descriptors: plan.descriptors.clone(),
        files: Default::default(),
        imported: None,
        incremental: None,
    }
}

/// `--keep`: keeps the failed dump's whole directory as
/// `<store>/<id>/dump-failed/`; the path of its log, or `None` (a warning)
/// if it could not be kept (the staging directory is then removed as usual).
fn keep_failed_dump(store: &Store, id: &str, staging: store::Staging) -> Option<std::path::PathBuf> {
    let to = store.layout().kept_dump(id);
    match staging.keep(&to) {
        Ok(dir) => {
            log::warn!("kept the failed dump's directory in {} (--keep)", dir.display());
            Some(dir.join(DUMP_LOG))
        }
        Err(e) => {
            log::warn!("cannot keep the failed dump's directory: {}", crate::error::chain(&e));
            None
        }
    }
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
