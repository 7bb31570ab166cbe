//! A source tree and the digests the running code was compiled from.
//!
//! The baseline stays here, next to the scanner, so that asking "what
//! changed?" costs a walk of the tree and returns only the changes: the
//! whole snapshot never has to cross into the caller and back.

use crate::scan::{self, ScanError};
use debug_reload_core::changes::{self, ChangeSet, Snapshot};
use std::collections::BTreeSet;
use std::path::Path;

pub struct SourceTree {
    roots: Vec<String>,
    extensions: Vec<String>,
    /// Files outside the walk that compiled code was built from (see
    /// [`SourceTree::track`]).
    resources: BTreeSet<String>,
    baseline: Snapshot,
}

/// What changed against the baseline, with the new digests of the
/// changed and added files (what [`SourceTree::accept`] takes).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TreeChanges {
    pub set: ChangeSet,
    pub digests: Snapshot,
    pub errors: Vec<ScanError>,
}

impl SourceTree {
    /// Scans `roots` (files ending with one of `extensions`); the scan is
    /// the baseline.
    pub fn new(roots: Vec<String>, extensions: Vec<String>) -> (Self, Vec<ScanError>) {
        let (baseline, errors) = scan::scan(&roots, &extensions);
        let tree = SourceTree {
            roots,
            extensions,
            resources: BTreeSet::new(),
            baseline,
        };
        (tree, errors)
    }

    pub fn baseline(&self) -> &Snapshot {
        &self.baseline
    }

    /// The changes since the baseline: of the whole tree, or only of the
    /// paths in `scope` (a path in scope that is gone counts as removed).
    /// The baseline is left as it is.
    pub fn changes(&self, scope: Option<&[String]>) -> TreeChanges {
        let Some(paths) = scope else {
            return self.changes_everywhere();
        };
        let (current, errors) = scan::digest_paths(paths);
        let set = changes::diff(&self.baseline, &current, Some(paths));
        let digests = set
            .changed
            .iter()
            .chain(&set.added)
            .filter_map(|path| current.get(path).map(|d| (path.clone(), d.clone())))
            .collect();
        TreeChanges {
            set,
            digests,
            errors,
        }
    }

    // The usual question, asked at every reload: one sorted pass over the
    // tree and the resources against the baseline, keeping only what
    // changed.
    fn changes_everywhere(&self) -> TreeChanges {
        let (mut files, mut errors) = scan::sources(&self.roots, &self.extensions);
        if !self.resources.is_empty() {
            files.extend(self.resources.iter().cloned());
            files.sort_unstable();
            files.dedup();
        }
        let current = scan::digests(files, &mut errors);
        let (set, digests) = changes::diff_sorted(&self.baseline, current);
        TreeChanges {
            set,
            digests,
            errors,
        }
    }

    /// Makes `resources` (absolute paths: the files compiled code read,
    /// such as `@external_resource`s) part of every scan besides the
    /// walk of the roots. Those newly tracked join the baseline as they
    /// are now, unless already in it; those no longer tracked leave it,
    /// unless the walk finds them anyway. Returns what joined the baseline
    /// and what left it.
    pub fn track(&mut self, resources: Vec<String>) -> (Snapshot, Vec<String>) {
        let resources: BTreeSet<String> = resources.into_iter().collect();
        let dropped: Vec<String> = self
            .resources
            .difference(&resources)
            .filter(|path| !self.walked(path) && self.baseline.contains_key(*path))
            .cloned()
            .collect();
        let fresh: Vec<String> = resources
            .iter()
            .filter(|path| !self.baseline.contains_key(*path))
            .cloned()
            .collect();
        let (joined, _unreadable) = scan::digest_paths(&fresh);
        for path in &dropped {
            self.baseline.remove(path);
        }
        self.baseline.extend(joined.clone());
        self.resources = resources;
        (joined, dropped)
    }

    // Whether the walk of the roots lists `path`.
    fn walked(&self, path: &str) -> bool {
        let path = Path::new(path);
        scan::matches_extension(path, &self.extensions) && scan::below_root(path, &self.roots)
    }

