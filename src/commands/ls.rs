//! `ckpt ls`: list checkpoints as a table, JSON, or names only (`-q`),
//! oldest first. What is printed is decided by [`view`] and [`render`],
//! pure over the rows; `run` only gathers the rows.

use super::Context;
use crate::chunks::{refs, Recipe, RECIPE_FILE};
use crate::cli::{LsArgs, LsFormat};
use crate::error::Error;
use crate::output::Output;
use crate::plan::human_bytes;
use crate::store::{names, CheckpointEntry, Store};
use std::collections::BTreeMap;

/// One row of `ls --json`.
#[derive(Debug, serde::Serialize)]
pub struct Row {
    pub container: String,
    pub name: String,
    /// RFC 3339; for foreign checkpoints the directory's mtime.
    pub created: Option<String>,
    pub size_bytes: u64,
    /// What a full checkpoint of the same dump would take: `size_bytes`,
    /// plus its page files for an incremental one.
    pub logical_bytes: u64,
    /// The bytes only this checkpoint holds, which removing it frees: its
    /// directory, plus the chunks no other checkpoint of the container
    /// uses. `null` when a recipe of the container cannot be read.
    pub exclusive_bytes: Option<u64>,
    pub frozen_ms: Option<u64>,
    pub leave_running: Option<bool>,
    /// `ckpt` or `other` (e.g. `docker checkpoint create`).
    pub made_by: &'static str,
    pub runtime: Option<String>,
    pub dir: std::path::PathBuf,
}

/// What a checkpoint holds beyond its own directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A full (or another tool's) checkpoint: its directory is all of it.
    Full,
    /// An incremental one: its recipe's chunk sizes among the container's
    /// other recipes; `None` when one of them cannot be read.
    Chunks(Option<refs::Sizes>),
}

/// Builds a row from a store entry (pure).
pub fn row(e: &CheckpointEntry, held: Held) -> Row {
    let pages: u64 = e
        .meta
        .as_ref()
        .and_then(|m| m.incremental.as_ref())
        .map_or(0, |r| r.page_files.values().map(|f| f.size).sum());
    let (logical_bytes, exclusive_bytes) = match held {
        Held::Full => (e.size_bytes, Some(e.size_bytes)),
        Held::Chunks(s) => (e.size_bytes + pages, s.map(|s| e.size_bytes + s.only_here)),
    };
    Row {
        container: e.container_id.clone(),
        name: e.name.clone(),
        created: e.meta.as_ref().map(|m| m.created_at.clone()).or_else(|| mtime(&e.dir)),
        size_bytes: e.size_bytes,
        logical_bytes,
        exclusive_bytes,
        frozen_ms: e.meta.as_ref().map(|m| m.frozen_ms),
        leave_running: e.meta.as_ref().map(|m| m.options.leave_running),
        made_by: if e.meta.is_some() { "ckpt" } else { "other" },
        runtime: e.meta.as_ref().map(|m| m.runtime.clone()),
        dir: e.dir.clone(),
    }
}

/// The rows of `entries`, with the recipes of each container's checkpoints
/// read to size what each holds alone. A recipe in a directory whose
/// `ckpt.json` cannot be read still counts: its chunks are shared too.
fn rows(entries: &[CheckpointEntry]) -> Vec<Row> {
    let mut by_container: BTreeMap<&str, Vec<&CheckpointEntry>> = BTreeMap::new();
    for e in entries {
        by_container.entry(&e.container_id).or_default().push(e);
    }
    let mut rows = Vec::with_capacity(entries.len());
    for group in by_container.values() {
        let mut recipes: Vec<(&str, Recipe)> = Vec::new();
        let mut unreadable = false;
        for e in group {
            let path = e.dir.join(RECIPE_FILE);
            if std::fs::symlink_metadata(&path).is_err() {
                continue;
            }
            match Recipe::read(&path) {
                Ok(r) => recipes.push((&e.name, r)),
                Err(err) => {
                    log::warn!("cannot size checkpoint {} of {}: {err}", e.name, e.container_id);
                    unreadable = true;
                }
            }
        }
        let named: Vec<(&str, &Recipe)> = recipes.iter().map(|(n, r)| (*n, r)).collect();
        let sizes = refs::sizes(&named);
        for e in group {
            let incremental = e.meta.as_ref().is_some_and(|m| m.incremental.is_some());
            let held = match incremental {
                false => Held::Full,
                true => Held::Chunks(sizes.get(e.name.as_str()).copied().filter(|_| !unreadable)),
            };
            rows.push(row(e, held));
        }
    }
    rows
}

fn mtime(dir: &std::path::Path) -> Option<String> {
    let t = std::fs::metadata(dir).ok()?.modified().ok()?;
    Some(humantime::format_rfc3339_seconds(t).to_string())
}

