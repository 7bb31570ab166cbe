//! Walks source directories and digests file contents.

use crate::cache;
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
    let (snapshot, digest_errors) = digest_paths(&files);
    errors.extend(digest_errors);
    (snapshot, errors)
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

/// Digests exactly the given files. Missing files are left out of the
/// snapshot so a diff reports them as removed.
///
/// Most of a scan is one metadata call per file (the digests of unchanged
/// files are remembered), and each call is a system call that waits on the
/// kernel: spread over a few threads, a thousand files take a fraction of
/// the time.
pub fn digest_paths(paths: &[String]) -> (Snapshot, Vec<ScanError>) {
    let digested = parallel_map(paths, |path| cache::digest_with(path, digest_file));
    let mut snapshot = Snapshot::new();
    let mut errors = Vec::new();
    for (path, digest) in paths.iter().zip(digested) {
        match digest {
            Ok(digest) => {
                snapshot.insert(path.clone(), digest);
            }
            // Deleted between listing and reading: it is gone, not broken.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => errors.push(ScanError {
                path: path.clone(),
                reason: e.to_string(),
            }),
        }
    }
    (snapshot, errors)
}

/// Below this many items a thread costs more than it saves.
const ITEMS_PER_THREAD: usize = 128;
const MAX_THREADS: usize = 4;

/// `f` over `items`, in order, on up to [`MAX_THREADS`] threads.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (items.len() / ITEMS_PER_THREAD).clamp(1, cores.min(MAX_THREADS));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|handle| match handle.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    })
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

/// Lists matching files from the directory entries alone (their type comes
/// with the listing); their metadata is read by the digest step.
fn collect(dir: &Path, filter: &Filter, files: &mut Vec<String>, errors: &mut Vec<ScanError>) {
    let entries = match fs::read_dir(dir) {
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
    // The snapshot is ordered by path, so the listing need not be.
    for entry in entries.filter_map(Result::ok) {
        // file_type() does not follow symlinks, so a link cycle cannot loop.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if filter.skips(&name) {
            continue;
        }
        if kind.is_dir() {
            if !IGNORED_DIRS.iter().any(|d| name == *d) {
                collect(&entry.path(), filter, files, errors);
            }
        } else if (kind.is_file() || kind.is_symlink()) && name_matches(&name, filter.extensions) {
            files.push(entry.path().to_string_lossy().into_owned());
        }
    }
}

fn matches_extension(path: &Path, extensions: &[String]) -> bool {
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
