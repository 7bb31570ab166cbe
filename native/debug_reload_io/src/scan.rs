//! Walks source directories and digests file contents.

use crate::cache;
use crate::listing::{self, Kind};
use debug_reload_core::changes::Snapshot;
use std::fs;
use std::io;
use std::path::Path;

/// Directories that never hold the project's own sources.
pub const IGNORED_DIRS: &[&str] = &["_build", "deps", ".git", "node_modules", ".elixir_ls"];

/// A file that could not be digested, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    pub path: String,
    pub reason: String,
}

/// Hex BLAKE3 digest of a byte string.
pub fn digest_bytes(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

pub fn digest_file(path: &Path) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(fs::File::open(path)?)?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// Digests (see [`cache`]) every file below `roots` whose name ends with one of
/// `extensions`, skipping [`IGNORED_DIRS`]. A root that does not exist is
/// simply empty: projects often have no `src/` or `test/support/`.
pub fn scan(roots: &[String], extensions: &[String]) -> (Snapshot, Vec<ScanError>) {
    let (files, mut errors) = sources(roots, extensions);
    let snapshot = digests(files, &mut errors).into_iter().collect();
    (snapshot, errors)
}

/// The files [`scan`] digests, sorted, and the directories it could not read.
pub fn sources(roots: &[String], extensions: &[String]) -> (Vec<String>, Vec<ScanError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for root in roots {
        collect(
            Path::new(root),
            &Filter::sources(extensions),
            &mut files,
            &mut errors,
        );
    }
    files.sort_unstable();
    files.dedup();
    (files, errors)
}

/// The files below `roots` whose name ends with one of `extensions`, as
/// a `**/*.ext` wildcard lists them: hidden entries (a leading dot) are
/// skipped, and so are [`IGNORED_DIRS`]. Sorted; unreadable directories
/// are left out.
pub fn list(roots: &[String], extensions: &[String]) -> Vec<String> {
    let filter = Filter {
        extensions,
        skip_hidden: true,
    };
    let mut files = Vec::new();
    for root in roots {
        collect(Path::new(root), &filter, &mut files, &mut Vec::new());
    }
    files.sort();
    files
}

/// Digests exactly the given files (see [`cache::digest_all`]). Missing
/// files are left out of the snapshot so a diff reports them as removed.
pub fn digest_paths(paths: &[String]) -> (Snapshot, Vec<ScanError>) {
    let mut errors = Vec::new();
    let snapshot = digests(paths.to_vec(), &mut errors).into_iter().collect();
    (snapshot, errors)
}

/// `(path, digest)` of each of `paths` that could be read, in order; the
/// others go to `errors`, except those that are gone (deleted between
/// listing and reading: they are not broken, they are removed).
pub fn digests(paths: Vec<String>, errors: &mut Vec<ScanError>) -> Vec<(String, String)> {
    let digested = cache::digest_all(&paths, digest_file);
    let mut found = Vec::with_capacity(paths.len());
    for (path, digest) in paths.into_iter().zip(digested) {
        match digest {
            Ok(digest) => found.push((path, digest)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => errors.push(ScanError {
                reason: e.to_string(),
                path,
            }),
        }
    }
    found
}

struct Filter<'a> {
    extensions: &'a [String],
    skip_hidden: bool,
}

impl<'a> Filter<'a> {
    fn sources(extensions: &'a [String]) -> Self {
        Filter {
            extensions,
            skip_hidden: false,
        }
    }

    fn skips(&self, name: &std::ffi::OsStr) -> bool {
        self.skip_hidden && name.as_encoded_bytes().first() == Some(&b'.')
    }
}

/// Lists matching files from the directory listings alone (see
/// [`listing`]); their metadata is read by the digest step.
fn collect(dir: &Path, filter: &Filter, files: &mut Vec<String>, errors: &mut Vec<ScanError>) {
    let entries = match listing::read(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            // A root may name a single file.
            if matches_extension(dir, filter.extensions) {
                files.push(dir.to_string_lossy().into_owned());
            }
            return;
        }
        Err(e) => {
            errors.push(ScanError {
                path: dir.to_string_lossy().into_owned(),
                reason: e.to_string(),
            });
            return;
        }
    };
    // Callers sort what they collect, so the listing need not be ordered.
    for entry in entries.iter().filter(|entry| !filter.skips(&entry.name)) {
        match entry.kind {
            Kind::Dir if !IGNORED_DIRS.iter().any(|d| entry.name == *d) => {
                collect(&entry.path, filter, files, errors)
            }
            Kind::File | Kind::Symlink if name_matches(&entry.name, filter.extensions) => {
                files.push(entry.path.to_string_lossy().into_owned())
            }
            _ => {}
        }
    }
}

