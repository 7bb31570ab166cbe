//! The file system edge of debug_reload. Thin: it reads files and hands
//! plain data to `debug_reload_core`.

pub mod cache;
pub mod listing;
mod parallel;
pub mod scan;
pub mod text;
pub mod tree;
