//! Exit codes: what each failure means to a script. Documented in
//! `ckpt --help` and docs/usage.md; keep the three in step.

use crate::commands::{create::Refused, CommandError};
use crate::criu::CriuError;
use crate::discovery::DiscoveryError;
use crate::docker::DockerError;
use crate::interrupt::Interrupted;
use crate::runtime::RuntimeError;
use crate::store::StoreError;

pub const FAILURE: u8 = 1;
pub const USAGE: u8 = 2;
pub const REFUSED: u8 = 3;
pub const NOT_FOUND: u8 = 4;
pub const PREREQUISITE: u8 = 5;
pub const CRIU_FAILED: u8 = 6;
pub const CORRUPT: u8 = 7;
pub const BUSY: u8 = 8;

/// The exit code for an error: the first error in the chain that has a
/// specific meaning decides.
pub fn code_for(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(code) = code_of(cause) {
            return code;
        }
    }
    FAILURE
}

fn code_of(e: &(dyn std::error::Error + 'static)) -> Option<u8> {
    if let Some(e) = e.downcast_ref::<StoreError>() {
        return Some(match e {
            StoreError::InvalidName { .. } | StoreError::InvalidContainerId { .. } => USAGE,
            StoreError::NotFound { .. } => NOT_FOUND,
            StoreError::Busy { .. } => BUSY,
            StoreError::Corrupt { .. } | StoreError::FutureSchema { .. } => CORRUPT,
            StoreError::UnsafeStore { .. } => PREREQUISITE,
            _ => FAILURE,
        });
    }
    if let Some(e) = e.downcast_ref::<DiscoveryError>() {
        return Some(match e {
            DiscoveryError::NotFound { .. } | DiscoveryError::NotRunning { .. } | DiscoveryError::PidReused { .. } => {
                NOT_FOUND
            }
            DiscoveryError::Ambiguous { .. } => USAGE,
            DiscoveryError::Docker(d) => docker_code(d),
            _ => FAILURE,
        });
    }
    if let Some(e) = e.downcast_ref::<DockerError>() {
        return Some(docker_code(e));
    }
    if e.downcast_ref::<Refused>().is_some()
        || e.downcast_ref::<crate::commands::inspect::NotCheckpointable>()
            .is_some()
        || e.downcast_ref::<crate::restore::BundleRefusal>().is_some()
    {
        return Some(REFUSED);
    }
    if let Some(e) = e.downcast_ref::<CriuError>() {
        return Some(match e {
            CriuError::Failed { .. } | CriuError::Stalled { .. } => CRIU_FAILED,
            _ => PREREQUISITE,
        });
    }
    if let Some(e) = e.downcast_ref::<RuntimeError>() {
        return Some(match e {
            RuntimeError::NotInstalled { .. } => PREREQUISITE,
            _ => FAILURE,
        });
    }
    if let Some(e) = e.downcast_ref::<CommandError>() {
        return Some(match e {
            CommandError::NotRoot { .. } | CommandError::CriuOlderThanCheckpoint { .. } => PREREQUISITE,
            CommandError::TargetRunning { .. } => REFUSED,
            CommandError::MissingPath { .. } => NOT_FOUND,
            _ => FAILURE,
        });
    }
    if let Some(Interrupted(sig)) = e.downcast_ref::<Interrupted>() {
        return Some(128u8.saturating_add(*sig as u8));
    }
    None
}

fn docker_code(e: &DockerError) -> u8 {
    match e {
        DockerError::UnsupportedHost { .. } | DockerError::Unreachable { .. } | DockerError::NotExperimental { .. } => {
            PREREQUISITE
        }
        DockerError::BrokenRestore { .. } => REFUSED,
        DockerError::NoSuchContainer { .. } => NOT_FOUND,
        DockerError::AmbiguousReference { .. } => USAGE,
        DockerError::Api { .. } | DockerError::Protocol { .. } => FAILURE,
    }
}
