//! NIF glue: decode BEAM terms, call the Rust crates, encode the answer.
//! No logic lives here beyond the translation.

mod breakpoints;
mod changes;
mod graph;
mod json;
mod watcher;

rustler::init!("Elixir.DebugReload.Native");
