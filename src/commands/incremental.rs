//! The steps incremental checkpoints add to `create`, `start`, `verify` and
//! `rm`: thin glue between the store and the container's chunk store
//! (`<root>/<id>/chunks`, see `chunks`). The decisions are in
//! `plan::incremental`; the chunk store keeps its own promises (a recipe
//! names only durable chunks; collection keeps exactly what published
//! recipes use).
//!
//! Never writes into a published checkpoint: chunks go to the chunk store,
//! the recipe to the staging directory, reassembled page files to a
//! restore's work directory.

use super::LOCK_WAIT;
use crate::chunks::{self, ChunkError, ChunkStore, CollectPolicy, Problem, Reassembly, Recipe, Session, WriteStats};
use crate::error::Error;
use crate::plan::incremental::{recipe_matches, record_of};
use crate::store::{CheckpointEntry, IncrementalRecord, Staging, Store, StoreError, WorkDir};

/// What `create --incremental` did to its staging directory.
pub struct Chunked {
    /// The exclusive chunk session: hold it until the checkpoint is
    /// published, so that no collection can remove a chunk its recipe uses.
    pub session: Session,
    pub record: IncrementalRecord,
    pub stats: WriteStats,
}

fn chunk_err(step: &'static str, id: &str, name: &str) -> impl FnOnce(ChunkError) -> Error {
    let (container, checkpoint) = (id.to_string(), name.to_string());
    move |source| Error::Chunks {
        step,
        container,
        checkpoint,
        source: Box::new(source),
    }
}

fn open(store: &Store, id: &str, name: &str) -> Result<ChunkStore, Error> {
    ChunkStore::open(&store.layout().chunks_dir(id)).map_err(chunk_err("open the chunk store for", id, name))
}

/// Replaces the page files CRIU wrote into `staging` by a recipe, their
/// new chunks made durable in the container's chunk store first.
pub fn chunk_staging(store: &Store, id: &str, name: &str, staging: &Staging) -> Result<Chunked, Error> {
    let step = "store the pages of";
    let mut writer = open(store, id, name)?
        .writer(LOCK_WAIT)
        .map_err(chunk_err(step, id, name))?;
    let recipe = writer
        .add_page_files(staging.dir())
        .map_err(chunk_err(step, id, name))?;
    let stats = writer.stats();
    let session = writer.commit().map_err(chunk_err(step, id, name))?;
    staging.write_file(chunks::RECIPE_FILE, &recipe.to_bytes())?;
    for f in &recipe.files {
        staging.remove_file(&f.name)?;
    }
    log::info!(
        "stored {} of {} chunk(s) as new: {} of {} bytes",
        stats.new_chunks,
        stats.chunks,
        stats.new_bytes,
        stats.bytes
    );
    Ok(Chunked {
        session,
        record: record_of(&recipe),
        stats,
    })
}

/// The recipe of the published, verified incremental checkpoint `entry`,
/// checked against what its `ckpt.json` records.
pub fn recipe_of(entry: &CheckpointEntry, record: &IncrementalRecord) -> Result<Recipe, Error> {
    let recipe = Recipe::read(&entry.dir.join(chunks::RECIPE_FILE)).map_err(chunk_err(
        "read the recipe of",
        &entry.container_id,
        &entry.name,
    ))?;
    recipe_matches(record, &recipe).map_err(|reason| StoreError::Corrupt {
        dir: entry.dir.clone(),
        reason,
    })?;
    Ok(recipe)
}

/// Makes `work` the image directory of the incremental checkpoint `entry`:
/// its files copied, its page files reassembled there with every chunk
/// checked. A missing or corrupt chunk is an error naming it (exit 7),
/// before anything else of the restore happened.
pub fn materialise(
    store: &Store,
    entry: &CheckpointEntry,
    record: &IncrementalRecord,
    work: &WorkDir,
) -> Result<(), Error> {
    let (id, name) = (&entry.container_id, &entry.name);
    let recipe = recipe_of(entry, record)?;
    store.copy_images(entry, work, &[record.recipe.as_str()])?;
    let reader = open(store, id, name)?
        .reader(LOCK_WAIT)
        .map_err(chunk_err("reassemble", id, name))?;
    for file in &recipe.files {
        reader
            .reassemble(file, work.path(), Reassembly::RESTORE)
            .map_err(chunk_err("reassemble", id, name))?;
    }
    Ok(())
}