/// True for a root or anything below one, unless a directory between the
/// root and `path` is one of [`IGNORED_DIRS`] (`lib/deps/x.ex`): what the
/// walk of the roots reaches.
pub fn below_root<R: AsRef<Path>>(path: &Path, roots: &[R]) -> bool {
    roots.iter().any(|root| {
        path.strip_prefix(root).is_ok_and(|rel| {
            !rel.components()
                .any(|c| IGNORED_DIRS.iter().any(|d| c.as_os_str() == *d))
        })
    })
}

/// True when the file name of `path` ends with one of `extensions`.
pub fn matches_extension(path: &Path, extensions: &[String]) -> bool {
    path.file_name()
        .is_some_and(|name| name_matches(name, extensions))
}

fn name_matches(name: &std::ffi::OsStr, extensions: &[String]) -> bool {
    let bytes = name.as_encoded_bytes();
    extensions.iter().any(|ext| bytes.ends_with(ext.as_bytes()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Writes `body` to `dir/rel` (creating directories); the full path.
    pub(crate) fn write(dir: &Path, rel: &str, body: &str) -> String {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn scans_matching_files_recursively_and_skips_build_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "lib/a.ex", "a");
        let b = write(tmp.path(), "lib/nested/b.ex", "b");
        write(tmp.path(), "lib/readme.md", "x");
        write(tmp.path(), "lib/_build/c.ex", "c");
        write(tmp.path(), "lib/deps/d.ex", "d");
        let root = tmp.path().join("lib").to_string_lossy().into_owned();
        let missing = tmp.path().join("src").to_string_lossy().into_owned();
        let (snap, errors) = scan(&[root, missing], &[".ex".into()]);
        assert!(errors.is_empty());
        assert_eq!(snap.keys().cloned().collect::<Vec<_>>(), vec![a, b]);
    }

    #[test]
    fn digest_changes_with_content_only() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "a.ex", "same");
        let b = write(tmp.path(), "b.ex", "same");
        let (snap, _) = digest_paths(&[a.clone(), b.clone()]);
        assert_eq!(snap[&a], snap[&b]);
        fs::write(&a, "other").unwrap();
        let (snap2, _) = digest_paths(std::slice::from_ref(&a));
        assert_ne!(snap[&a], snap2[&a]);
    }

    #[test]
    fn lists_like_a_wildcard_skipping_hidden_entries() {
        let tmp = tempfile::tempdir().unwrap();
        let a = write(tmp.path(), "src/a.erl", "a");
        let b = write(tmp.path(), "src/deep/b.erl", "b");
        write(tmp.path(), "src/.hidden/c.erl", "c");
        write(tmp.path(), "src/.d.erl", "d");
        write(tmp.path(), "src/e.hrl", "e");
        let root = tmp.path().join("src").to_string_lossy().into_owned();
        assert_eq!(list(&[root], &[".erl".into()]), vec![a, b]);
    }

    #[test]
    fn many_files_are_digested_in_order_across_threads() {
        let tmp = tempfile::tempdir().unwrap();
        let paths: Vec<String> = (0..1000)
            .map(|i| write(tmp.path(), &format!("lib/m{i:04}.ex"), &format!("body {i}")))
            .collect();
        let (snap, errors) = digest_paths(&paths);
        assert!(errors.is_empty());
        assert_eq!(snap.len(), paths.len());
        for (i, path) in paths.iter().enumerate() {
            assert_eq!(snap[path], digest_bytes(format!("body {i}").as_bytes()));
        }
    }

    #[test]
    fn missing_paths_are_absent_not_errors() {
        let (snap, errors) = digest_paths(&["/nonexistent/x.ex".to_string()]);
        assert!(snap.is_empty());
        assert!(errors.is_empty());
    }
}
