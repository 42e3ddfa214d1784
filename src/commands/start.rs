//! `ckpt start`: load → verify → plan → prepare → restore through the
//! engine → confirm.
//!
//! Nothing is written until every check has passed (schema, checksums,
//! the plan: CRIU version, the bundle and its rootfs, bind-mount sources,
//! the target's files, the target not running), and all of it under the
//! locks of the source and the target: a refused start changes nothing,
//! and of two starts into one target the second sees what the first did.
//! A restore that fails, or that SIGINT, SIGTERM or SIGHUP interrupts, is
//! undone whole by its engine: the target is then stopped and the
//! checkpoint can be restored again. Where the restore runs in ckpt's own
//! children (runc, crun), ckpt never dies of those signals while it runs:
//! it lets the runtime finish, then undoes.

use super::{Context, LOCK_WAIT};
use crate::cli::StartArgs;
use crate::engine::{Report, Undo};
use crate::error::{Error, ResultExt as _};
use crate::interrupt::{self, Interrupted};
use crate::output::Output;
use crate::plan::confirm;
use crate::plan::incremental::{choose, Choice, LATEST};
use crate::plan::restore::{restore_plan, RestoreOptions};
use crate::stats::{micros, ContainerRestoreStats, RestorePhases, StartStats};
use crate::store::{names, ContainerLock, Store, StoreError};
use std::path::PathBuf;
use std::time::Instant;

/// `start --json` of a runc or crun restore.
#[derive(Debug, serde::Serialize)]
struct Started {
    container: String,
    checkpoint: String,
    pid: i32,
    runtime: String,
    output_log: PathBuf,
    restore_ms: u64,
    /// With --print-stats.
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<StartStats>,
}

/// `start --json` of a Docker restore.
#[derive(Debug, serde::Serialize)]
struct DockerStarted {
    container: String,
    id: String,
    checkpoint: String,
    pid: i32,
    runtime: &'static str,
    restore_ms: u64,
    retries: u32,
    /// With --print-stats (no CRIU statistics: see docs/usage.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    stats: Option<StartStats>,
}

/// How the result is printed, and what was measured before the restore.
struct Asked {
    json: bool,
    print_stats: bool,
    tcp_close: bool,
    begun: Instant,
    phases: RestorePhases,
}

pub fn run(ctx: &Context, args: &StartArgs, out: &mut Output) -> Result<(), Error> {
    let mut report = Asked {
        json: args.json,
        print_stats: args.print_stats,
        tcp_close: args.tcp_close,
        begun: Instant::now(),
        phases: RestorePhases::default(),
    };
    if let Some(file) = &args.import {
        if args.checkpoint_dir.is_some() {
            // An import goes into --store; a second place would be a guess.
            return Err(Error::Usage {
                message: "--import and --checkpoint-dir cannot be combined: an import is published into --store".into(),
            });
        }
        // The import is published whole before the restore begins: a
        // restore that fails leaves it in the store, to be started again.
        ctx.require_root("start")?;
        let importing = Instant::now();
        let imported = super::import::import_file(ctx, file, args.name.as_deref(), &args.import_flags)?;
        report.phases.import = micros(importing.elapsed());
        for c in &imported.changes {
            // With --json, stdout is the one JSON value.
            if args.json {
                log::warn!("import: {c}");
            } else {
                out.say(format!("import: {c}"));
            }
        }
        return restore(ctx, &imported.container, &imported.checkpoint, None, None, report, out).with_context(|| {
            format!(
                "checkpoint {} of {} was imported from {} and stays in the store",
                imported.checkpoint,
                imported.container,
                file.display()
            )
        });
    }
    let (Some(container), Some(checkpoint)) = (&args.container, &args.checkpoint) else {
        return Err(Error::Usage {
            message: "give CONTAINER and --checkpoint NAME, or --import FILE".into(),
        });
    };
    restore(
        ctx,
        container,
        checkpoint,
        args.name.as_deref(),
        args.checkpoint_dir.as_deref(),
        report,
        out,
    )
}

