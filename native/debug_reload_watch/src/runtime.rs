//! The one tokio runtime of the library, started on first use and kept
//! for the life of the VM: every watcher runs as a task on it, so a
//! watcher costs the OS threads `notify` needs and nothing more.

use std::sync::OnceLock;
use tokio::runtime::{Builder, Handle, Runtime};

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// Thread name prefix of the runtime's workers.
pub const THREAD_NAME: &str = "debug_reload_rt";

/// The runtime, started on the first call.
pub fn handle() -> Result<&'static Handle, String> {
    RUNTIME
        .get_or_init(|| {
            // One worker: watcher tasks mostly sleep, and the debugged
            // VM's schedulers need the cores. No blocking pool is used, so
            // no thread comes and goes with the work.
            Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(1)
                .thread_name(THREAD_NAME)
                .enable_time()
                .build()
                .map_err(|e| format!("could not start the watcher runtime: {e}"))
        })
        .as_ref()
        .map(Runtime::handle)
        .map_err(Clone::clone)
}

/// True once the runtime has been started.
pub fn started() -> bool {
    RUNTIME.get().is_some_and(Result::is_ok)
}
