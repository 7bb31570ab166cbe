//! A watcher: `notify`'s debouncer feeding a task on the library runtime
//! that coalesces events into batches of source changes.
//!
//! The debouncer folds each file's burst of raw events (create, modify,
//! close, rename halves) into one event a short while after the burst;
//! the task then keeps a window open until no event has arrived for the
//! configured debounce time, so a save that touches one file several
//! times, a formatter run right after it, or a branch switch touching
//! many files all end up in one batch. At the end of the window every
//! touched path is digested and compared with the digest last seen.

use crate::batch::{Batch, Digests, Probe, Window};
use crate::filter::{Depth, SourceFilter};
use crate::joined::{JoinedWatcher, LoopExit};
use crate::runtime;
use debug_reload_core::changes::Snapshot;
use debug_reload_io::scan;
use notify::RecursiveMode;
use notify_debouncer_full::{new_debouncer_opt, DebounceEventResult, Debouncer, RecommendedCache};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc as tokio_mpsc, oneshot};

type Notifier = Debouncer<JoinedWatcher, RecommendedCache>;

/// Debounce used when none is given.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// What to watch.
#[derive(Debug, Clone)]
pub struct Options {
    /// Absolute source directories; they need not exist yet.
    pub roots: Vec<PathBuf>,
    /// File name endings that count as sources (".ex").
    pub extensions: Vec<String>,
    /// Absolute paths of single files that count as sources wherever they
    /// are (resources code is built from); they need not exist yet.
    pub files: Vec<PathBuf>,
    /// A batch closes once no event has arrived for this long.
    pub debounce: Duration,
    /// Digests of the sources the caller's code was built from. When
    /// given, the first batch reports the differences from it (edits made
    /// before the watch started); otherwise the watch starts from the
    /// files as they are.
    pub baseline: Option<Snapshot>,
}

/// A running watcher. Stops when dropped, when [`Watch::stop`] is called,
/// or when the batch callback returns `false`.
pub struct Watch {
    stop: Mutex<Option<oneshot::Sender<()>>>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
    loop_exit: Mutex<Option<LoopExit>>,
}

impl Watch {
    /// Starts watching. `on_batch` runs on the runtime for every non-empty
    /// batch; returning `false` (its receiver is gone) stops the watcher.
    pub fn start<F>(options: Options, on_batch: F) -> Result<Watch, String>
    where
        F: FnMut(Batch) -> bool + Send + 'static,
    {
        validate(&options)?;
        let handle = runtime::handle()?;
        let filter = SourceFilter::new(options.roots.clone(), options.extensions.clone())
            .with_files(options.files.iter().cloned());
        let (events_tx, events_rx) = tokio_mpsc::unbounded_channel();
        let (per_file, tick) = debouncer_timing(options.debounce);
        let loop_exit = LoopExit::prepare();
        let mut notifier = new_debouncer_opt::<_, JoinedWatcher, _>(
            per_file,
            Some(tick),
            move |result| {
                // The receiver is gone only once the task has ended.
                let _ = events_tx.send(result);
            },
            RecommendedCache::new(),
            notify::Config::default(),
        )
        .map_err(|e| format!("could not start the file watcher: {e}"))?;
        let mut watched = Vec::new();
        add_watches(&mut notifier, &filter, &mut watched)?;

        // Digest after the watches exist, so no edit falls between the two.
        let roots: BTreeSet<PathBuf> = filter
            .roots()
            .iter()
            .chain(filter.files())
            .cloned()
            .collect();
        let baseline = options.baseline.clone();
        let mut digests = Digests::new(baseline.clone().unwrap_or_default());
        let initial = digests.settle(&roots, &filter, |p| probe(p, &filter));
        let initial = baseline.is_some().then_some(initial);
        tracing::info!(
            directories = watched.len(),
            sources = digests.len(),
            debounce_ms = options.debounce.as_millis() as u64,
            "watching {}",
            display_roots(filter.roots())
        );

        let (stop_tx, stop_rx) = oneshot::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let task = Task {
            notifier,
            filter,
            digests,
            watched,
            debounce: options.debounce,
        };
        handle.spawn(async move {
            task.run(events_rx, stop_rx, initial, on_batch).await;
            let _ = done_tx.send(());
        });
        Ok(Watch {
            stop: Mutex::new(Some(stop_tx)),
            done: Mutex::new(Some(done_rx)),
            loop_exit: Mutex::new(Some(loop_exit)),
        })
    }

