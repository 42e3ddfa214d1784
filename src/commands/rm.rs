//! `ckpt rm`: remove one checkpoint.

use super::{Context, LOCK_WAIT};
use crate::cli::RmArgs;
use crate::store::{names, Store, StoreError};

pub fn run(ctx: &Context, args: &RmArgs) -> anyhow::Result<()> {
    names::validate_container_id(&args.container)?;
    names::validate_checkpoint_name(&args.name)?;
    if !ctx.store_root.join(&args.container).exists() {
        return Err(StoreError::NotFound {
            container: args.container.clone(),
            name: args.name.clone(),
        }
        .into());
    }
    let store = Store::open(&ctx.store_root)?;
    let _lock = store.lock(&args.container, LOCK_WAIT)?;
    store.remove(&args.container, &args.name)?;
    ctx.say(format!("removed checkpoint {} of {}", args.name, args.container));
    Ok(())
}