/// The full form of the verified incremental checkpoint `entry` in `work`
/// (its files, its page files reassembled and checked, a schema-2
/// `ckpt.json` listing them, sealed), as an entry an export reads like any
/// other.
pub fn full_form(
    store: &Store,
    entry: &CheckpointEntry,
    meta: &crate::store::CheckpointMeta,
    record: &IncrementalRecord,
    work: &WorkDir,
) -> Result<CheckpointEntry, Error> {
    materialise(store, entry, record, work)?;
    let full = crate::plan::incremental::full_meta(meta);
    store.write_work_meta(work, &full)?;
    Ok(CheckpointEntry {
        container_id: entry.container_id.clone(),
        name: entry.name.clone(),
        dir: work.path().to_path_buf(),
        size_bytes: full.size_bytes,
        meta: Some(full),
    })
}

/// Every chunk problem of the incremental checkpoint `entry`.
pub fn verify(store: &Store, entry: &CheckpointEntry, record: &IncrementalRecord) -> Result<Vec<Problem>, Error> {
    let (id, name) = (&entry.container_id, &entry.name);
    let recipe = recipe_of(entry, record)?;
    let reader = open(store, id, name)?
        .reader(LOCK_WAIT)
        .map_err(chunk_err("verify the chunks of", id, name))?;
    Ok(reader.verify([(name.as_str(), &recipe)]))
}

/// The exclusive chunk session `rm` holds around a removal, if the
/// container has a chunk store.
pub fn session_for_removal(store: &Store, id: &str, name: &str) -> Result<Option<Session>, Error> {
    if !store.layout().chunks_dir(id).is_dir() {
        return Ok(None);
    }
    let session = open(store, id, name)?
        .session(LOCK_WAIT)
        .map_err(chunk_err("remove the chunks of", id, name))?;
    Ok(Some(session))
}

/// After a removal: removes every chunk no remaining checkpoint of `id`
/// uses. The remaining recipes are read now, under `session`. A remaining
/// checkpoint whose recipe cannot be read stops the collection (its
/// chunks must not go); the removal itself stands.
pub fn collect(store: &Store, id: &str, name: &str, mut session: Session) -> Result<chunks::CollectReport, Error> {
    let mut recipes = Vec::new();
    for entry in store.list(Some(id))? {
        match entry.meta.as_ref().map(|m| m.incremental.as_ref()) {
            Some(Some(record)) => recipes.push(recipe_of(&entry, record)?),
            Some(None) => {}
            // Metadata that cannot be read may still be an incremental
            // checkpoint's: its recipe keeps its chunks.
            None => {
                let path = entry.dir.join(chunks::RECIPE_FILE);
                if std::fs::symlink_metadata(&path).is_ok() {
                    recipes.push(Recipe::read(&path).map_err(chunk_err("read the recipe of", id, &entry.name))?);
                }
            }
        }
    }
    session
        .collect(&recipes, CollectPolicy::EXACT)
        .map_err(chunk_err("collect the chunks of", id, name))
}

/// Every chunk problem of the recipes `named` (checkpoint name, recipe) of
/// container `id`, each chunk checked once and each bad one reported for
/// every checkpoint using it (`verify --all`).
pub fn verify_many(store: &Store, id: &str, named: &[(&str, &Recipe)]) -> Result<Vec<Problem>, Error> {
    let reader = open(store, id, "(all)")?
        .reader(LOCK_WAIT)
        .map_err(chunk_err("verify the chunks of", id, "(all)"))?;
    Ok(reader.verify(named.iter().copied()))
}
