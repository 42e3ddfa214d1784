//! `ckpt verify --all [--repair] [CONTAINER]`: every checkpoint of a
//! container, or of every container in the store, checked as `verify`
//! checks one; each chunk is hashed once and a bad one is reported for
//! every checkpoint whose recipe uses it. `--repair` then runs one
//! collection per chunk store (under the container lock and the exclusive
//! chunk session): it removes only what no recipe uses and reports the
//! missing and corrupt chunks it cannot mend.
//!
//! Never changes a checkpoint; never removes a chunk a recipe names.

use super::{Context, LOCK_WAIT};
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::output::Output;
use crate::store::{names, CheckpointEntry, Layout, Store};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// One checkpoint's verdict.
#[derive(Debug, serde::Serialize)]
struct Checked {
    container: String,
    name: String,
    /// `ckpt` or `other`; absent when its files could not be checked.
    made_by: Option<&'static str>,
    incremental: bool,
    intact: bool,
    /// What is wrong, when not intact.
    problem: Option<String>,
}

/// What `--repair` did to one container's chunk store.
#[derive(Debug, serde::Serialize)]
struct Repaired {
    container: String,
    packs_removed: usize,
    packs_rewritten: usize,
    bytes_freed: u64,
    /// Chunks a recipe uses that no pack holds (not mendable here).
    missing: usize,
    /// Chunks a recipe uses found corrupt (their packs are kept).
    corrupt: usize,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    checkpoints: Vec<Checked>,
    damaged: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    repaired: Option<Vec<Repaired>>,
}

pub fn run(ctx: &Context, args: &VerifyArgs, out: &mut Output) -> Result<(), Error> {
    // Checkpoint files are root's (0600): reading them needs root.
    ctx.require_root("verify")?;
    // (store root, container id, Docker's directory) of each container.
    let targets: Vec<(PathBuf, String, bool)> = match &args.container {
        Some(c) => {
            names::validate_container_id(c)?;
            let home = ctx.engines.home(c)?.home();
            vec![(home.root, home.id, home.foreign)]
        }
        None if !ctx.store_root.is_dir() => Vec::new(),
        None => {
            let store = ctx.open_store(&ctx.store_root)?;
            let mut ids: Vec<String> = store.list(None)?.into_iter().map(|e| e.container_id).collect();
            ids.sort();
            ids.dedup();
            ids.into_iter().map(|id| (ctx.store_root.clone(), id, false)).collect()
        }
    };
    let mut report = Report {
        checkpoints: Vec::new(),
        damaged: 0,
        repaired: args.repair.then(Vec::new),
    };
    for (root, id, foreign) in targets {
        if !Layout::new(&root).checkpoints_dir(&id).is_dir() {
            continue;
        }
        let store = ctx.open_store(&root)?;
        report.checkpoints.extend(check_container(&store, &id, foreign)?);
        if let Some(repaired) = report.repaired.as_mut() {
            if let Some(r) = repair(&store, &id)? {
                repaired.push(r);
            }
        }
    }
    report.damaged = report.checkpoints.iter().filter(|c| !c.intact).count();
    if args.json {
        out.json(&report)?;
    } else {
        for c in &report.checkpoints {
            out.line(match &c.problem {
                None => format!("ok       {} {}", c.container, c.name),
                Some(p) => format!("DAMAGED  {} {}: {p}", c.container, c.name),
            });
        }
        for r in report.repaired.iter().flatten() {
            out.say(format!(
                "repaired the chunk store of {}: {} pack(s) removed, {} rewritten, {} freed; {} missing and {} corrupt chunk(s) left",
                r.container,
                r.packs_removed,
                r.packs_rewritten,
                crate::plan::human_bytes(r.bytes_freed),
                r.missing,
                r.corrupt
            ));
        }
        out.say(format!(
            "{} checkpoint(s) checked, {} damaged",
            report.checkpoints.len(),
            report.damaged
        ));
    }
    match report.damaged {
        0 => Ok(()),
        damaged => Err(Error::Damaged {
            damaged,
            total: report.checkpoints.len(),
        }),
    }
}

/// Every checkpoint of `id`: its own files first, then the chunks of all
/// its recipes in one pass.
fn check_container(store: &Store, id: &str, foreign: bool) -> Result<Vec<Checked>, Error> {
    let entries = store.list(Some(id))?;
    let mut checked = Vec::with_capacity(entries.len());
    let mut recipes: Vec<(String, crate::chunks::Recipe)> = Vec::new();
    for entry in &entries {
        let record = entry.meta.as_ref().and_then(|m| m.incremental.as_ref());
        let mut c = Checked {
            container: id.to_string(),
            name: entry.name.clone(),
            made_by: None,
            incremental: record.is_some(),
            intact: true,
            problem: None,
        };
        match checked_files(store, entry, foreign) {
            Ok(made_by) => c.made_by = Some(made_by),
            Err(e) => c.problem = Some(e),
        }
        if let (None, Some(record)) = (&c.problem, record) {
            match super::incremental::recipe_of(entry, record) {
                Ok(r) => recipes.push((entry.name.clone(), r)),
                Err(e) => c.problem = Some(chain(&e)),
            }
        }
        c.intact = c.problem.is_none();
        checked.push(c);
    }
    if !recipes.is_empty() {
        let named: Vec<(&str, &crate::chunks::Recipe)> = recipes.iter().map(|(n, r)| (n.as_str(), r)).collect();
        let mut by_checkpoint: BTreeMap<String, Vec<crate::chunks::Problem>> = BTreeMap::new();
        for p in super::incremental::verify_many(store, id, &named)? {
            by_checkpoint.entry(p.checkpoint.clone()).or_default().push(p);
        }
        for c in &mut checked {
            if let Some(problems) = by_checkpoint.get(&c.name) {
                c.problem = Some(crate::plan::incremental::describe_problems(problems));
                c.intact = false;
            }
        }
    }
    Ok(checked)
}

fn checked_files(store: &Store, entry: &CheckpointEntry, foreign: bool) -> Result<&'static str, String> {
    super::verify::check_files(store, entry, foreign)
        .map(|(_, made_by)| made_by)
        .map_err(|e| chain(&e))
}

/// An error with its causes, as one line.
fn chain(e: &Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// One collection of `id`'s chunk store, if it has one.
fn repair(store: &Store, id: &str) -> Result<Option<Repaired>, Error> {
    let _lock = store.lock(id, LOCK_WAIT)?;
    let Some(session) = super::incremental::session_for_removal(store, id, "(repair)")? else {
        return Ok(None);
    };
    let r = super::incremental::collect(store, id, "(repair)", session)?;
    Ok(Some(Repaired {
        container: id.to_string(),
        packs_removed: r.packs_removed,
        packs_rewritten: r.packs_rewritten,
        bytes_freed: r.bytes_freed,
        missing: r.missing.len(),
        corrupt: r.corrupt.len(),
    }))
}
