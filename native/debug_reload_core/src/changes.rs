//! Change detection: compare two content-digest snapshots of a source tree.

use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// Path → content digest. Ordered so results are deterministic.
pub type Snapshot = BTreeMap<String, String>;

/// The difference between two snapshots, each list sorted by path.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeSet {
    pub changed: Vec<String>,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// Paths present in both snapshots with the same digest.
    pub unchanged: usize,
}

impl ChangeSet {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.added.is_empty() && self.removed.is_empty()
    }
}

/// Compares `previous` with `current`.
///
/// When `scope` is given, only those paths are considered: a path in scope
/// that is missing from `current` counts as removed (if it was known) and a
/// path outside of it is ignored entirely, whatever its state.
pub fn diff(previous: &Snapshot, current: &Snapshot, scope: Option<&[String]>) -> ChangeSet {
    let Some(scope) = scope else {
        return diff_sorted(previous, current).0;
    };
    let scope: HashSet<&str> = scope.iter().map(String::as_str).collect();
    let in_scope = |path: &str| scope.contains(path);
    let mut set = ChangeSet::default();

    for (path, digest) in current.iter().filter(|(p, _)| in_scope(p)) {
        match previous.get(path) {
            None => set.added.push(path.clone()),
            Some(old) if old != digest => set.changed.push(path.clone()),
            Some(_) => set.unchanged += 1,
        }
    }
    set.removed = previous
        .keys()
        .filter(|p| in_scope(p) && !current.contains_key(*p))
        .cloned()
        .collect();
    set
}

/// Compares `previous` with the whole current tree, given as `(path,
/// digest)` pairs sorted by path without duplicates; also returns the
/// digests of the changed and added paths. One pass over both, with no
/// snapshot of the current tree built on the way: most of a tree is
/// unchanged, and only what changed is kept.
pub fn diff_sorted<P, D>(
    previous: &Snapshot,
    current: impl IntoIterator<Item = (P, D)>,
) -> (ChangeSet, Snapshot)
where
    P: AsRef<str> + Into<String>,
    D: AsRef<str> + Into<String>,
{
    let mut set = ChangeSet::default();
    let mut digests = Snapshot::new();
    let mut known = previous.iter().peekable();
    for (path, digest) in current {
        let path_str = path.as_ref();
        while let Some((gone, _)) = known.next_if(|(p, _)| p.as_str() < path_str) {
            set.removed.push(gone.clone());
        }
        match known.next_if(|(p, _)| p.as_str() == path_str) {
            Some((_, old)) if old.as_str() == digest.as_ref() => set.unchanged += 1,
            Some(_) => {
                let path: String = path.into();
                set.changed.push(path.clone());
                digests.insert(path, digest.into());
            }
            None => {
                let path: String = path.into();
                set.added.push(path.clone());
                digests.insert(path, digest.into());
            }
        }
    }
    set.removed.extend(known.map(|(p, _)| p.clone()));
    (set, digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(entries: &[(&str, &str)]) -> Snapshot {
        entries
            .iter()
            .map(|(p, d)| (p.to_string(), d.to_string()))
            .collect()
    }

    #[test]
    fn classifies_changed_added_removed_and_unchanged() {
        let old = snap(&[("a.ex", "1"), ("b.ex", "2"), ("c.ex", "3")]);
        let new = snap(&[("a.ex", "1"), ("b.ex", "9"), ("d.ex", "4")]);
        let set = diff(&old, &new, None);
        assert_eq!(set.changed, vec!["b.ex"]);
        assert_eq!(set.added, vec!["d.ex"]);
        assert_eq!(set.removed, vec!["c.ex"]);
        assert_eq!(set.unchanged, 1);
        assert!(!set.is_empty());
    }

    #[test]
    fn identical_snapshots_are_empty() {
        let old = snap(&[("a.ex", "1")]);
        let set = diff(&old, &old.clone(), None);
        assert!(set.is_empty());
        assert_eq!(set.unchanged, 1);
    }

    #[test]
    fn the_sorted_diff_agrees_with_the_snapshot_diff_and_keeps_new_digests() {
        let old = snap(&[("a.ex", "1"), ("b.ex", "2"), ("c.ex", "3"), ("e.ex", "5")]);
        let new = snap(&[("b.ex", "9"), ("c.ex", "3"), ("d.ex", "4"), ("f.ex", "6")]);
        let (set, digests) = diff_sorted(&old, new.clone());
        assert_eq!(diff_sorted(&old, &new).0, set);
        assert_eq!(set.changed, vec!["b.ex"]);
        assert_eq!(set.added, vec!["d.ex", "f.ex"]);
        assert_eq!(set.removed, vec!["a.ex", "e.ex"]);
        assert_eq!(set.unchanged, 1);
        assert_eq!(
            digests,
            snap(&[("b.ex", "9"), ("d.ex", "4"), ("f.ex", "6")])
        );
        assert_eq!(diff(&old, &new, None), set);
        assert_eq!(
            diff_sorted(&old, Vec::<(String, String)>::new())
                .0
                .removed
                .len(),
            4
        );
        assert_eq!(diff_sorted(&Snapshot::new(), old.clone()).0.added.len(), 4);
    }

    #[test]
    fn scope_limits_every_category() {
        let old = snap(&[("a.ex", "1"), ("b.ex", "2"), ("c.ex", "3")]);
        let new = snap(&[("a.ex", "0"), ("b.ex", "9"), ("d.ex", "4")]);
        let scope = vec!["b.ex".to_string(), "c.ex".to_string()];
        let set = diff(&old, &new, Some(&scope));
        assert_eq!(set.changed, vec!["b.ex"]);
        assert!(set.added.is_empty());
        assert_eq!(set.removed, vec!["c.ex"]);
    }
}
