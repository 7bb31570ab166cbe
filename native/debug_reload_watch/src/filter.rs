//! Which paths a watcher cares about, and what it asks the OS to watch.
//! Pure: no file system access, so every rule is a unit test.

use debug_reload_io::scan;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The source files of a project: files below one of `roots` whose name
/// ends with one of `extensions`, outside [`scan::IGNORED_DIRS`], and the
/// single `files` named besides them (resources code is built from,
/// wherever they are), with the files like them beside them.
#[derive(Debug, Clone)]
pub struct SourceFilter {
    roots: Vec<PathBuf>,
    extensions: Vec<String>,
    files: BTreeSet<PathBuf>,
    /// (directory, extension) of each named file: a file added beside
    /// templates may be one a wildcard picks up (Phoenix's
    /// `embed_templates`), though nobody declared it yet.
    kinds: BTreeSet<(PathBuf, String)>,
}

impl SourceFilter {
    /// Roots nested in other roots are dropped: the outer one covers them.
    pub fn new(roots: impl IntoIterator<Item = PathBuf>, extensions: Vec<String>) -> Self {
        let mut roots: Vec<PathBuf> = roots.into_iter().collect();
        roots.sort();
        roots.dedup();
        let outer: Vec<PathBuf> = roots
            .iter()
            .filter(|r| !roots.iter().any(|o| o != *r && r.starts_with(o)))
            .cloned()
            .collect();
        SourceFilter {
            roots: outer,
            extensions,
            files: BTreeSet::new(),
            kinds: BTreeSet::new(),
        }
    }

    /// The same filter, counting `files` as sources too, and the files
    /// beside each of them with its extension.
    pub fn with_files(mut self, files: impl IntoIterator<Item = PathBuf>) -> Self {
        self.files = files.into_iter().collect();
        self.kinds = self.files.iter().filter_map(|f| kind(f)).collect();
        self
    }

    pub fn files(&self) -> &BTreeSet<PathBuf> {
        &self.files
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// True for a root or anything below one, unless a directory between
    /// the root and `path` is ignored (`lib/deps/x.ex`), and for the named
    /// files. Directories and files alike: a directory event may stand for
    /// the files inside it.
    pub fn within(&self, path: &Path) -> bool {
        self.files.contains(path) || self.like_a_named_file(path) || self.within_roots(path)
    }

    // Beside a named file, with its extension, and no hidden (editor)
    // file: `.home.html.heex.swp` is not a template.
    fn like_a_named_file(&self, path: &Path) -> bool {
        !self.kinds.is_empty()
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            && kind(path).is_some_and(|k| self.kinds.contains(&k))
    }

    fn within_roots(&self, path: &Path) -> bool {
        scan::below_root(path, &self.roots)
    }

    /// True for a named file, and for a source file name within the
    /// roots. Editor lock files (`.#worker.ex`, Emacs) look like sources
    /// but are not.
    pub fn is_source(&self, path: &Path) -> bool {
        if self.files.contains(path) || self.like_a_named_file(path) {
            return true;
        }
        let Some(name) = path.file_name().map(|n| n.to_string_lossy()) else {
            return false;
        };
        !name.starts_with(".#")
            && self.extensions.iter().any(|e| name.ends_with(e.as_str()))
            && self.within_roots(path)
    }

    /// The watches this filter needs (see [`watch_targets`]): the roots',
    /// and for each named file outside them, the entries of its directory
    /// (or of its nearest existing ancestor, to see the directory appear).
    pub fn watch_targets(&self, is_dir: impl Fn(&Path) -> bool) -> Vec<(PathBuf, Depth)> {
        let mut targets = watch_targets(&self.roots, &is_dir);
        for file in &self.files {
            let Some(dir) = file.ancestors().skip(1).find(|a| is_dir(a)) else {
                continue;
            };
            let covered = targets
                .iter()
                .any(|(p, d)| *d == Depth::Recursive && dir.starts_with(p));
            if !covered && !targets.iter().any(|(p, _)| p == dir) {
                targets.push((dir.to_path_buf(), Depth::Entries));
            }
        }
        targets
    }

    /// True when `path` is a missing root, or a missing directory on the way
    /// to one or to a named file: its creation means the watches must be
    /// recomputed.
    pub fn opens_watch(&self, path: &Path) -> bool {
        opens_root(&self.roots, path)
            || self
                .files
                .iter()
                .any(|f| f.parent().is_some_and(|dir| dir.starts_with(path)))
    }
}

/// A file's directory and extension (`.heex` for `home.html.heex`).
fn kind(path: &Path) -> Option<(PathBuf, String)> {
    let dir = path.parent()?;
    let ext = path.extension()?;
    Some((dir.to_path_buf(), ext.to_string_lossy().into_owned()))
}

/// How a directory is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// The directory and everything below it, new subdirectories included.
    Recursive,
    /// Only the directory's own entries: used on the nearest existing
    /// parent of a root that does not exist yet, to see it appear.
    Entries,
}

