//! `ckpt prune`: remove a container's older checkpoints under a retention
//! policy (see `commands::retention`). Never removes the newest checkpoint,
//! nor one whose metadata cannot be read; `--dry-run` changes nothing.

use super::{Context, LOCK_WAIT};
use crate::chunks::retention::Policy;
use crate::cli::PruneArgs;
use crate::error::Error;
use crate::output::Output;
use crate::store::names;

#[derive(serde::Serialize)]
struct Report<'a> {
    container: &'a str,
    #[serde(flatten)]
    pruned: super::retention::Pruned,
}

pub fn run(ctx: &Context, args: &PruneArgs, out: &mut Output) -> Result<(), Error> {
    names::validate_container_id(&args.container)?;
    let policy = Policy::new(args.retain, args.older_than)?;
    // Checkpoints are root's: without root a present one would look absent.
    ctx.require_root("prune")?;
    let home = super::with_checkpoint_dir(
        ctx.engines.home(&args.container)?.home(),
        args.checkpoint_dir.as_deref(),
    )?;
    let pruned = match crate::store::Layout::new(&home.root).checkpoints_dir(&home.id).is_dir() {
        true => {
            let store = ctx.open_store(&home.root)?;
            let _lock = store.lock(&home.id, LOCK_WAIT)?;
            super::retention::apply(&store, &home.id, policy, None, args.dry_run)?
        }
        // No checkpoints: nothing to prune, and nothing made for nothing.
        false => super::retention::Pruned {
            removed: Vec::new(),
            kept: Vec::new(),
            dry_run: args.dry_run,
            checkpoint_bytes: 0,
            chunk_bytes_freed: 0,
        },
    };
    if args.json {
        out.json(&Report {
            container: &home.id,
            pruned,
        })?;
    } else {
        for line in super::retention::describe(&home.id, &pruned) {
            out.say(line);
        }
    }
    Ok(())
}
