//! File watchers as resources, and tracing events as Logger messages.
//!
//! A watcher sends each batch to its owner as
//! `{:debug_reload_watch, tag, %{changed: [...], added: [...], removed: [...]}}`.
//! It stops on `watch_stop/1`, when its owner exits (a resource monitor),
//! when the owner can no longer be sent to, and when the resource is
//! garbage collected.

use debug_reload_watch::batch::Batch;
use debug_reload_watch::log::{self, Record};
use debug_reload_watch::runtime;
use debug_reload_watch::watcher::{Options, Watch};
use rustler::{
    Atom, Encoder, Env, LocalPid, Monitor, NifMap, OwnedEnv, Resource, ResourceArc, Term,
};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;

rustler::atoms! {
    debug_reload_watch,
    debug_reload_log,
    error,
    warning,
    info,
    debug,
    timeout,
}

pub struct WatcherResource {
    watch: Watch,
}

#[rustler::resource_impl]
impl Resource for WatcherResource {
    fn down<'a>(&'a self, _env: Env<'a>, _pid: LocalPid, _monitor: Monitor) {
        // A scheduler thread: ask, don't wait. The task finishes on the
        // runtime and releases the debouncer's thread and OS watch.
        self.watch.stop();
    }
}

#[derive(NifMap)]
struct BatchTerm {
    changed: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
}

impl From<Batch> for BatchTerm {
    fn from(b: Batch) -> Self {
        BatchTerm {
            changed: b.changed,
            added: b.added,
            removed: b.removed,
        }
    }
}

/// Starts a watcher whose batches go to `owner`, tagged with `tag`.
/// Blocks while it digests the sources below `roots`, hence dirty I/O.
#[rustler::nif(schedule = "DirtyIo")]
#[allow(clippy::too_many_arguments)]
fn watch_start<'a>(
    env: Env<'a>,
    owner: LocalPid,
    tag: Term<'a>,
    roots: Vec<String>,
    extensions: Vec<String>,
    files: Vec<String>,
    debounce_ms: u64,
    baseline: Option<HashMap<String, String>>,
) -> Term<'a> {
    let tag = tag.to_binary().as_slice().to_vec();
    let options = Options {
        roots: roots.into_iter().map(PathBuf::from).collect(),
        extensions,
        files: files.into_iter().map(PathBuf::from).collect(),
        debounce: Duration::from_millis(debounce_ms),
        baseline: baseline.map(|b| b.into_iter().collect()),
    };
    let mut msg_env = OwnedEnv::new();
    let send_batch = move |batch: Batch| {
        msg_env
            .send_and_clear(&owner, |env| {
                let tag = env
                    .binary_to_term(&tag)
                    .map_or_else(|| rustler::types::atom::nil().encode(env), |(t, _)| t);
                (debug_reload_watch(), tag, BatchTerm::from(batch)).encode(env)
            })
            .is_ok()
    };
    match Watch::start(options, send_batch) {
        Ok(watch) => {
            let resource = ResourceArc::new(WatcherResource { watch });
            if env.monitor(&resource, &owner).is_none() {
                resource.watch.stop();
                return (error(), "the owner process is not alive").encode(env);
            }
            (rustler::types::atom::ok(), resource).encode(env)
        }
        Err(reason) => (error(), reason).encode(env),
    }
}

/// Stops a watcher and waits until its thread and OS watch are released.
#[rustler::nif(schedule = "DirtyIo")]
fn watch_stop(env: Env, watcher: ResourceArc<WatcherResource>) -> Term {
    if watcher.watch.stop_and_wait(Duration::from_secs(10)) {
        rustler::types::atom::ok().encode(env)
    } else {
        (error(), timeout()).encode(env)
    }
}

/// True once the library's runtime has started (its threads then stay).
#[rustler::nif]
fn watch_runtime_started() -> bool {
    runtime::started()
}

static LOG_FORWARDER: Mutex<Option<LocalPid>> = Mutex::new(None);
static LOG_QUEUE: OnceLock<mpsc::UnboundedSender<Record>> = OnceLock::new();

/// Makes `pid` the receiver of tracing events, as
/// `{:debug_reload_log, level, target, message}`. Events are queued and
/// sent from the runtime, never from the thread that emitted them: that
/// may be a scheduler, which cannot send from a process-independent env.
#[rustler::nif]
fn watch_log_forwarder(env: Env, pid: LocalPid) -> Term {
    match install_forwarder(pid) {
        Ok(()) => rustler::types::atom::ok().encode(env),
        Err(reason) => (error(), reason).encode(env),
    }
}

fn install_forwarder(pid: LocalPid) -> Result<(), String> {
    *LOG_FORWARDER.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    if LOG_QUEUE.get().is_none() {
        let handle = runtime::handle()?;
        let (tx, rx) = mpsc::unbounded_channel();
        if LOG_QUEUE.set(tx.clone()).is_ok() {
            handle.spawn(forward_logs(rx));
            log::install(tracing::Level::DEBUG, move |record| {
                let _ = tx.send(record);
            });
        }
    }
    Ok(())
}

async fn forward_logs(mut records: mpsc::UnboundedReceiver<Record>) {
    let mut env = OwnedEnv::new();
    while let Some(record) = records.recv().await {
        let forwarder = *LOG_FORWARDER.lock().unwrap_or_else(|e| e.into_inner());
        // No forwarder alive: the event is dropped, never printed.
        if let Some(pid) = forwarder {
            let _ = env.send_and_clear(&pid, |env| {
                (
                    debug_reload_log(),
                    level(&record.level),
                    record.target,
                    record.message,
                )
                    .encode(env)
            });
        }
    }
}

fn level(level: &tracing::Level) -> Atom {
    match *level {
        tracing::Level::ERROR => error(),
        tracing::Level::WARN => warning(),
        tracing::Level::INFO => info(),
        _ => debug(),
    }
}
