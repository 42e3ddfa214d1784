//! ckpt: checkpoint and restore Linux containers with CRIU.
//!
//! Data flows one way: discover → inventory → plan → freeze → dump → publish
//! → stop. Restore: load → verify → plan → prepare → restore through the
//! engine → confirm. Commands reach containers only through the engine seam
//! (`engine`), `/proc` only through `procfs`, and decide through the pure
//! plans (`plan`), `criu::args`, `store::layout` and the parsers; the modules
//! that touch processes only execute them. See docs/architecture.md.

pub mod archive;
pub mod cgroups;
pub mod chunks;
pub mod cli;
pub mod commands;
pub mod criu;
pub mod digest;
pub mod dump_watch;
pub mod engine;
pub mod error;
pub mod facts;
pub mod freezer;
pub mod interrupt;
pub mod inventory;
pub mod mountinfo;
pub mod mounts;
pub mod output;
pub mod pause;
pub mod plan;
pub mod plugin;
pub mod procfs;
pub mod progress;
pub mod spec;
pub mod stats;
pub mod store;
pub mod watchdog;