    /// Asks the watcher to stop; returns at once. Idempotent.
    pub fn stop(&self) {
        if let Some(stop) = lock(&self.stop).take() {
            let _ = stop.send(());
        }
    }

    /// Stops the watcher and waits until its task has ended, the
    /// debouncer's thread is joined, and notify's event loop thread, which
    /// holds the OS watch, is gone. False on timeout.
    pub fn stop_and_wait(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.stop();
        let task_ended = match lock(&self.done).take() {
            Some(done) => match done.recv_timeout(timeout) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => true,
                Err(mpsc::RecvTimeoutError::Timeout) => false,
            },
            None => true,
        };
        task_ended
            && lock(&self.loop_exit)
                .take()
                .is_none_or(|exit| exit.wait(deadline))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

// A poisoned lock only means another thread panicked while holding an
// Option; taking it is still sound.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn validate(options: &Options) -> Result<(), String> {
    if options.roots.is_empty() {
        return Err("no directories to watch".into());
    }
    if let Some(relative) = options.roots.iter().find(|r| !r.is_absolute()) {
        return Err(format!(
            "watch roots must be absolute, got: {}",
            relative.display()
        ));
    }
    if let Some(relative) = options.files.iter().find(|f| !f.is_absolute()) {
        return Err(format!(
            "watched files must be absolute, got: {}",
            relative.display()
        ));
    }
    if options.extensions.is_empty() {
        return Err("no source extensions to watch".into());
    }
    if options.debounce.is_zero() {
        return Err("the debounce window must be at least 1 ms".into());
    }
    Ok(())
}

/// The debouncer folds one file's burst of events; a quarter of the window
/// is enough for that and keeps the added latency small.
fn debouncer_timing(debounce: Duration) -> (Duration, Duration) {
    let per_file = (debounce / 4).max(Duration::from_millis(1));
    (
        per_file,
        (per_file / 4).max(Duration::from_millis(1)).min(per_file),
    )
}

fn display_roots(roots: &[PathBuf]) -> String {
    roots
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the watches `filter`'s roots need that are not in `watched` yet.
/// Returns the roots that became watchable.
fn add_watches(
    notifier: &mut Notifier,
    filter: &SourceFilter,
    watched: &mut Vec<(PathBuf, Depth)>,
) -> Result<Vec<PathBuf>, String> {
    let mut opened = Vec::new();
    for (path, depth) in filter.watch_targets(Path::is_dir) {
        if watched.iter().any(|(p, d)| *p == path && *d == depth) {
            continue;
        }
        let mode = match depth {
            Depth::Recursive => RecursiveMode::Recursive,
            Depth::Entries => RecursiveMode::NonRecursive,
        };
        notifier
            .watch(&path, mode)
            .map_err(|e| format!("could not watch {}: {}", path.display(), watch_error(e)))?;
        if depth == Depth::Recursive {
            opened.push(path.clone());
        }
        watched.push((path, depth));
    }
    Ok(opened)
}

fn watch_error(e: notify::Error) -> String {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            "the OS limit on watched directories was reached (raise fs.inotify.max_user_watches)"
                .into()
        }
        _ => e.to_string(),
    }
}

fn probe(path: &Path, filter: &SourceFilter) -> Probe {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => {
            let (files, errors) =
                scan::scan(&[path.to_string_lossy().into_owned()], filter.extensions());
            for error in errors {
                tracing::warn!(path = error.path, "could not read: {}", error.reason);
            }
            Probe::Dir(files)
        }
        Ok(_) => match scan::digest_file(path) {
            Ok(digest) => Probe::File(digest),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Probe::Missing,
            Err(e) => unreadable(path, &e),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Probe::Missing,
        Err(e) => unreadable(path, &e),
    }
}

