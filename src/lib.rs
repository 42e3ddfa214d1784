//! ckpt: checkpoint and restore Linux containers with CRIU.
//!
//! Data flows one way: discover → inventory → plan → freeze → dump → publish.
//! Restore: load → verify → restore through the runtime → confirm.
//! Pure decisions live in `plan`, `criu::args`, `restore`, `store::layout`
//! and the parsers; the modules that touch processes only execute them.

pub mod archive;
pub mod chunks;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod criu;
pub mod digest;
pub mod discovery;
pub mod docker;
pub mod dump_watch;
pub mod exit;
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
pub mod progress;
pub mod restore;
pub mod runtime;
pub mod spec;
pub mod store;
pub mod watchdog;
