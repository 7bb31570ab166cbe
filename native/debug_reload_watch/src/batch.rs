//! Turning a window's worth of touched paths into one batch of source
//! changes. Pure: the file system is asked through a probe, so the rules
//! (what counts as changed, added or removed) are unit-tested.

use crate::filter::SourceFilter;
use debug_reload_core::changes::Snapshot;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What a touched path is once the window has closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A file, with its content digest.
    File(String),
    /// A directory, with the digests of the source files below it.
    Dir(Snapshot),
    /// Nothing there (or it vanished while being read).
    Missing,
    /// There, but unreadable: its last known state is kept.
    Unreadable,
}

/// Source changes, each list sorted by path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }

    pub fn len(&self) -> usize {
        self.changed.len() + self.added.len() + self.removed.len()
    }
}

/// The content digests a watcher last saw, and the rule that turns touched
/// paths into a batch: a path only counts when its digest differs from the
/// last one seen, so `touch`, a save of unchanged content, or a write
/// undone within the window produce nothing.
#[derive(Debug, Default)]
pub struct Digests {
    known: Snapshot,
}

impl Digests {
    pub fn new(known: Snapshot) -> Self {
        Digests { known }
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Compares the current state of `touched` (through `probe`) with the
    /// digests last seen, records the current state, and returns what
    /// changed. Paths outside the filter are not probed at all.
    pub fn settle(
        &mut self,
        touched: &BTreeSet<PathBuf>,
        filter: &SourceFilter,
        mut probe: impl FnMut(&Path) -> Probe,
    ) -> Batch {
        let mut current = Snapshot::new();
        let mut gone = BTreeSet::new();
        for path in touched.iter().filter(|p| filter.within(p)) {
            let key = path.to_string_lossy().into_owned();
            match probe(path) {
                Probe::File(digest) if filter.is_source(path) => {
                    current.insert(key, digest);
                }
                Probe::File(_) | Probe::Unreadable => {}
                Probe::Dir(files) => {
                    // Files below a renamed or deleted-and-recreated
                    // directory raise no event of their own.
                    gone.extend(
                        self.below(&key)
                            .filter(|k| !files.contains_key(*k))
                            .cloned(),
                    );
                    current.extend(
                        files
                            .into_iter()
                            .filter(|(p, _)| filter.is_source(Path::new(p))),
                    );
                }
                Probe::Missing => {
                    gone.extend(self.known.get_key_value(&key).map(|(k, _)| k.clone()));
                    gone.extend(self.below(&key).cloned());
                }
            }
        }
        let mut batch = Batch::default();
        for (path, digest) in current {
            gone.remove(&path);
            match self.known.insert(path.clone(), digest.clone()) {
                None => batch.added.push(path),
                Some(old) if old != digest => batch.changed.push(path),
                Some(_) => {}
            }
        }
        for path in gone {
            if self.known.remove(&path).is_some() {
                batch.removed.push(path);
            }
        }
        batch
    }

    fn below<'a>(&'a self, dir: &str) -> impl Iterator<Item = &'a String> + 'a {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.known
            .range(prefix.clone()..)
            .map(|(k, _)| k)
            .take_while(move |k| k.starts_with(&prefix))
    }
}

/// The debounce window: a batch closes once no event has arrived for
/// `quiet`. Tracks time only; the touched paths accumulate beside it.
#[derive(Debug)]
pub struct Window {
    quiet: Duration,
    deadline: Option<Instant>,
}

impl Window {
    pub fn new(quiet: Duration) -> Self {
        Window {
            quiet,
            deadline: None,
        }
    }

    /// An event arrived at `now`: the window stays open `quiet` longer.
    pub fn touch(&mut self, now: Instant) {
        self.deadline = Some(now + self.quiet);
    }

