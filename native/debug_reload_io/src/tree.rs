//! A source tree and the digests the running code was compiled from.
//!
//! The baseline stays here, next to the scanner, so that asking "what
//! changed?" costs a walk of the tree and returns only the changes: the
//! whole snapshot never has to cross into the caller and back.

use crate::scan::{self, ScanError};
use debug_reload_core::changes::{self, ChangeSet, Snapshot};

pub struct SourceTree {
    roots: Vec<String>,
    extensions: Vec<String>,
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
    // tree against the baseline, keeping only what changed.
    fn changes_everywhere(&self) -> TreeChanges {
        let (files, mut errors) = scan::sources(&self.roots, &self.extensions);
        let current = scan::digests(files, &mut errors);
        let (set, digests) = changes::diff_sorted(&self.baseline, current);
        TreeChanges {
            set,
            digests,
            errors,
        }
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
