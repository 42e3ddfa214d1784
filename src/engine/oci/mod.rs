//! runc and crun: their state directories ([`runc`], [`crun`], pure
//! parsers), their binaries ([`runtime`]), and undoing a restore that
//! failed ([`undo`]).

pub mod crun;
pub mod runc;
pub mod runtime;
pub mod undo;
