//! notify's recommended watcher, with a way to wait until its event loop
//! thread is gone.
//!
//! Dropping notify's inotify watcher only asks its event loop thread to
//! stop; that thread owns the inotify descriptor and exits on its own a
//! moment later, and the debouncer's `stop` joins only the debouncer's
//! thread. An unwatch that returns while either is still there leaves a
//! thread and a descriptor behind for a while. The event handler the loop
//! is given is dropped with the loop's state, after its descriptors (the
//! fields before it), on that thread: its drop reports the thread, and
//! [`LoopExit::wait`] waits for the report and then for the thread.

use notify::{
    Config, Event, EventHandler, RecommendedWatcher, RecursiveMode, Watcher, WatcherKind,
};
use std::cell::RefCell;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

thread_local! {
    // The debouncer builds its watcher itself, on the calling thread; the
    // signal for the next one is handed over here.
    static NEXT_SIGNAL: RefCell<Option<mpsc::Sender<Option<u64>>>> = const { RefCell::new(None) };
}

/// A [`RecommendedWatcher`] whose event loop reports its exit.
pub struct JoinedWatcher {
    inner: RecommendedWatcher,
}

/// Waits for the exit of the event loop of the watcher made by the
/// constructor call it was [`prepared`](LoopExit::prepare) for.
pub struct LoopExit {
    exited: mpsc::Receiver<Option<u64>>,
}

impl LoopExit {
    /// Arms the signal for the next [`JoinedWatcher`] built on this thread.
    pub fn prepare() -> LoopExit {
        let (tx, rx) = mpsc::channel();
        NEXT_SIGNAL.with(|next| *next.borrow_mut() = Some(tx));
        LoopExit { exited: rx }
    }

    /// Waits until the event loop has dropped its state and its thread has
    /// ended; false if `deadline` passes first. True at once if no watcher
    /// was built with this signal.
    pub fn wait(self, deadline: Instant) -> bool {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match self.exited.recv_timeout(remaining) {
            Ok(thread) => thread.is_none_or(|tid| thread_gone(tid, deadline)),
            Err(mpsc::RecvTimeoutError::Disconnected) => true,
            Err(mpsc::RecvTimeoutError::Timeout) => false,
        }
    }
}

impl Drop for LoopExit {
    fn drop(&mut self) {
        // A signal never taken must not arm an unrelated later watcher.
        NEXT_SIGNAL.with(|next| next.borrow_mut().take());
    }
}

struct SignallingHandler<F> {
    handler: F,
    exited: Option<mpsc::Sender<Option<u64>>>,
}

impl<F: EventHandler> EventHandler for SignallingHandler<F> {
    fn handle_event(&mut self, event: notify::Result<Event>) {
        self.handler.handle_event(event)
    }
}

impl<F> Drop for SignallingHandler<F> {
    fn drop(&mut self) {
        if let Some(exited) = self.exited.take() {
            let _ = exited.send(current_thread_id());
        }
    }
}

impl Watcher for JoinedWatcher {
    fn new<F: EventHandler>(event_handler: F, config: Config) -> notify::Result<Self> {
        let exited = NEXT_SIGNAL.with(|next| next.borrow_mut().take());
        let handler = SignallingHandler {
            handler: event_handler,
            exited,
        };
        Ok(JoinedWatcher {
            inner: RecommendedWatcher::new(handler, config)?,
        })
    }

    fn watch(&mut self, path: &Path, recursive_mode: RecursiveMode) -> notify::Result<()> {
        self.inner.watch(path, recursive_mode)
    }

    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.inner.unwatch(path)
    }

    fn configure(&mut self, option: Config) -> notify::Result<bool> {
        self.inner.configure(option)
    }

    fn kind() -> WatcherKind {
        RecommendedWatcher::kind()
    }
}

/// The OS id of the calling thread, where the OS lists threads in /proc.
fn current_thread_id() -> Option<u64> {
    let link = std::fs::read_link("/proc/thread-self").ok()?;
    link.file_name()?.to_str()?.parse().ok()
}

fn thread_gone(tid: u64, deadline: Instant) -> bool {
    let task = format!("/proc/self/task/{tid}");
    loop {
        if !Path::new(&task).exists() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Thread names are cut to 15 bytes: "notify-rs inoti".
    fn inotify_loop_threads() -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("notify-rs inoti"))
            .count()
    }

    fn threads_become(count: usize, deadline: Instant) -> bool {
        loop {
            if inotify_loop_threads() == count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    // No other test of this binary starts a watcher, so every inotify loop
    // thread is ours.
    #[test]
    fn waiting_returns_once_the_event_loop_thread_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        for _ in 0..20 {
            let exit = LoopExit::prepare();
            let mut watcher = JoinedWatcher::new(|_: notify::Result<Event>| {}, Config::default())
                .expect("watcher");
            watcher
                .watch(dir.path(), RecursiveMode::Recursive)
                .expect("watch");
            // Counted by name, which a thread sets itself once running:
            // seen to lag behind `watch` on a loaded machine, so wait for it.
            assert!(threads_become(1, Instant::now() + Duration::from_secs(5)));
            drop(watcher);
            assert!(exit.wait(Instant::now() + Duration::from_secs(5)));
            assert_eq!(inotify_loop_threads(), 0);
        }
    }

    #[test]
    fn an_unused_signal_does_not_arm_a_later_watcher() {
        drop(LoopExit::prepare());
        let exit_for_none = NEXT_SIGNAL.with(|next| next.borrow().is_some());
        assert!(!exit_for_none);
    }
}
