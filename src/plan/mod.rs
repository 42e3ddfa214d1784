//! PURE decisions, one module per plan: what a dump does ([`dump`]), what a
//! restore does ([`restore`]), which bundle it uses ([`bundle`]), which
//! stdio the restored container gets ([`stdio`]), whether what runs afterwards is the checkpointed tree ([`confirm`]),
//! and which containers `create --all`/`--latest` take ([`select`]).
//! Every input is plain data gathered beforehand; nothing here touches the
//! system, so every rule is unit-tested with tables of cases.

pub mod bundle;
pub mod confirm;
pub mod dump;
pub mod export;
pub mod import;
pub mod incremental;
pub mod restore;
pub mod select;
pub mod stdio;

pub use dump::{
    dump_plan, externals, human_bytes, problems, warnings, AfterDump, DumpOptions, DumpPlan, ExternalNaming, FdRef,
    HostFacts, Problem, Refusal,
};
