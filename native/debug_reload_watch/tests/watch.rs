//! The watcher against real file events, on a temporary directory.

use debug_reload_watch::batch::Batch;
use debug_reload_watch::watcher::{Options, Watch};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

// Wide enough that a stalled test thread does not split one write in two.
const WINDOW: Duration = Duration::from_millis(300);
// Bounded waits: generous for a loaded machine, never a timing assertion.
const ARRIVES: Duration = Duration::from_secs(10);

fn start(root: &Path, baseline: Option<Vec<(&str, &str)>>) -> (Watch, Receiver<Batch>) {
    start_with_files(root, baseline, &[])
}

fn start_with_files(
    root: &Path,
    baseline: Option<Vec<(&str, &str)>>,
    files: &[&str],
) -> (Watch, Receiver<Batch>) {
    let (tx, rx) = channel();
    let options = Options {
        roots: vec![root.join("lib"), root.join("src")],
        extensions: [".ex", ".exs", ".erl", ".hrl"].map(String::from).to_vec(),
        files: files.iter().map(|f| root.join(f)).collect(),
        debounce: WINDOW,
        baseline: baseline.map(|b| {
            b.into_iter()
                .map(|(p, d)| (root.join(p).to_string_lossy().into_owned(), d.to_string()))
                .collect()
        }),
    };
    let watch = Watch::start(options, move |batch| tx.send(batch).is_ok()).expect("watch");
    (watch, rx)
}

fn write(root: &Path, rel: &str, body: &str) -> String {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}

fn quiet(rx: &Receiver<Batch>) {
    if let Ok(batch) = rx.recv_timeout(WINDOW * 4) {
        panic!("unexpected batch: {batch:?}");
    }
}

fn project() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    write(&root, "lib/a.ex", "defmodule A do end");
    (tmp, root)
}

#[test]
fn an_edit_is_one_batch_and_a_touch_is_none() {
    let (_tmp, root) = project();
    let (watch, rx) = start(&root, None);
    let a = write(&root, "lib/a.ex", "defmodule A do def x, do: 1 end");
    let batch = rx.recv_timeout(ARRIVES).expect("a batch");
    assert_eq!(batch.changed, vec![a.clone()]);
    quiet(&rx);

    // Same content rewritten, and a touch: no digest change, no batch.
    write(&root, "lib/a.ex", "defmodule A do def x, do: 1 end");
    let file = fs::OpenOptions::new().append(true).open(&a).unwrap();
    file.set_modified(std::time::SystemTime::now()).unwrap();
    drop(file);
    quiet(&rx);
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn build_deps_git_and_non_sources_are_ignored() {
    let (_tmp, root) = project();
    let (watch, rx) = start(&root, None);
    write(&root, "lib/_build/x.ex", "x");
    write(&root, "lib/deps/y/lib/y.ex", "y");
    write(&root, "lib/.git/z.ex", "z");
    write(&root, "lib/notes.md", "n");
    write(&root, "test/t_test.exs", "t");
    quiet(&rx);
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn directories_created_later_are_watched_including_missing_roots() {
    let (_tmp, root) = project();
    let (watch, rx) = start(&root, None);
    let nested = write(&root, "lib/new/deeper/n.ex", "n");
    assert_eq!(rx.recv_timeout(ARRIVES).unwrap().added, vec![nested]);
    // src/ did not exist when the watch started.
    let erl = write(&root, "src/e.erl", "-module(e).");
    assert_eq!(rx.recv_timeout(ARRIVES).unwrap().added, vec![erl.clone()]);
    let erl2 = write(&root, "src/e.erl", "-module(e). %");
    assert_eq!(rx.recv_timeout(ARRIVES).unwrap().changed, vec![erl2]);
    // A later file in the new directory is an event of its own.
    let later = write(&root, "lib/new/deeper/m.ex", "m");
    assert_eq!(rx.recv_timeout(ARRIVES).unwrap().added, vec![later]);
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn a_renamed_directory_moves_its_files() {
    let (_tmp, root) = project();
    let old = write(&root, "lib/x/b.ex", "b");
    let (watch, rx) = start(&root, None);
    fs::rename(root.join("lib/x"), root.join("lib/y")).unwrap();
    let batch = rx.recv_timeout(ARRIVES).unwrap();
    assert_eq!(batch.removed, vec![old]);
    assert_eq!(
        batch.added,
        vec![root.join("lib/y/b.ex").to_string_lossy().into_owned()]
    );
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn a_baseline_reports_edits_made_before_the_watch() {
    let (_tmp, root) = project();
    let (watch, rx) = start(
        &root,
        Some(vec![("lib/a.ex", "stale"), ("lib/gone.ex", "g")]),
    );
    let batch = rx.recv_timeout(ARRIVES).unwrap();
    let path = |rel: &str| root.join(rel).to_string_lossy().into_owned();
    assert_eq!(
        batch,
        Batch {
            changed: vec![path("lib/a.ex")],
            added: vec![],
            removed: vec![path("lib/gone.ex")],
        }
    );
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn a_dropped_receiver_stops_the_watcher() {
    let (_tmp, root) = project();
    let (watch, rx) = start(&root, None);
    drop(rx);
    write(&root, "lib/a.ex", "changed");
    // The watcher delivers once, sees the receiver gone and ends by itself.
    let (done_tx, done_rx) = channel();
    std::thread::spawn(move || done_tx.send(watch.stop_and_wait(ARRIVES)));
    assert!(done_rx.recv_timeout(ARRIVES * 2).unwrap());
}

#[test]
fn named_files_outside_the_roots_are_watched_even_before_their_directory_exists() {
    let (_tmp, root) = project();
    write(&root, "priv/greeting.txt", "hello");
    let (watch, rx) = start_with_files(&root, None, &["priv/greeting.txt", "data/later.json"]);
    let greeting = write(&root, "priv/greeting.txt", "bye");
    let batch = rx.recv_timeout(ARRIVES).expect("a batch");
    assert_eq!(batch.changed, vec![greeting]);
    quiet(&rx);

    // Of the other files in its directory, only those like it count (a
    // template added beside templates); a named file whose directory
    // appears later is seen, and so is its removal.
    write(&root, "priv/notes.md", "x");
    quiet(&rx);
    let farewell = write(&root, "priv/farewell.txt", "ciao");
    let batch = rx.recv_timeout(ARRIVES).expect("a batch");
    assert_eq!(batch.added, vec![farewell]);
    let later = write(&root, "data/later.json", "{}");
    let batch = rx.recv_timeout(ARRIVES).expect("a batch");
    assert_eq!(batch.added, vec![later.clone()]);
    fs::remove_file(&later).unwrap();
    let batch = rx.recv_timeout(ARRIVES).expect("a batch");
    assert_eq!(batch.removed, vec![later]);
    assert!(watch.stop_and_wait(ARRIVES));
}

#[test]
fn bad_options_are_clear_errors() {
    let options = |roots: Vec<PathBuf>, debounce| Options {
        roots,
        extensions: vec![".ex".into()],
        files: vec![],
        debounce,
        baseline: None,
    };
    let err = |o| Watch::start(o, |_| true).err().unwrap();
    assert!(err(options(vec![], WINDOW)).contains("no directories"));
    assert!(err(options(vec!["lib".into()], WINDOW)).contains("absolute"));
    assert!(err(options(vec!["/tmp".into()], Duration::ZERO)).contains("at least 1 ms"));
}