/// Restores checkpoint `checkpoint` of `container`, as `new_name` if given.
fn restore(
    ctx: &Context,
    container: &str,
    checkpoint: &str,
    new_name: Option<&str>,
    checkpoint_dir: Option<&std::path::Path>,
    mut report: Asked,
    out: &mut Output,
) -> Result<(), Error> {
    let json = report.json;
    names::validate_container_id(container)?;
    names::validate_checkpoint_name(checkpoint)?;
    if let Some(name) = new_name {
        names::validate_container_id(name)?;
    }
    let engine = ctx.engines.home(container)?;
    let home = super::with_checkpoint_dir(engine.home(), checkpoint_dir)?;
    ctx.require_root("start")?;
    let opts = RestoreOptions {
        new_name: new_name.map(str::to_string),
        tcp_close: report.tcp_close,
    };
    if engine.defers_signals() {
        // From here a signal is remembered, not fatal: the restore below
        // must finish or be undone, never be abandoned half-way.
        interrupt::install();
    }
    // CRIU as soon as it is sure to be needed: every checkpoint in ckpt's
    // store has a CRIU version to check; one in Docker's directory may not.
    let mut criu = match home.foreign {
        false => Some(ctx.criu.locate()?.version()),
        true => None,
    };
    engine.check_restore(&opts)?;
    let store = ctx.open_store(&home.root)?;
    // `--checkpoint latest`: the newest complete checkpoint (published
    // ones only, so never one being made).
    let checkpoint = &match choose(checkpoint, &listed_if_latest(&store, &home.id, checkpoint)?) {
        Choice::Named(name) => name,
        Choice::Latest(name) => {
            log::info!("the latest checkpoint of {} is {name}", home.name);
            name
        }
        Choice::NoneComplete => {
            return Err(StoreError::NotFound {
                container: home.name.clone(),
                name: checkpoint.to_string(),
            }
            .into())
        }
    };
    // Look before locking: the lock would create the container's directory.
    if !store.layout().checkpoint_dir(&home.id, checkpoint).exists() {
        return Err(StoreError::NotFound {
            container: home.name.clone(),
            name: checkpoint.to_string(),
        }
        .into());
    }
    let _locks = lock_in_order(&store, &home.id, engine.target_lock_id(&opts).as_deref())?;

    // 1. Is the checkpoint whole, and whose is it?
    let verifying = Instant::now();
    let entry = store.load(&home.id, checkpoint)?;
    match &entry.meta {
        // In ckpt's own store every checkpoint has a ckpt.json: one without
        // is damaged (Docker's directory is where foreign checkpoints live).
        None if !home.foreign => {
            return Err(StoreError::Corrupt {
                dir: entry.dir.clone(),
                reason: "ckpt.json: missing".into(),
            }
            .into())
        }
        None => {}
        Some(_) => {
            store.verify(&entry)?;
            if criu.is_none() {
                criu = Some(ctx.criu.locate()?.version());
            }
        }
    }

    report.phases.verify = micros(verifying.elapsed());

    // 2. Where will it go? Decided in full before anything is written.
    let planning = Instant::now();
    let facts = engine.restore_facts(&store, &entry, &opts, criu)?;
    let mut plan = restore_plan(&entry, &facts, &opts)?;
    report.phases.plan = micros(planning.elapsed());
    if let Some(sig) = interrupt::pending() {
        return Err(Error::from(Interrupted(sig)).context("nothing was started or changed"));
    }
    // An incremental checkpoint: its page files reassembled, every chunk
    // checked, into a work directory of its own (never into the published
    // checkpoint), before anything of the restore is written.
    let _images = match entry.meta.as_ref().and_then(|m| m.incremental.as_ref()) {
        Some(_) if home.foreign => {
            return Err(Error::Usage {
                message: format!(
                    "checkpoint {checkpoint} of {} is incremental, and Docker restores only whole page files",
                    home.name
                ),
            })
        }
        Some(record) => {
            let work = store.restore_work_dir(&home.id)?;
            super::incremental::materialise(&store, &entry, record, &work)
                .map_err(|e| e.context("nothing was started or changed"))?;
            plan.images = work.path().to_path_buf();
            Some(work)
        }
        None => None,
    };

    // 3. Every check has passed: from here on, ckpt writes.
    let preparing = Instant::now();
    let prepared = engine.prepare(&store, &entry, &plan)?;
    report.phases.prepare = micros(preparing.elapsed());
    if let Some(sig) = interrupt::pending() {
        return Err(Error::from(Interrupted(sig)).context("nothing was started"));
    }
    let undo = |failure: Option<Error>| {
        let signal = interrupt::pending();
        engine.undo(&store, &plan, &prepared, Undo { failure, signal })
    };
    let restoring = Instant::now();
    let restored = match engine.restore(&store, &plan, &prepared) {
        Err(e) => return Err(undo(Some(e))),
        Ok(_) if interrupt::pending().is_some() => return Err(undo(None)),
        Ok(restored) => restored,
    };
    report.phases.restore = micros(restoring.elapsed());

    // 4. Did the saved processes come back?
    let confirming = Instant::now();
    let pid = engine.restored_init(&plan, &prepared)?;
    let live = ctx.proc.live_init(pid);
    confirm::confirm(entry.meta.as_ref(), &live, restored.restore_log.as_deref()).map_err(|reason| {
        Error::NotResumed {
            id: prepared.name.clone(),
            reason,
        }
    })?;
    // The last moment to honour a signal: past it, success is reported.
    if interrupt::pending().is_some() {
        return Err(undo(None));
    }
    report.phases.confirm = micros(confirming.elapsed());
    let (id, name) = (prepared.id.clone(), prepared.name.clone());
    drop(prepared);
    let stats = report.print_stats.then(|| {
        if restored.criu_stats.is_none() && matches!(restored.report, Report::Oci { .. }) {
            log::warn!("no CRIU statistics: the restore left no readable stats-restore");
        }
        StartStats {
            ckpt_restore_duration: micros(report.begun.elapsed()),
            container_statistics: vec![ContainerRestoreStats {
                id: name.clone(),
                runtime_restore_duration: report.phases.restore,
                criu_statistics: restored.criu_stats.map(Into::into),
                phases: report.phases,
            }],
        }
    });

    // Without --json the statistics follow the result line, as with create.
    let text_stats = if json { None } else { stats.clone() };
    match restored.report {
        Report::Oci { runtime, output_log } => {
            let started = Started {
                container: name,
                checkpoint: plan.checkpoint,
                pid,
                runtime: runtime.name().into(),
                output_log,
                restore_ms: restored.restore_ms,
                stats,
            };
            if json {
                out.json(&started)?;
            } else {
                out.say(format!(
                    "container {} restored from checkpoint {} in {} ms (pid {}); its output goes to {}",
                    started.container,
                    started.checkpoint,
                    started.restore_ms,
                    started.pid,
                    started.output_log.display()
                ));
            }
        }
        Report::Docker { retries } => {
            let started = DockerStarted {
                container: name,
                id,
                checkpoint: checkpoint.to_string(),
                pid,
                runtime: "docker",
                restore_ms: restored.restore_ms,
                retries,
                stats,
            };
            if json {
                out.json(&started)?;
            } else {
                out.say(format!(
                    "Docker container {} restored from checkpoint {} in {} ms (pid {}){}; see `docker logs {}`",
                    started.container,
                    started.checkpoint,
                    started.restore_ms,
                    started.pid,
                    match started.retries {
                        0 => String::new(),
                        n => format!(
                            " after {n} retr{} (Docker's stale-content error, moby#42900)",
                            if n == 1 { "y" } else { "ies" }
                        ),
                    },
                    started.container
                ));
            }
        }
    }
    for l in text_stats.iter().flat_map(crate::stats::text_lines) {
        out.line(l);
    }
    Ok(())
}

/// The container's checkpoints when `checkpoint` is the word `latest`
/// (nothing to list otherwise; a container without any has none).
fn listed_if_latest(store: &Store, id: &str, checkpoint: &str) -> Result<Vec<crate::store::CheckpointEntry>, Error> {
    if checkpoint != LATEST || !store.layout().checkpoints_dir(id).is_dir() {
        return Ok(Vec::new());
    }
    Ok(store.list(Some(id))?)
}

/// Takes the locks of `source` and, when there is one and it is another
/// id, of `target`, always in the order of the ids: two starts crossing
/// the same two ids (`--name B A` and `--name A B`) then never each hold
/// one lock while waiting for the other. A target unknown to the store gets
/// a directory for its lock, which goes again if the start writes nothing
/// there.
fn lock_in_order(store: &Store, source: &str, target: Option<&str>) -> Result<Vec<ContainerLock>, StoreError> {
    let mut ids: Vec<&str> = [Some(source), target].into_iter().flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter().map(|id| store.lock(id, LOCK_WAIT)).collect()
}