fn unreadable(path: &Path, e: &io::Error) -> Probe {
    tracing::warn!(path = %path.display(), "could not read: {e}");
    Probe::Unreadable
}

struct Task {
    notifier: Notifier,
    filter: SourceFilter,
    digests: Digests,
    watched: Vec<(PathBuf, Depth)>,
    debounce: Duration,
}

impl Task {
    async fn run<F>(
        mut self,
        mut events: tokio_mpsc::UnboundedReceiver<DebounceEventResult>,
        mut stop: oneshot::Receiver<()>,
        initial: Option<Batch>,
        mut on_batch: F,
    ) where
        F: FnMut(Batch) -> bool,
    {
        let mut receiver_alive = match initial {
            Some(batch) if !batch.is_empty() => self.deliver(batch, &mut on_batch),
            _ => true,
        };
        let mut touched = BTreeSet::new();
        let mut window = Window::new(self.debounce);
        while receiver_alive {
            let deadline = window.deadline();
            let sleep = tokio::time::sleep_until(
                deadline.map_or_else(tokio::time::Instant::now, tokio::time::Instant::from_std),
            );
            // Events already queued belong to the window even when a
            // starved runtime wakes past its deadline: take them first.
            tokio::select! {
                biased;
                _ = &mut stop => break,
                received = events.recv() => match received {
                    Some(Ok(events)) => {
                        if self.take(events, &mut touched) {
                            window.touch(Instant::now());
                        }
                    }
                    Some(Err(errors)) => {
                        for error in errors {
                            tracing::warn!("file watcher error: {error}");
                        }
                    }
                    None => break,
                },
                _ = sleep, if deadline.is_some() => {
                    if window.close_if_due(Instant::now()) {
                        let filter = &self.filter;
                        let batch = self.digests.settle(&touched, filter, |p| probe(p, filter));
                        touched.clear();
                        if !batch.is_empty() {
                            receiver_alive = self.deliver(batch, &mut on_batch);
                        }
                    }
                }
            }
        }
        // Joins the debouncer's thread; dropping its watcher asks notify's
        // event loop thread to end (`stop_and_wait` waits for that).
        self.notifier.stop();
        tracing::info!("stopped watching {}", display_roots(self.filter.roots()));
    }

    fn deliver<F: FnMut(Batch) -> bool>(&self, batch: Batch, on_batch: &mut F) -> bool {
        tracing::debug!(
            changed = batch.changed.len(),
            added = batch.added.len(),
            removed = batch.removed.len(),
            "source batch"
        );
        let alive = on_batch(batch);
        if !alive {
            tracing::debug!("the batch receiver is gone; stopping");
        }
        alive
    }

    /// Adds the events' paths to `touched`; true when any of them matters.
    fn take(
        &mut self,
        events: Vec<notify_debouncer_full::DebouncedEvent>,
        touched: &mut BTreeSet<PathBuf>,
    ) -> bool {
        let mut relevant = false;
        let mut reopen = false;
        for event in events {
            if event.need_rescan() {
                // The kernel dropped events: only a full comparison is safe.
                tracing::warn!("file events were lost; rescanning every source directory");
                touched.extend(self.filter.roots().iter().cloned());
                touched.extend(self.filter.files().iter().cloned());
                relevant = true;
            }
            for path in &event.paths {
                reopen |= self.filter.opens_watch(path);
                if self.filter.within(path) {
                    touched.insert(path.clone());
                    relevant = true;
                }
            }
        }
        if reopen {
            match add_watches(&mut self.notifier, &self.filter, &mut self.watched) {
                Ok(opened) => {
                    relevant |= !opened.is_empty();
                    // Files may have landed in it before the watch did.
                    touched.extend(opened);
                    if !self.filter.files().is_empty() {
                        relevant = true;
                        touched.extend(self.filter.files().iter().cloned());
                    }
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        relevant
    }
}
