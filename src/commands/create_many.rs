//! `ckpt create --all NAME` and `ckpt create --latest NAME`: the
//! containers the runtimes list ([`crate::plan::select`] chooses), each
//! checkpointed into `NAME` by the one-container create, one after the
//! other.
//!
//! Each container's create is whole on its own: a refusal or failure of
//! one leaves that container as the one-container create leaves it and
//! does not stop the others. Every container gets one result (a line, or
//! one JSON object in an array); the exit code is
//! [`crate::plan::select::many_code`]'s. A signal stops the loop after the
//! container it interrupted.

use super::create::{checkpoint, print};
use super::Context;
use crate::cli::CreateArgs;
use crate::error::{Error, SUCCESS};
use crate::interrupt::{self, Interrupted};
use crate::output::Output;
use crate::plan::select::{many_code, select, Which};

/// `--json`: a container that was not checkpointed.
#[derive(Debug, serde::Serialize)]
struct NotCreated {
    container: String,
    name: String,
    error: String,
    exit_code: u8,
}

pub fn run(ctx: &Context, args: &CreateArgs, which: Which, name: &str, out: &mut Output) -> Result<(), Error> {
    crate::store::names::validate_checkpoint_name(name)?;
    if args.export.is_some() && which == Which::All {
        // One FILE cannot hold the archives of several containers.
        return Err(Error::Usage {
            message: "--export cannot be combined with --all: every container would be exported to the same file"
                .into(),
        });
    }
    ctx.require_root("create")?;
    let ids = select(&ctx.engines.running_all()?, which);
    if ids.is_empty() {
        return match which {
            Which::All => {
                if args.json {
                    out.json(&Vec::<()>::new())?;
                } else {
                    out.say("no running containers");
                }
                Ok(())
            }
            Which::Latest => Err(crate::engine::EngineError::NotFound {
                id: "(the latest)".into(),
                searched: "the runtimes' state roots".into(),
            }
            .into()),
        };
    }
    let mut codes = Vec::new();
    let mut results = Vec::new();
    let mut interrupted = None;
    for id in &ids {
        log::info!("checkpointing {id} into {name}");
        let result = checkpoint(ctx, args, id, name);
        let code = crate::error::exit_status(result.as_ref().err());
        codes.push(code);
        match result {
            Ok(created) if args.json => results.push(serde_json::to_value(&created)?),
            Ok(created) => print(&created, false, out)?,
            Err(e) => {
                let error = crate::error::chain(&e);
                // stdout has each container's line; stderr says it once more
                // for a reader of the log.
                log::error!("container {id}: {error}");
                if args.json {
                    results.push(serde_json::to_value(NotCreated {
                        container: id.clone(),
                        name: name.to_string(),
                        error,
                        exit_code: code,
                    })?);
                } else {
                    out.line(format!("checkpoint {name} of {id} not created (exit {code}): {error}"));
                }
                if let Error::Interrupted(Interrupted(sig)) = root_cause(&e) {
                    interrupted = Some(*sig);
                }
            }
        }
        if interrupted.is_some() || interrupt::pending().is_some() {
            break;
        }
    }
    if args.json {
        out.json(&results)?;
    }
    if let Some(sig) = interrupted.or_else(interrupt::pending) {
        return Err(Error::from(Interrupted(sig)).context(format!(
            "stopped after {} of {} container(s)",
            codes.len(),
            ids.len()
        )));
    }
    let failed = codes.iter().filter(|c| **c != SUCCESS).count();
    match failed {
        0 => Ok(()),
        _ => Err(Error::SomeFailed {
            failed,
            total: ids.len(),
            code: many_code(&codes),
        }),
    }
}

/// The error below every context sentence.
fn root_cause(e: &Error) -> &Error {
    match e {
        Error::Context { source, .. } => root_cause(source),
        other => other,
    }
}
