//! ckpt: checkpoint and restore Linux containers with CRIU.
//!
//! Data flows one way: discover → inventory → plan → freeze → dump → publish.
//! Restore: load → verify → plan → restore through the runtime → confirm.

pub mod inventory;
pub mod store;