/// The watches that cover `roots`: each existing root recursively, and for
/// a missing root the entries of its nearest existing ancestor (unless an
/// existing root already covers that ancestor).
pub fn watch_targets(roots: &[PathBuf], is_dir: &impl Fn(&Path) -> bool) -> Vec<(PathBuf, Depth)> {
    let recursive: Vec<&PathBuf> = roots.iter().filter(|r| is_dir(r)).collect();
    let covered = |p: &Path| recursive.iter().any(|r| p.starts_with(r));
    let mut targets: Vec<(PathBuf, Depth)> = recursive
        .iter()
        .map(|r| ((*r).clone(), Depth::Recursive))
        .collect();
    for root in roots.iter().filter(|r| !is_dir(r)) {
        let ancestor = root.ancestors().skip(1).find(|a| is_dir(a));
        if let Some(ancestor) = ancestor {
            if !covered(ancestor) && !targets.iter().any(|(p, _)| p == ancestor) {
                targets.push((ancestor.to_path_buf(), Depth::Entries));
            }
        }
    }
    targets
}

/// True when `path` is a missing root or one of its missing ancestors: its
/// creation means the watches must be recomputed.
pub fn opens_root(roots: &[PathBuf], path: &Path) -> bool {
    roots.iter().any(|r| r.starts_with(path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn filter() -> SourceFilter {
        SourceFilter::new(
            ["/p/lib", "/p/src", "/p/lib/nested", "/dep/lib"].map(PathBuf::from),
            [".ex", ".exs", ".erl", ".hrl"].map(String::from).to_vec(),
        )
    }

    #[test]
    fn nested_roots_collapse_into_the_outer_one() {
        assert_eq!(
            filter().roots(),
            ["/dep/lib", "/p/lib", "/p/src"].map(PathBuf::from)
        );
    }

    #[test]
    fn sources_are_files_with_a_source_extension_below_a_root() {
        let f = filter();
        for yes in [
            "/p/lib/a.ex",
            "/p/lib/x/y/b.exs",
            "/p/src/c.erl",
            "/p/src/c.hrl",
            "/dep/lib/d.ex",
        ] {
            assert!(f.is_source(Path::new(yes)), "{yes}");
        }
        for no in [
            "/p/lib/a.ex~",
            "/p/lib/.a.ex.swp",
            "/p/lib/.#a.ex",
            "/p/lib/4913",
            "/p/lib/a.ex.tmp.123",
            "/p/test/a_test.exs",
            "/p/mix.exs",
            "/p/libx/a.ex",
            "/p/lib/_build/dev/a.ex",
            "/p/lib/deps/foo/lib/a.ex",
            "/p/lib/x/.git/a.ex",
        ] {
            assert!(!f.is_source(Path::new(no)), "{no}");
        }
    }

    #[test]
    fn ignored_directories_count_only_below_the_root() {
        let f = SourceFilter::new(
            [PathBuf::from("/home/me/deps/mylib/lib")],
            vec![".ex".into()],
        );
        assert!(f.is_source(Path::new("/home/me/deps/mylib/lib/a.ex")));
        assert!(!f.is_source(Path::new("/home/me/deps/mylib/lib/deps/a.ex")));
    }

    #[test]
    fn directories_within_roots_are_within() {
        let f = filter();
        assert!(f.within(Path::new("/p/lib")));
        assert!(f.within(Path::new("/p/lib/new_dir")));
        assert!(!f.within(Path::new("/p")));
        assert!(!f.within(Path::new("/p/lib/_build")));
    }

    #[test]
    fn missing_roots_are_watched_through_their_nearest_existing_ancestor() {
        let dirs: HashSet<PathBuf> = ["/", "/p", "/p/lib", "/q"].map(PathBuf::from).into();
        let roots = ["/p/lib", "/p/src", "/p/apps/a/lib", "/q/x/y"].map(PathBuf::from);
        let targets = watch_targets(&roots, &|p: &Path| dirs.contains(p));
        assert_eq!(
            targets,
            vec![
                (PathBuf::from("/p/lib"), Depth::Recursive),
                (PathBuf::from("/p"), Depth::Entries),
                (PathBuf::from("/q"), Depth::Entries),
            ]
        );
    }

    #[test]
    fn an_ancestor_inside_a_watched_root_needs_no_extra_watch() {
        let dirs: HashSet<PathBuf> = ["/p", "/p/lib"].map(PathBuf::from).into();
        let roots = ["/p/lib", "/p/lib/gen"].map(PathBuf::from);
        assert_eq!(
            watch_targets(&roots, &|p: &Path| dirs.contains(p)),
            vec![(PathBuf::from("/p/lib"), Depth::Recursive)]
        );
    }

    #[test]
    fn named_files_are_sources_wherever_they_are() {
        let f = filter().with_files([PathBuf::from("/p/priv/page.html.heex")]);
        assert!(f.is_source(Path::new("/p/priv/page.html.heex")));
        assert!(f.within(Path::new("/p/priv/page.html.heex")));
        assert!(!f.is_source(Path::new("/p/priv/other.txt")));
        assert!(!f.is_source(Path::new("/p/priv/sub/other.html.heex")));
        assert!(!f.within(Path::new("/p/priv")));
        // Files like it beside it may be ones a wildcard picks up.
        assert!(f.is_source(Path::new("/p/priv/other.html.heex")));
        assert!(!f.is_source(Path::new("/p/priv/.other.html.heex.swp")));
        // The roots' sources still count.
        assert!(f.is_source(Path::new("/p/lib/a.ex")));
    }

    #[test]
    fn named_files_are_watched_through_their_directory_unless_a_root_covers_it() {
        let dirs: HashSet<PathBuf> = ["/", "/p", "/p/lib", "/p/lib/t", "/p/priv"]
            .map(PathBuf::from)
            .into();
        let f = SourceFilter::new([PathBuf::from("/p/lib")], vec![".ex".into()]).with_files(
            [
                "/p/priv/a.txt",
                "/p/priv/b.txt",
                "/p/lib/t/page.heex",
                "/p/gone/c.txt",
            ]
            .map(PathBuf::from),
        );
        assert_eq!(
            f.watch_targets(|p| dirs.contains(p)),
            vec![
                (PathBuf::from("/p/lib"), Depth::Recursive),
                (PathBuf::from("/p"), Depth::Entries),
                (PathBuf::from("/p/priv"), Depth::Entries),
            ]
        );
        // Creating the missing directory recomputes the watches.
        assert!(f.opens_watch(Path::new("/p/gone")));
        assert!(!f.opens_watch(Path::new("/p/priv/a.txt")));
    }

    #[test]
    fn creating_a_root_or_its_ancestor_opens_it() {
        let roots = ["/p/lib", "/p/apps/a/lib"].map(PathBuf::from);
        assert!(opens_root(&roots, Path::new("/p/apps")));
        assert!(opens_root(&roots, Path::new("/p/apps/a/lib")));
        assert!(!opens_root(&roots, Path::new("/p/test")));
        assert!(!opens_root(&roots, Path::new("/p/lib/a.ex")));
    }
}
