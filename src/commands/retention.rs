//! Retention, shared by `ckpt prune` and `ckpt create --retain`: applies
//! the pure plan of `chunks::retention` to one container's checkpoints and
//! frees the chunks that only the removed ones used.
//!
//! The caller holds the container's lock. Removes only what the plan
//! removes: never the newest, never the protected one (the checkpoint a
//! create just published), never one whose metadata cannot be read. The
//! chunk session is taken before the first removal and the collection runs
//! over the recipes that remain, as `rm` does: a crash in between leaves
//! only chunks nobody uses, which the next collection removes; every pass
//! that is not a dry run collects, even one that removes nothing.

use crate::chunks::retention::{self, Policy};
use crate::error::Error;
use crate::store::{CheckpointEntry, Store};

/// What a retention pass did (or, with `dry_run`, would do).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Newest first.
    pub removed: Vec<String>,
    /// Newest first, then those without a readable creation time.
    pub kept: Vec<String>,
    pub dry_run: bool,
    /// The sizes of the removed checkpoints' directories.
    pub checkpoint_bytes: u64,
    /// Chunk bytes no longer stored (0 with `dry_run`: what goes depends
    /// on what the remaining recipes share).
    pub chunk_bytes_freed: u64,
}

/// The retention view of `entries`: a checkpoint without metadata, or
/// whose `created_at` cannot be read, has no time and so is never removed.
pub fn dated(entries: &[CheckpointEntry]) -> Vec<retention::Checkpoint<'_>> {
    entries
        .iter()
        .map(|e| retention::Checkpoint {
            name: &e.name,
            created: e.meta.as_ref().and_then(|m| retention::parse_created(&m.created_at)),
        })
        .collect()
}

/// Seconds since the epoch, now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Applies `policy` to the checkpoints of `id` in `store`, sparing
/// `protect`.
pub fn apply(store: &Store, id: &str, policy: Policy, protect: Option<&str>, dry_run: bool) -> Result<Pruned, Error> {
    let entries = match store.layout().checkpoints_dir(id).is_dir() {
        true => store.list(Some(id))?,
        false => Vec::new(),
    };
    let cps = dated(&entries);
    let plan = retention::plan(&cps, policy, now(), protect);
    let size_of = |name: &str| entries.iter().find(|e| e.name == name).map_or(0, |e| e.size_bytes);
    let mut pruned = Pruned {
        removed: plan.remove.iter().map(|s| s.to_string()).collect(),
        kept: plan.keep.iter().map(|s| s.to_string()).collect(),
        dry_run,
        checkpoint_bytes: plan.remove.iter().map(|n| size_of(n)).sum(),
        chunk_bytes_freed: 0,
    };
    if dry_run {
        return Ok(pruned);
    }
    // Collected even when nothing is removed: a crashed create or rm
    // leaves chunks nobody uses, and the next retention pass frees them.
    let first = plan.remove.first().copied().unwrap_or("(none)");
    let session = super::incremental::session_for_removal(store, id, first)?;
    for (done, name) in plan.remove.iter().enumerate() {
        store.remove(id, name).map_err(|e| {
            Error::from(e).context(format!(
                "retention had removed {} of {} checkpoint(s) of {id} ({})",
                done,
                plan.remove.len(),
                match done {
                    0 => "none".to_string(),
                    _ => plan.remove[..done].join(", "),
                }
            ))
        })?;
        log::info!("removed checkpoint {name} of {id}");
    }
    if let Some(session) = session {
        let report = super::incremental::collect(store, id, first, session)
            .map_err(|e| e.context(format!("checkpoint(s) {} of {id} were removed", plan.remove.join(", "))))?;
        pruned.chunk_bytes_freed = report.bytes_freed;
    }
    Ok(pruned)
}

/// The text lines of a pass.
pub fn describe(id: &str, p: &Pruned) -> Vec<String> {
    let verb = if p.dry_run { "would remove" } else { "removed" };
    let mut lines: Vec<String> = p
        .removed
        .iter()
        .map(|n| format!("{verb} checkpoint {n} of {id}"))
        .collect();
    lines.push(match (p.removed.len(), p.dry_run) {
        (0, _) => format!("nothing to remove; {} checkpoint(s) of {id} kept", p.kept.len()),
        (n, true) => format!(
            "{n} checkpoint(s) would go ({}, and the chunks only they use); {} kept",
            crate::plan::human_bytes(p.checkpoint_bytes),
            p.kept.len()
        ),
        (n, false) => format!(
            "{n} checkpoint(s) removed ({} of checkpoints, {} of chunks freed); {} kept",
            crate::plan::human_bytes(p.checkpoint_bytes),
            crate::plan::human_bytes(p.chunk_bytes_freed),
            p.kept.len()
        ),
    });
    lines
}
