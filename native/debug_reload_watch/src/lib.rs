//! The file watching edge of debug_reload: `notify` and its debouncer on
//! the library's tokio runtime, turning editor saves into batches of
//! changed source files. Pure rules (which paths count, how a window's
//! events become one batch, how tracing events become log records) live
//! in their own modules and are unit-tested; `watcher` does the I/O.

pub mod batch;
pub mod filter;
pub mod joined;
pub mod log;
pub mod runtime;
pub mod watcher;
