use debug_reload_core::changes::{self, Snapshot};
use debug_reload_io::scan::{self, ScanError};
use rustler::NifMap;
use std::collections::HashMap;

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

/// Digests exactly `paths`; files that do not exist are absent.
#[rustler::nif(schedule = "DirtyIo")]
fn digest_files(paths: Vec<String>) -> (HashMap<String, String>, Errors) {
    let (snapshot, errors) = scan::digest_paths(&paths);
    (snapshot.into_iter().collect(), errors_term(errors))
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
