//! `ckpt rm`: remove one checkpoint.

use super::{Context, LOCK_WAIT};
use crate::cli::RmArgs;
use crate::error::Error;
use crate::output::Output;
use crate::store::{names, StoreError};

pub fn run(ctx: &Context, args: &RmArgs, out: &mut Output) -> Result<(), Error> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.name)?;
    // Checkpoints are root's: without root a present one would look absent.
    ctx.require_root("rm")?;
    let home = super::with_checkpoint_dir(
        ctx.engines.home(&args.container)?.home(),
        args.checkpoint_dir.as_deref(),
    )?;
    let (root, id) = (home.root, home.id);
    if !crate::store::Layout::new(&root)
        .checkpoint_dir(&id, &args.name)
        .exists()
    {
        return Err(StoreError::NotFound {
            container: args.container.clone(),
            name: args.name.clone(),
        }
        .into());
    }
    let store = ctx.open_store(&root)?;
    let _lock = store.lock(&id, LOCK_WAIT)?;
    // An incremental checkpoint's chunks: the exclusive chunk session is
    // taken before the removal and the collection runs after it, over the
    // recipes that remain. A crash between the two leaves chunks nobody
    // uses, which the next collection removes.
    let incremental = store
        .load(&id, &args.name)
        .ok()
        .and_then(|e| e.meta)
        .is_some_and(|m| m.is_incremental());
    let session = match incremental {
        true => super::incremental::session_for_removal(&store, &id, &args.name)?,
        false => None,
    };
    store.remove(&id, &args.name)?;
    out.say(format!("removed checkpoint {} of {}", args.name, args.container));
    if let Some(session) = session {
        let report = super::incremental::collect(&store, &id, &args.name, session)
            .map_err(|e| e.context(format!("checkpoint {} of {} was removed", args.name, args.container)))?;
        log::info!(
            "freed {} chunk bytes ({} pack(s) removed, {} rewritten)",
            report.bytes_freed,
            report.packs_removed,
            report.packs_rewritten
        );
    }
    Ok(())
}
