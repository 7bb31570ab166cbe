//! The pure core of debug_reload.
//!
//! Everything here is deterministic data-in/data-out: no BEAM types and no
//! file system access, so the logic can be tested with `cargo test` and
//! reused by the NIF glue and by the orchestrator alike.

pub mod breakpoints;
pub mod changes;
pub mod explain;
pub mod graph;
pub mod manifest;
pub mod plan;
pub mod structure;
pub mod synthetic;
