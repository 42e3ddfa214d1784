//! `ckpt verify`: check a checkpoint's files without touching any container;
//! `--all` every checkpoint of a container or of the store, `--repair` then
//! collects the chunks no checkpoint uses. Never changes a checkpoint, and
//! never removes a chunk a checkpoint's recipe names.

use super::Context;
use crate::cli::VerifyArgs;
use crate::error::Error;
use crate::output::Output;
use crate::plan::human_bytes;
use crate::store::{names, StoreError};

#[derive(Debug, serde::Serialize)]
struct Verified {
    container: String,
    name: String,
    dir: std::path::PathBuf,
    files: usize,
    size_bytes: u64,
    made_by: &'static str,
    /// Whether `ckpt.json` itself is covered by a checksum (schema 2 on).
    metadata_checksummed: bool,
    /// Whether its page files are chunks in the container's chunk store
    /// (each of which was checked too).
    incremental: bool,
    intact: bool,
}

pub fn run(ctx: &Context, args: &VerifyArgs, out: &mut Output) -> Result<(), Error> {
    if args.repair && !args.all {
        return Err(Error::Usage {
            message: "--repair goes with --all: it repairs a container's (or the store's) chunk stores as a whole"
                .into(),
        });
    }
    if args.all {
        return super::verify_all::run(ctx, args, out);
    }
    let (Some(container), Some(name)) = (&args.container, &args.name) else {
        return Err(Error::Usage {
            message: "give CONTAINER NAME, or --all".into(),
        });
    };
    names::validate_container_id(container)?;
    names::validate_checkpoint_name(name)?;
    // Checkpoint files are root's (0600): reading them needs root.
    ctx.require_root("verify")?;
    let home = ctx.engines.home(container)?.home();
    let (root, id) = (home.root, home.id);
    if !crate::store::Layout::new(&root).container_dir(&id).is_dir() {
        return Err(StoreError::NotFound {
            container: container.clone(),
            name: name.clone(),
        }
        .into());
    }
    let store = ctx.open_store(&root)?;
    let entry = store.load(&id, name)?;
    let sealed = entry.meta.as_ref().is_some_and(|m| m.is_sealed());
    let (files, made_by) = check_files(&store, &entry, home.foreign)?;
    if let Some(record) = entry.meta.as_ref().and_then(|m| m.incremental.as_ref()) {
        let problems = super::incremental::verify(&store, &entry, record)?;
        if !problems.is_empty() {
            return Err(StoreError::Corrupt {
                dir: entry.dir.clone(),
                reason: crate::plan::incremental::describe_problems(&problems),
            }
            .into());
        }
    }
    let v = Verified {
        container: container.clone(),
        name: name.clone(),
        dir: entry.dir.clone(),
        files,
        size_bytes: entry.size_bytes,
        made_by,
        metadata_checksummed: sealed,
        incremental: entry.meta.as_ref().is_some_and(|m| m.is_incremental()),
        intact: true,
    };
    if args.json {
        out.json(&v)?;
    } else if made_by == "ckpt" {
        out.say(format!(
            "checkpoint {} of {} is intact: {} files, {}, every checksum matches{}{}",
            v.name,
            v.container,
            v.files,
            human_bytes(v.size_bytes),
            if v.incremental {
                ", and every chunk of its page files"
            } else {
                ""
            },
            if sealed {
                ""
            } else {
                " (ckpt.json itself has no checksum: metadata schema 1)"
            }
        ));
    } else {
        out.say(format!(
            "checkpoint {} of {} was not made by ckpt (no checksums); CRIU's core images are present ({} files, {})",
            v.name,
            v.container,
            v.files,
            human_bytes(v.size_bytes)
        ));
    }
    Ok(())
}

/// The checks of one checkpoint's own directory (its chunks aside): every
/// file against `ckpt.json`, or for another tool's checkpoint (`foreign`:
/// Docker's directory) CRIU's core images. Returns the number of files and
/// who made it.
pub fn check_files(
    store: &crate::store::Store,
    entry: &crate::store::CheckpointEntry,
    foreign: bool,
) -> Result<(usize, &'static str), Error> {
    match &entry.meta {
        Some(meta) => {
            store.verify(entry)?;
            Ok((meta.files.len(), "ckpt"))
        }
        // In ckpt's own store a checkpoint without ckpt.json is damaged.
        None if !foreign => Err(StoreError::Corrupt {
            dir: entry.dir.clone(),
            reason: "ckpt.json: missing".into(),
        }
        .into()),
        None => {
            if let Some(image) = crate::store::listing::missing_core_image(&entry.dir) {
                return Err(StoreError::Corrupt {
                    dir: entry.dir.clone(),
                    reason: crate::store::listing::missing_image_reason(image),
                }
                .into());
            }
            Ok((std::fs::read_dir(&entry.dir).map(|d| d.count()).unwrap_or(0), "other"))
        }
    }
}
