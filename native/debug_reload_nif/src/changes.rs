use debug_reload_core::changes::{self, Snapshot};
use debug_reload_io::scan::{self, ScanError};
use debug_reload_io::tree::SourceTree;
use rustler::{NifMap, ResourceArc};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(NifMap)]
struct ChangeSetTerm {
    changed: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    unchanged: usize,
}

type Errors = Vec<(String, String)>;

fn errors_term(errors: Vec<ScanError>) -> Errors {
    errors.into_iter().map(|e| (e.path, e.reason)).collect()
}

/// Digests the source files below `roots` with one of `extensions`.
#[rustler::nif(schedule = "DirtyIo")]
fn scan_sources(roots: Vec<String>, extensions: Vec<String>) -> (HashMap<String, String>, Errors) {
    let (snapshot, errors) = scan::scan(&roots, &extensions);
    (snapshot.into_iter().collect(), errors_term(errors))
}

/// The files below `roots` with one of `extensions`, as a `**/*.ext`
/// wildcard lists them (hidden entries skipped), without digesting them.
#[rustler::nif(schedule = "DirtyIo")]
fn list_files(roots: Vec<String>, extensions: Vec<String>) -> Vec<String> {
    scan::list(&roots, &extensions)
}

#[rustler::nif]
fn digest_binary(bytes: rustler::Binary) -> String {
    scan::digest_bytes(bytes.as_slice())
}

/// Compares two `%{path => digest}` snapshots, optionally within `scope`.
#[rustler::nif(schedule = "DirtyCpu")]
fn diff_snapshots(
    previous: HashMap<String, String>,
    current: HashMap<String, String>,
    scope: Option<Vec<String>>,
) -> ChangeSetTerm {
    let previous: Snapshot = previous.into_iter().collect();
    let current: Snapshot = current.into_iter().collect();
    let set = changes::diff(&previous, &current, scope.as_deref());
    ChangeSetTerm {
        changed: set.changed,
        added: set.added,
        removed: set.removed,
        unchanged: set.unchanged,
    }
}

// -- the source tree, held as a resource -------------------------------------

pub struct SourceTreeResource {
    tree: Mutex<SourceTree>,
}

#[rustler::resource_impl]
impl rustler::Resource for SourceTreeResource {}

impl SourceTreeResource {
    fn with<T>(&self, f: impl FnOnce(&mut SourceTree) -> T) -> T {
        // Accepting changes only inserts and removes entries: a panic
        // part-way leaves a usable (if stale) baseline.
        let mut tree = self.tree.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut tree)
    }
}

#[derive(NifMap)]
struct TreeChangesTerm {
    changed: Vec<String>,
    added: Vec<String>,
    removed: Vec<String>,
    unchanged: usize,
    digests: HashMap<String, String>,
    errors: Errors,
}

/// Scans `roots`; the scan is the tree's baseline, returned as well.
#[rustler::nif(schedule = "DirtyIo")]
fn source_tree_new(
    roots: Vec<String>,
    extensions: Vec<String>,
) -> (
    ResourceArc<SourceTreeResource>,
    HashMap<String, String>,
    Errors,
) {
    let (tree, errors) = SourceTree::new(roots, extensions);
    let baseline = tree.baseline().clone().into_iter().collect();
    let resource = ResourceArc::new(SourceTreeResource {
        tree: Mutex::new(tree),
    });
    (resource, baseline, errors_term(errors))
}

/// What changed since the baseline (within `scope` when given), with the
/// new digests of changed and added files. The baseline does not move.
#[rustler::nif(schedule = "DirtyIo")]
fn source_tree_changes(
    tree: ResourceArc<SourceTreeResource>,
    scope: Option<Vec<String>>,
) -> TreeChangesTerm {
    let changes = tree.with(|t| t.changes(scope.as_deref()));
    TreeChangesTerm {
        changed: changes.set.changed,
        added: changes.set.added,
        removed: changes.set.removed,
        unchanged: changes.set.unchanged,
        digests: changes.digests.into_iter().collect(),
        errors: errors_term(changes.errors),
    }
}

/// Tracks `resources` besides the walk (see `SourceTree::track`); returns
/// the baseline entries added and the paths that left the baseline.
#[rustler::nif(schedule = "DirtyIo")]
fn source_tree_track(
    tree: ResourceArc<SourceTreeResource>,
    resources: Vec<String>,
) -> (HashMap<String, String>, Vec<String>) {
    let (joined, dropped) = tree.with(|t| t.track(resources));
    (joined.into_iter().collect(), dropped)
}

/// Moves the baseline: `digests` are current now, `removed` are gone.
#[rustler::nif(schedule = "DirtyCpu")]
fn source_tree_accept(
    tree: ResourceArc<SourceTreeResource>,
    digests: HashMap<String, String>,
    removed: Vec<String>,
) -> rustler::Atom {
    tree.with(|t| t.accept(digests.into_iter().collect(), &removed));
    rustler::types::atom::ok()
}