pub fn run(ctx: &Context, args: &LsArgs, out: &mut Output) -> Result<(), Error> {
    let mut rows: Vec<Row> = match (&args.container, args.checkpoint_dir.as_deref()) {
        (Some(c), dir) => {
            names::validate_container_id(c)?;
            let home = super::with_checkpoint_dir(ctx.engines.home(c)?.home(), dir)?;
            let entries = list(ctx, &home.root, Some(&home.id))?;
            if entries.is_empty() && !known(ctx, c, &home)? {
                // As `docker checkpoint ls`: an id nobody knows is an error,
                // not an empty list.
                return Err(Error::UnknownContainer {
                    id: c.clone(),
                    store: home.root,
                });
            }
            rows(&entries)
        }
        (None, Some(dir)) => {
            // Only that store, as `--store DIR` would list it.
            let (root, _) = crate::store::checkpoint_dir::resolve(dir, None, false)?;
            rows(&list(ctx, &root, None)?)
        }
        (None, None) => {
            let mut rows: Vec<Row> = Vec::new();
            for listing in ctx.engines.listings()? {
                match list(ctx, &listing.root, None) {
                    Ok(entries) => rows.extend(self::rows(&entries).into_iter().map(|mut r| {
                        if let Some(runtime) = listing.runtime {
                            r.runtime.get_or_insert_with(|| runtime.into());
                        }
                        r
                    })),
                    Err(e) if !listing.required => log::warn!("cannot list Docker's checkpoints: {e}"),
                    Err(e) => return Err(e.into()),
                }
            }
            rows
        }
    };
    sort(&mut rows);
    match view(args, ctx.quiet) {
        View::Json => out.json(&rows)?,
        v => {
            let lines = render(&rows, v, args.container.is_some());
            if lines.is_empty() && v == View::Table {
                out.say("no checkpoints");
            }
            for l in lines {
                out.line(l);
            }
        }
    }
    Ok(())
}

/// What `ls` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Table,
    Json,
    /// `-q`: one checkpoint per line, `NAME` for one container's,
    /// `CONTAINER NAME` for all (neither can hold a space).
    Names,
}

/// The view the arguments ask for (pure). `-q` means names only, as in
/// `docker ps -q`, unless JSON was asked for by name.
pub fn view(args: &LsArgs, quiet: bool) -> View {
    match (args.json, args.format, quiet) {
        (true, _, _) | (_, Some(LsFormat::Json), _) => View::Json,
        (_, _, true) => View::Names,
        _ => View::Table,
    }
}

/// Oldest first: by creation time (RFC 3339 UTC to the second, so text
/// order is time order), then container, then name (pure).
pub fn sort(rows: &mut [Row]) {
    rows.sort_by(|a, b| (&a.created, &a.container, &a.name).cmp(&(&b.created, &b.container, &b.name)));
}

/// The lines of a table or a names-only listing (pure); a table of no rows
/// is empty (the caller says "no checkpoints").
pub fn render(rows: &[Row], view: View, one_container: bool) -> Vec<String> {
    match view {
        View::Names => rows
            .iter()
            .map(|r| match one_container {
                true => r.name.clone(),
                false => format!("{} {}", r.container, r.name),
            })
            .collect(),
        View::Table | View::Json if rows.is_empty() => Vec::new(),
        View::Table | View::Json => {
            let mut lines = vec![table_line([
                "CONTAINER",
                "NAME",
                "CREATED",
                "SIZE",
                "LOGICAL",
                "EXCLUSIVE",
                "FROZEN",
                "RUNNING",
                "BY",
            ])];
            lines.extend(rows.iter().map(|r| {
                table_line([
                    short(&r.container),
                    &r.name,
                    r.created.as_deref().unwrap_or_default(),
                    &human_bytes(r.size_bytes),
                    &human_bytes(r.logical_bytes),
                    &r.exclusive_bytes.map_or_else(|| "-".into(), human_bytes),
                    &r.frozen_ms.map(|f| format!("{f} ms")).unwrap_or_else(|| "-".into()),
                    match r.leave_running {
                        Some(true) => "yes",
                        Some(false) => "no",
                        None => "-",
                    },
                    r.made_by,
                ])
            }));
            lines
        }
    }
}

fn table_line(c: [&str; 9]) -> String {
    format!(
        "{:<20} {:<20} {:<21} {:>10} {:>10} {:>10} {:>9} {:<7} {:<5}",
        c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    )
    .trim_end()
    .to_string()
}

/// Whether `reference`, which has no checkpoints, names a container at all:
/// Docker's (its home is Docker's own directory), one with a directory in
/// the store (its checkpoints all removed, or only a failed dump's log or
/// lock left), or one a runtime knows in any state (running, stopped, its
/// pid reused).
fn known(ctx: &Context, reference: &str, home: &crate::engine::Home) -> Result<bool, Error> {
    use crate::engine::EngineError;
    if home.foreign || crate::store::Layout::new(&home.root).container_dir(&home.id).is_dir() {
        return Ok(true);
    }
    match ctx.engines.running(reference) {
        Ok(_) => Ok(true),
        Err(Error::Discovery(EngineError::NotFound { .. })) => Ok(false),
        Err(Error::Discovery(EngineError::NotRunning { .. } | EngineError::PidReused { .. })) => Ok(true),
        Err(e) => Err(e),
    }
}

/// A store's checkpoints; a missing store has none (listing never creates it).
fn list(
    ctx: &Context,
    root: &std::path::Path,
    id: Option<&str>,
) -> Result<Vec<CheckpointEntry>, crate::store::StoreError> {
    if root.exists() {
        Store::open_with(root, &ctx.proc)?.list(id)
    } else {
        Ok(Vec::new())
    }
}

/// Long (Docker-style 64 hex) ids are shortened to 12 characters in tables.
fn short(id: &str) -> &str {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}