    /// When the open window closes, if one is open.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Closes the window if it is due at `now`; true when it was.
    pub fn close_if_due(&mut self, now: Instant) -> bool {
        match self.deadline {
            Some(deadline) if now >= deadline => {
                self.deadline = None;
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn filter() -> SourceFilter {
        SourceFilter::new([PathBuf::from("/p/lib")], vec![".ex".into(), ".erl".into()])
    }

    fn snapshot(entries: &[(&str, &str)]) -> Snapshot {
        entries
            .iter()
            .map(|(p, d)| (p.to_string(), d.to_string()))
            .collect()
    }

    fn touched(paths: &[&str]) -> BTreeSet<PathBuf> {
        paths.iter().map(PathBuf::from).collect()
    }

    /// A fake file system: path => probe.
    fn fs(entries: Vec<(&str, Probe)>) -> impl FnMut(&Path) -> Probe {
        let map: HashMap<PathBuf, Probe> = entries
            .into_iter()
            .map(|(p, probe)| (PathBuf::from(p), probe))
            .collect();
        move |p| map.get(p).cloned().unwrap_or(Probe::Missing)
    }

    fn file(d: &str) -> Probe {
        Probe::File(d.into())
    }

    #[test]
    fn only_a_different_digest_is_a_change() {
        let mut digests = Digests::new(snapshot(&[("/p/lib/a.ex", "1"), ("/p/lib/b.ex", "2")]));
        let batch = digests.settle(
            &touched(&["/p/lib/a.ex", "/p/lib/b.ex"]),
            &filter(),
            fs(vec![("/p/lib/a.ex", file("1")), ("/p/lib/b.ex", file("3"))]),
        );
        assert_eq!(batch.changed, vec!["/p/lib/b.ex"]);
        assert!(batch.added.is_empty() && batch.removed.is_empty());
        // The new digest is remembered: the same content again is nothing.
        let again = digests.settle(
            &touched(&["/p/lib/b.ex"]),
            &filter(),
            fs(vec![("/p/lib/b.ex", file("3"))]),
        );
        assert!(again.is_empty());
    }

    #[test]
    fn new_and_deleted_files() {
        let mut digests = Digests::new(snapshot(&[("/p/lib/old.ex", "1")]));
        let batch = digests.settle(
            &touched(&["/p/lib/old.ex", "/p/lib/new.ex"]),
            &filter(),
            fs(vec![("/p/lib/new.ex", file("2"))]),
        );
        assert_eq!(batch.added, vec!["/p/lib/new.ex"]);
        assert_eq!(batch.removed, vec!["/p/lib/old.ex"]);
        assert_eq!(digests.len(), 1);
    }

    #[test]
    fn an_atomic_save_is_one_change_of_the_target_only() {
        // write .a.ex.tmp, rename it over a.ex: the temp file is gone and
        // never had a source name.
        let mut digests = Digests::new(snapshot(&[("/p/lib/a.ex", "1")]));
        let batch = digests.settle(
            &touched(&["/p/lib/.a.ex.tmp", "/p/lib/a.ex"]),
            &filter(),
            fs(vec![("/p/lib/a.ex", file("2"))]),
        );
        assert_eq!(
            batch,
            Batch {
                changed: vec!["/p/lib/a.ex".into()],
                ..Batch::default()
            }
        );
    }

    #[test]
    fn a_file_created_and_deleted_within_the_window_is_nothing() {
        let mut digests = Digests::default();
        let batch = digests.settle(&touched(&["/p/lib/tmp.ex"]), &filter(), fs(vec![]));
        assert!(batch.is_empty());
    }

    #[test]
    fn a_new_directory_contributes_its_files() {
        let mut digests = Digests::default();
        let dir = Probe::Dir(snapshot(&[
            ("/p/lib/new/a.ex", "1"),
            ("/p/lib/new/deep/b.erl", "2"),
        ]));
        let batch = digests.settle(
            &touched(&["/p/lib/new"]),
            &filter(),
            fs(vec![("/p/lib/new", dir)]),
        );
        assert_eq!(
            batch.added,
            vec!["/p/lib/new/a.ex", "/p/lib/new/deep/b.erl"]
        );
    }

    #[test]
    fn a_deleted_or_renamed_directory_removes_its_files() {
        let mut digests = Digests::new(snapshot(&[
            ("/p/lib/x/a.ex", "1"),
            ("/p/lib/x/y/b.ex", "2"),
            ("/p/lib/xy.ex", "3"),
        ]));
        let moved = Probe::Dir(snapshot(&[
            ("/p/lib/z/a.ex", "1"),
            ("/p/lib/z/y/b.ex", "2"),
        ]));
        let batch = digests.settle(
            &touched(&["/p/lib/x", "/p/lib/z"]),
            &filter(),
            fs(vec![("/p/lib/z", moved), ("/p/lib/xy.ex", file("3"))]),
        );
        assert_eq!(batch.added, vec!["/p/lib/z/a.ex", "/p/lib/z/y/b.ex"]);
        // The sibling sharing the prefix "x" is untouched.
        assert_eq!(batch.removed, vec!["/p/lib/x/a.ex", "/p/lib/x/y/b.ex"]);
    }

    #[test]
    fn a_directory_replaced_within_the_window_keeps_unchanged_files_quiet() {
        let mut digests = Digests::new(snapshot(&[("/p/lib/x/a.ex", "1"), ("/p/lib/x/b.ex", "2")]));
        let dir = Probe::Dir(snapshot(&[("/p/lib/x/a.ex", "1")]));
        let batch = digests.settle(
            &touched(&["/p/lib/x"]),
            &filter(),
            fs(vec![("/p/lib/x", dir)]),
        );
        assert_eq!(
            batch,
            Batch {
                removed: vec!["/p/lib/x/b.ex".into()],
                ..Batch::default()
            }
        );
    }

    #[test]
    fn paths_outside_the_roots_are_never_probed() {
        let mut digests = Digests::default();
        let batch = digests.settle(
            &touched(&["/p/mix.exs", "/p/lib/_build/a.ex", "/p/lib/readme.md"]),
            &filter(),
            |p| {
                assert_eq!(p, Path::new("/p/lib/readme.md"));
                file("1")
            },
        );
        assert!(batch.is_empty());
    }

    #[test]
    fn an_unreadable_file_keeps_its_last_state() {
        let mut digests = Digests::new(snapshot(&[("/p/lib/a.ex", "1")]));
        let batch = digests.settle(
            &touched(&["/p/lib/a.ex"]),
            &filter(),
            fs(vec![("/p/lib/a.ex", Probe::Unreadable)]),
        );
        assert!(batch.is_empty());
        assert_eq!(digests.len(), 1);
    }

    #[test]
    fn the_window_closes_after_a_quiet_period_from_the_last_event() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut window = Window::new(ms(100));
        assert_eq!(window.deadline(), None);
        window.touch(t0);
        window.touch(t0 + ms(60));
        assert!(!window.close_if_due(t0 + ms(120)));
        assert_eq!(window.deadline(), Some(t0 + ms(160)));
        assert!(window.close_if_due(t0 + ms(160)));
        assert_eq!(window.deadline(), None);
        assert!(!window.close_if_due(t0 + ms(500)));
    }
}
