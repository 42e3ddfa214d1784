//! Everything about the `criu` binary: its version, the arguments ckpt
//! gives it (pure), running it (the only place that spawns criu), reading
//! its logs and statistics.

pub mod args;
pub mod crit;
pub mod log;
pub mod runner;
pub mod stats;
pub mod version;

pub use runner::{Criu, CriuError, FromPath, Locate, Runner};
pub use version::CriuVersion;
