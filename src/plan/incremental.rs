//! PURE: the decisions of incremental checkpoints that are not the chunk
//! store's own: what `ckpt.json` records of a recipe, whether a published
//! recipe still is the one its `ckpt.json` describes, whether a container
//! may be checkpointed incrementally, and which checkpoint `--checkpoint
//! latest` names.
//!
//! Nothing here touches the system; the commands gather the inputs
//! (recipes, listings) and act on the answers.

use crate::chunks::{retention, ChunkProblem, Problem, Recipe, CHUNK_SIZE, RECIPE_FILE};
use crate::store::{CheckpointEntry, CheckpointMeta, FileDigest, IncrementalRecord, SCHEMA_VERSION};
use std::collections::BTreeMap;

/// The word `start --checkpoint` takes for the newest complete checkpoint.
pub const LATEST: &str = "latest";

/// `ckpt.json`'s record of `recipe`: the page files it stands for, as a
/// full checkpoint's `files` would list them.
pub fn record_of(recipe: &Recipe) -> IncrementalRecord {
    IncrementalRecord {
        recipe: RECIPE_FILE.to_string(),
        chunk_size: CHUNK_SIZE,
        chunk_rule: "address".to_string(),
        page_files: recipe
            .files
            .iter()
            .map(|f| {
                (
                    f.name.clone(),
                    FileDigest {
                        size: f.size,
                        blake3: f.blake3.to_hex(),
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Whether `recipe` (read from the checkpoint) reassembles exactly the page
/// files `record` lists; the reason if not. The recipe file's own digest is
/// checked with the other files; this guards against a recipe that parses
/// but is not the one `ckpt.json` was written with.
pub fn recipe_matches(record: &IncrementalRecord, recipe: &Recipe) -> Result<(), String> {
    if record.recipe != RECIPE_FILE {
        return Err(format!(
            "its recipe is {:?}, this ckpt reads only {RECIPE_FILE}",
            record.recipe
        ));
    }
    let listed = record_of(recipe).page_files;
    for (name, want) in &record.page_files {
        match listed.get(name) {
            None => return Err(format!("{RECIPE_FILE} does not rebuild {name}")),
            Some(got) if got != want => {
                return Err(format!("{RECIPE_FILE} rebuilds {name} other than ckpt.json records"))
            }
            Some(_) => {}
        }
    }
    if let Some(extra) = listed.keys().find(|n| !record.page_files.contains_key(*n)) {
        return Err(format!("{RECIPE_FILE} rebuilds {extra}, which ckpt.json does not list"));
    }
    Ok(())
}

/// The `ckpt.json` of an incremental checkpoint's full form (an export):
/// schema 2, its page files listed in `files` instead of the recipe, no
/// incremental record. Exactly what a full create would have recorded.
pub fn full_meta(meta: &CheckpointMeta) -> CheckpointMeta {
    let mut full = meta.clone();
    if let Some(record) = full.incremental.take() {
        full.schema_version = SCHEMA_VERSION;
        if let Some(recipe) = full.files.remove(&record.recipe) {
            full.size_bytes = full.size_bytes.saturating_sub(recipe.size);
        }
        for (name, digest) in record.page_files {
            full.size_bytes += digest.size;
            full.files.insert(name, digest);
        }
    }
    full
}

/// `verify`'s account of damaged chunks: each one by digest and file,
/// missing or corrupt (and in which pack).
pub fn describe_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match &p.problem {
            ChunkProblem::Missing => format!("chunk {} of {} is missing from the chunk store", p.digest, p.file),
            ChunkProblem::Corrupt(pack) => {
                format!("chunk {} of {} is corrupt (in {})", p.digest, p.file, pack.display())
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a container cannot be checkpointed incrementally: Docker restores
/// its checkpoints itself, from whole page files.
pub fn incremental_refusal(container: &str, docker: bool) -> Option<String> {
    docker.then(|| {
        format!(
            "container {container} is a Docker container: `docker start --checkpoint` restores only whole page \
             files from Docker's checkpoint directory, so ckpt cannot store its checkpoints incrementally; \
             create it without --incremental"
        )
    })
}

/// Which checkpoint a `--checkpoint` argument names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The checkpoint of this name.
    Named(String),
    /// `latest`, resolved to the newest complete checkpoint.
    Latest(String),
    /// `latest`, but the container has no complete checkpoint.
    NoneComplete,
}

/// What `--checkpoint WHAT` names among the container's published
/// checkpoints `entries`. `latest` is the newest checkpoint with a valid
/// (sealed, readable) `ckpt.json` by `created_at`, ties broken by the
/// greater name; checkpoints ckpt did not make, or whose metadata cannot
/// be read, are never "latest". A checkpoint literally named `latest` is
/// what `latest` names, as it was before the word had a meaning: a name
/// that exists always means itself, so no existing script changes meaning.
pub fn choose(what: &str, entries: &[CheckpointEntry]) -> Choice {
    if what != LATEST || entries.iter().any(|e| e.name == LATEST) {
        return Choice::Named(what.to_string());
    }
    let dated: Vec<retention::Checkpoint> = entries
        .iter()
        .filter_map(|e| {
            let meta = e.meta.as_ref()?;
            Some(retention::Checkpoint {
                name: &e.name,
                created: retention::parse_created(&meta.created_at),
            })
        })
        .collect();
    match retention::latest(&dated) {
        Some(name) => Choice::Latest(name.to_string()),
        None => Choice::NoneComplete,
    }
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;