    /// Moves the baseline: `digests` are now current, `removed` are gone.
    pub fn accept(&mut self, digests: Snapshot, removed: &[String]) {
        for path in removed {
            self.baseline.remove(path);
        }
        self.baseline.extend(digests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::tests::write;
    use std::fs;
    use std::path::Path;

    fn tree(dir: &Path) -> SourceTree {
        let (tree, errors) = SourceTree::new(
            vec![dir.to_string_lossy().into_owned()],
            vec![".ex".to_string()],
        );
        assert!(errors.is_empty());
        tree
    }

    #[test]
    fn reports_changes_until_they_are_accepted() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "lib/a.ex", "a");
        let b = write(tmp.path(), "lib/b.ex", "b");
        let mut tree = tree(tmp.path());
        assert!(tree.changes(None).set.is_empty());

        fs::write(&a, "a2").unwrap();
        fs::remove_file(&b).unwrap();
        let c = write(tmp.path(), "lib/nested/c.ex", "c");
        let changes = tree.changes(None);
        assert_eq!(changes.set.changed, vec![a.clone()]);
        assert_eq!(changes.set.added, vec![c.clone()]);
        assert_eq!(changes.set.removed, vec![b.clone()]);
        assert_eq!(
            changes.digests.keys().cloned().collect::<Vec<_>>(),
            vec![a.clone(), c.clone()]
        );
        // Asking again changes nothing: the baseline moves only on accept.
        assert_eq!(tree.changes(None), changes);

        tree.accept(changes.digests, &changes.set.removed);
        assert!(tree.changes(None).set.is_empty());
        assert_eq!(tree.baseline().len(), 2);
        assert_eq!(tree.baseline()[&a], scan::digest_bytes(b"a2"));
    }

    #[test]
    fn files_added_to_and_removed_from_remembered_directories_are_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "lib/a.ex", "a");
        let b = write(tmp.path(), "lib/nested/b.ex", "b");
        std::thread::sleep(crate::cache::SETTLE + std::time::Duration::from_millis(50));
        let mut tree = tree(tmp.path());
        // Both directories' listings are remembered now.
        assert!(tree.changes(None).set.is_empty());

        let c = write(tmp.path(), "lib/nested/c.ex", "c");
        fs::remove_file(&a).unwrap();
        let changes = tree.changes(None);
        assert_eq!(changes.set.added, vec![c.clone()]);
        assert_eq!(changes.set.removed, vec![a]);
        tree.accept(changes.digests, &changes.set.removed);

        fs::rename(&c, tmp.path().join("lib/d.ex")).unwrap();
        let changes = tree.changes(None);
        assert_eq!(
            changes.set.added,
            vec![tmp.path().join("lib/d.ex").to_string_lossy().into_owned()]
        );
        assert_eq!(changes.set.removed, vec![c]);
        assert_eq!(changes.set.unchanged, 1);
        assert!(tree.baseline().contains_key(&b));
    }

    #[test]
    fn tracked_resources_are_scanned_with_the_tree() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "lib/a.ex", "a");
        let data = write(tmp.path(), "priv/data.txt", "one");
        let listed = write(tmp.path(), "lib/b.ex", "b");
        let mut tree = tree(&tmp.path().join("lib"));
        fs::write(&data, "edited before tracking").unwrap();

        // They join the baseline as they are when first tracked; a file
        // the walk lists already is in it.
        let (joined, dropped) = tree.track(vec![data.clone(), listed.clone()]);
        assert_eq!(
            joined.keys().cloned().collect::<Vec<_>>(),
            vec![data.clone()]
        );
        assert!(dropped.is_empty());
        assert!(tree.changes(None).set.is_empty());

        fs::write(&data, "two").unwrap();
        let changes = tree.changes(None);
        assert_eq!(changes.set.changed, vec![data.clone()]);
        assert_eq!(changes.set.unchanged, 2);
        tree.accept(changes.digests, &changes.set.removed);
        assert!(tree.changes(None).set.is_empty());

        fs::remove_file(&data).unwrap();
        assert_eq!(tree.changes(None).set.removed, vec![data.clone()]);

        // No longer tracked: out of the baseline, but not the walk's own.
        let (joined, dropped) = tree.track(vec![]);
        assert!(joined.is_empty());
        assert_eq!(dropped, vec![data]);
        assert!(tree.baseline().contains_key(&listed));
        assert!(tree.changes(None).set.is_empty());
    }

    #[test]
    fn a_scope_looks_at_its_paths_only() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "a.ex", "a");
        let b = write(tmp.path(), "b.ex", "b");
        let tree = tree(tmp.path());
        fs::write(&a, "a2").unwrap();
        fs::remove_file(&b).unwrap();
        let changes = tree.changes(Some(std::slice::from_ref(&b)));
        assert!(changes.set.changed.is_empty());
        assert_eq!(changes.set.removed, vec![b]);
        assert!(changes.digests.is_empty());
    }
}
