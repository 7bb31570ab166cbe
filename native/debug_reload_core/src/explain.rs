//! Why a file or module is in a plan: the chain of causes back to an edit,
//! as steps (for JSON and the DAP body) and as one line of text:
//!
//! `MyApp.Router` ← compile-time (`use MyApp.Web` at lib/router.ex:2) ← `MyApp.Web` changed (lib/web.ex)
//!
//! Manifests record which modules a file references, not where; the line
//! is found in the source text, best effort.

use crate::graph::{Edge, Id, ReloadGraph};
use crate::manifest::display_module;
use crate::plan::{Cause, ExportCause, Root, Run, SourceReader};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

/// Chains longer than this are cut (with a final "…" step).
const MAX_STEPS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Module,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Changed,
    Added,
    Deleted,
    /// Declared stale by the request (`detail` says why).
    Stale,
    RecompileCallback,
    ConfigChanged,
    /// Defined in the same file as the next step's module.
    SameFile,
    /// A file, recompiled for the module of the next step.
    Defines,
    CompileTime,
    Export,
    Runtime,
    ExportsChanged,
    /// Conditional: only if the exports of the subject change.
    ExportsMayChange,
    /// Recompiled, and no longer defined.
    Vanished,
    Includes,
    ExternalResource,
    /// An Erlang module: an Erlang source of its app recompiled (next step).
    ErlangRecompiled,
    /// Stale in a dependency app (`detail`).
    Dependency,
    /// The chain is longer than shown.
    Truncated,
}

impl Subject {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Module => "module",
            Subject::File => "file",
        }
    }
}

impl Relation {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Changed => "changed",
            Relation::Added => "added",
            Relation::Deleted => "deleted",
            Relation::Stale => "stale",
            Relation::RecompileCallback => "recompile_callback",
            Relation::ConfigChanged => "config_changed",
            Relation::SameFile => "same_file",
            Relation::Defines => "defines",
            Relation::CompileTime => "compile_time",
            Relation::Export => "export",
            Relation::Runtime => "runtime",
            Relation::ExportsChanged => "exports_changed",
            Relation::ExportsMayChange => "exports_may_change",
            Relation::Vanished => "vanished",
            Relation::Includes => "includes",
            Relation::ExternalResource => "external_resource",
            Relation::ErlangRecompiled => "erlang_recompiled",
            Relation::Dependency => "dependency",
            Relation::Truncated => "truncated",
        }
    }

    pub const ALL: [Relation; 19] = [
        Relation::Changed,
        Relation::Added,
        Relation::Deleted,
        Relation::Stale,
        Relation::RecompileCallback,
        Relation::ConfigChanged,
        Relation::SameFile,
        Relation::Defines,
        Relation::CompileTime,
        Relation::Export,
        Relation::Runtime,
        Relation::ExportsChanged,
        Relation::ExportsMayChange,
        Relation::Vanished,
        Relation::Includes,
        Relation::ExternalResource,
        Relation::ErlangRecompiled,
        Relation::Dependency,
        Relation::Truncated,
    ];
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// A module as written in code, or a path relative to the project root.
    pub subject: String,
    pub subject_kind: Subject,
    pub relation: Relation,
    /// The reference as written (`use MyApp.Web`), another module or a path.
    pub detail: Option<String>,
    /// The file the step is about, relative to the project root.
    pub path: Option<String>,
    pub line: Option<u32>,
}

/// Modules whose export changes a conditional chain depends on.
pub fn conditions(steps: &[Step]) -> Vec<String> {
    steps
        .iter()
        .filter(|s| s.relation == Relation::ExportsMayChange)
        .map(|s| s.subject.clone())
        .collect()
}

/// One line: each step, joined with ` ← `.
pub fn render(steps: &[Step]) -> String {
    let mut line = String::with_capacity(steps.len() * 64);
    for (i, step) in steps.iter().enumerate() {
        if i > 0 {
            line.push_str(" ← ");
        }
        render_step(step, &mut line);
    }
    line
}

fn render_step(step: &Step, out: &mut String) {
    use std::fmt::Write;
    let subject = |out: &mut String| match step.subject_kind {
        Subject::Module => {
            out.push('`');
            out.push_str(&step.subject);
            out.push('`');
        }
        Subject::File => out.push_str(&step.subject),
    };
    let file = step.path.as_deref().map(short_path).unwrap_or("");
    let detail = step.detail.as_deref().unwrap_or("");
    let module = step.subject_kind == Subject::Module;
    // A reference: "`S` ← compile-time (`use X` at lib/s.ex:2)".
    let reference = |out: &mut String, kind: &str| {
        subject(out);
        let _ = match (step.detail.as_deref(), step.line) {
            (Some(d), Some(line)) => write!(out, " ← {kind} (`{d}` at {file}:{line})"),
            (Some(d), None) => write!(out, " ← {kind} (`{d}` in {file})"),
            (None, _) => write!(out, " ← {kind} (in {file})"),
        };
    };
    let _ = match step.relation {
        Relation::CompileTime => return reference(out, "compile-time"),
        Relation::Export => return reference(out, "export"),
        Relation::Runtime => return reference(out, "runtime"),
        Relation::ExportsChanged => write!(out, "exports of `{}` changed", step.subject),
        Relation::ExportsMayChange => write!(out, "if the exports of `{}` change", step.subject),
        Relation::Truncated => write!(out, "…"),
        relation => {
            subject(out);
            match relation {
                Relation::Changed if module => write!(out, " changed ({file})"),
                Relation::Changed => write!(out, " changed"),
                Relation::Added if module => write!(out, " is new ({file})"),
                Relation::Added => write!(out, " is new"),
                Relation::Deleted if module => write!(out, " was deleted ({file})"),
                Relation::Deleted => write!(out, " was deleted"),
                Relation::Stale => write!(out, " is stale ({detail})"),
                Relation::RecompileCallback => write!(out, ": __mix_recompile__?/0 returned true"),
                Relation::ConfigChanged => {
                    write!(out, " reads compile-time configuration, which changed")
                }
                Relation::SameFile => write!(out, " ← same file ({file})"),
                Relation::Vanished => write!(out, " is no longer defined"),
                Relation::Includes => write!(out, " ← includes {detail}"),
                Relation::ExternalResource => write!(out, " ← external resource {detail}"),
                Relation::ErlangRecompiled => {
                    write!(out, " ← an Erlang source of its app was recompiled")
                }
                Relation::Dependency => write!(out, " ← stale in dependency {detail}"),
                // Defines: the file alone, the next step says why.
                _ => Ok(()),
            }
        }
    };
}

/// Step paths are already relative to the project root.
fn short_path(path: &str) -> &str {
    path.strip_prefix("./").unwrap_or(path)
}

pub(crate) fn relative(graph: &ReloadGraph, path: &str) -> String {
    let root = graph.root();
    match path.strip_prefix(root).and_then(|p| p.strip_prefix('/')) {
        Some(rel) if !root.is_empty() => rel.to_string(),
        _ => path.to_string(),
    }
}

pub(crate) fn added_step(graph: &ReloadGraph, path: &str) -> Step {
    Step {
        subject: relative(graph, path),
        subject_kind: Subject::File,
        relation: Relation::Added,
        detail: None,
        path: Some(relative(graph, path)),
        line: None,
    }
}

pub(crate) fn new_module_step(graph: &ReloadGraph, module: &str, path: Option<&str>) -> Step {
    Step {
        subject: display_module(module),
        subject_kind: Subject::Module,
        relation: Relation::Added,
        detail: None,
        path: path.map(|p| relative(graph, p)),
        line: None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Cursor {
    Recompiled(Id),
    StaleIn(Id, u32),
    Reached(Id),
    File(Id),
    Done,
}

pub(crate) struct Explainer<'a> {
    graph: &'a ReloadGraph,
    read: Option<SourceReader<'a>>,
    texts: FxHashMap<Id, Option<String>>,
    reasons: &'a [(String, String)],
}

impl<'a> Explainer<'a> {
    pub(crate) fn new(
        graph: &'a ReloadGraph,
        read: Option<SourceReader<'a>>,
        reasons: &'a [(String, String)],
    ) -> Self {
        Explainer {
            graph,
            read,
            texts: FxHashMap::default(),
            reasons,
        }
    }

    pub(crate) fn module_chain(&mut self, run: &Run, module: Id) -> Vec<Step> {
        self.walk(run, Cursor::Recompiled(module))
    }

    pub(crate) fn file_chain(&mut self, run: &Run, file: Id) -> Vec<Step> {
        self.walk(run, Cursor::File(file))
    }

    fn walk(&mut self, run: &Run, start: Cursor) -> Vec<Step> {
        let mut steps = Vec::new();
        let mut seen = FxHashSet::default();
        let mut cursor = start;
        while cursor != Cursor::Done {
            if steps.len() >= MAX_STEPS || !seen.insert(cursor) {
                steps.push(self.step(
                    String::new(),
                    Subject::Module,
                    Relation::Truncated,
                    None,
                    None,
                ));
                break;
            }
            cursor = match cursor {
                Cursor::Recompiled(m) => match run.recompiled.get(&m) {
                    Some(&(cause, pass)) => self.module_step(run, m, cause, pass, &mut steps),
                    None => match run.dependency_reach.get(&m) {
                        Some(_) => Cursor::Reached(m),
                        None => Cursor::Done,
                    },
                },
                Cursor::StaleIn(m, pass) => match run.stale.get(&(m, pass)) {
                    Some(&cause) => self.module_step(run, m, cause, pass, &mut steps),
                    None => Cursor::Recompiled(m),
                },
                Cursor::Reached(m) => match run.dependency_reach.get(&m) {
                    Some(&cause) => self.module_step(run, m, cause, 0, &mut steps),
                    None => Cursor::Recompiled(m),
                },
                Cursor::File(f) => self.file_step(run, f, &mut steps),
                Cursor::Done => Cursor::Done,
            };
        }
        steps
    }

    fn module_step(
        &mut self,
        run: &Run,
        module: Id,
        cause: Cause,
        pass: u32,
        steps: &mut Vec<Step>,
    ) -> Cursor {
        let name = display_module(&self.graph.module_node(module).name);
        let home = self.graph.defining_files(module).next();
        match cause {
            Cause::Root(root) => {
                let (relation, detail) = self.root(root);
                steps.push(self.step(name, Subject::Module, relation, detail, home));
                Cursor::Done
            }
            Cause::DefinedIn(file) => self.defined_in(run, module, name, file, steps),
            Cause::Reference { edge, target, file } => {
                let relation = match edge {
                    Edge::Compile => Relation::CompileTime,
                    Edge::Export => Relation::Export,
                    _ => Relation::Runtime,
                };
                let located = self.locate(file, target, edge);
                let (detail, line) = match located {
                    Some((line, snippet)) => (Some(snippet), Some(line)),
                    None => (None, None),
                };
                let mut step = self.step(name, Subject::Module, relation, detail, Some(file));
                step.line = line;
                steps.push(step);
                if edge == Edge::Export {
                    self.export_cause(run, target, steps)
                } else {
                    self.stale_target(run, target, pass)
                }
            }
            Cause::ErlangRecompiled(file) => {
                steps.push(self.step(
                    name,
                    Subject::Module,
                    Relation::ErlangRecompiled,
                    None,
                    home,
                ));
                Cursor::File(file)
            }
            Cause::FromDependency => {
                let app = self
                    .graph
                    .module_node(module)
                    .app
                    .map(|a| self.graph.app_name(a).to_string());
                steps.push(self.step(name, Subject::Module, Relation::Dependency, app, home));
                if run.recompiled.contains_key(&module) {
                    Cursor::Recompiled(module)
                } else {
                    Cursor::Reached(module)
                }
            }
            Cause::FileOf(_) | Cause::Includes(_) | Cause::ExternalChanged(_) => Cursor::Done,
        }
    }

    fn defined_in(
        &mut self,
        run: &Run,
        module: Id,
        name: String,
        file: Id,
        steps: &mut Vec<Step>,
    ) -> Cursor {
        match run.files.get(&file).copied() {
            Some(Cause::Root(root)) => {
                let (relation, detail) = self.root(root);
                steps.push(self.step(name, Subject::Module, relation, detail, Some(file)));
                Cursor::Done
            }
            Some(Cause::FileOf(other)) if other != module => {
                let other_name = display_module(&self.graph.module_node(other).name);
                steps.push(self.step(
                    name,
                    Subject::Module,
                    Relation::SameFile,
                    Some(other_name),
                    Some(file),
                ));
                Cursor::Recompiled(other)
            }
            Some(Cause::Includes(header)) => self.changed_input(
                name,
                Subject::Module,
                Relation::Includes,
                header,
                file,
                steps,
            ),
            Some(Cause::ExternalChanged(resource)) => self.changed_input(
                name,
                Subject::Module,
                Relation::ExternalResource,
                resource,
                file,
                steps,
            ),
            _ => Cursor::Done,
        }
    }

    fn file_step(&mut self, run: &Run, file: Id, steps: &mut Vec<Step>) -> Cursor {
        let subject = self.rel(file);
        match run.files.get(&file).copied() {
            Some(Cause::Root(root)) => {
                let (relation, detail) = self.root(root);
                steps.push(self.step(subject, Subject::File, relation, detail, Some(file)));
                Cursor::Done
            }
            Some(Cause::FileOf(module)) => {
                let detail = Some(display_module(&self.graph.module_node(module).name));
                steps.push(self.step(
                    subject,
                    Subject::File,
                    Relation::Defines,
                    detail,
                    Some(file),
                ));
                Cursor::Recompiled(module)
            }
            Some(Cause::Includes(header)) => self.changed_input(
                subject,
                Subject::File,
                Relation::Includes,
                header,
                file,
                steps,
            ),
            Some(Cause::ExternalChanged(resource)) => self.changed_input(
                subject,
                Subject::File,
                Relation::ExternalResource,
                resource,
                file,
                steps,
            ),
            _ => Cursor::Done,
        }
    }

    /// Why `target`'s exports count as changed, then on to why it recompiled.
    fn export_cause(&mut self, run: &Run, target: Id, steps: &mut Vec<Step>) -> Cursor {
        let name = display_module(&self.graph.module_node(target).name);
        let home = self.graph.defining_files(target).next();
        match run.export_stale.get(&target).copied() {
            Some(ExportCause::Deleted) => {
                steps.push(self.step(name, Subject::Module, Relation::Deleted, None, home));
                Cursor::Done
            }
            // A condition ends the chain: why the condition's module is
            // recompiled is its own entry in the plan.
            Some(ExportCause::Changed { assumed: true }) => {
                steps.push(self.step(
                    name,
                    Subject::Module,
                    Relation::ExportsMayChange,
                    None,
                    home,
                ));
                Cursor::Done
            }
            Some(ExportCause::Changed { assumed: false }) => {
                steps.push(self.step(name, Subject::Module, Relation::ExportsChanged, None, home));
                Cursor::Recompiled(target)
            }
            Some(ExportCause::Vanished) => {
                steps.push(self.step(name, Subject::Module, Relation::Vanished, None, home));
                Cursor::Recompiled(target)
            }
            Some(ExportCause::Stale(cause)) => match cause {
                Cause::ErlangRecompiled(file) => {
                    steps.push(self.step(
                        name,
                        Subject::Module,
                        Relation::ErlangRecompiled,
                        None,
                        home,
                    ));
                    Cursor::File(file)
                }
                _ => {
                    let app = self
                        .graph
                        .module_node(target)
                        .app
                        .map(|a| self.graph.app_name(a).to_string());
                    steps.push(self.step(name, Subject::Module, Relation::Dependency, app, home));
                    Cursor::Recompiled(target)
                }
            },
            None => Cursor::Recompiled(target),
        }
    }

    /// `target` was stale in `pass`: stale at runtime first (a recorded
    /// stale cause is always older than a recompilation in the same pass),
    /// or recompiled in it. Following the older cause keeps chains acyclic.
    fn stale_target(&self, run: &Run, target: Id, pass: u32) -> Cursor {
        if run.stale.contains_key(&(target, pass)) {
            return Cursor::StaleIn(target, pass);
        }
        match run.recompiled.get(&target) {
            Some(_) => Cursor::Recompiled(target),
            None => Cursor::Reached(target),
        }
    }

    fn root(&self, root: Root) -> (Relation, Option<String>) {
        match root {
            Root::Changed => (Relation::Changed, None),
            Root::Added => (Relation::Added, None),
            Root::Deleted => (Relation::Deleted, None),
            Root::Stale(i) => (
                Relation::Stale,
                self.reasons.get(i).map(|(_, why)| why.clone()),
            ),
            Root::RecompileCallback => (Relation::RecompileCallback, None),
            Root::ConfigChanged => (Relation::ConfigChanged, None),
        }
    }

    /// `file` (defining `subject`) recompiled because `input`, a header it
    /// includes or an external resource it declares, changed: that is
    /// where the chain ends.
    fn changed_input(
        &self,
        subject: String,
        kind: Subject,
        relation: Relation,
        input: Id,
        file: Id,
        steps: &mut Vec<Step>,
    ) -> Cursor {
        let detail = Some(self.rel(input));
        steps.push(self.step(subject, kind, relation, detail, Some(file)));
        steps.push(self.file_root(input, Relation::Changed));
        Cursor::Done
    }

    fn file_root(&self, file: Id, relation: Relation) -> Step {
        self.step(self.rel(file), Subject::File, relation, None, Some(file))
    }

    fn step(
        &self,
        subject: String,
        kind: Subject,
        relation: Relation,
        detail: Option<String>,
        file: Option<Id>,
    ) -> Step {
        Step {
            subject,
            subject_kind: kind,
            relation,
            detail,
            path: file.map(|f| self.rel(f)),
            line: None,
        }
    }

    fn rel(&self, file: Id) -> String {
        relative(self.graph, &self.graph.file_node(file).path)
    }

    fn locate(&mut self, file: Id, target: Id, edge: Edge) -> Option<(u32, String)> {
        let read = self.read?;
        let graph = self.graph;
        let text = self
            .texts
            .entry(file)
            .or_insert_with(|| read(&graph.file_node(file).path));
        locate_reference(text.as_deref()?, &graph.module_node(target).name, edge)
    }
}

/// The line (1-based) and trimmed text where `source` refers to the module
/// `atom`, preferring the forms that make a reference of kind `edge`.
pub fn locate_reference(source: &str, atom: &str, edge: Edge) -> Option<(u32, String)> {
    let full = display_module(atom);
    let short = atom
        .strip_prefix("Elixir.")
        .and_then(|name| name.rsplit('.').next())
        .filter(|short| *short != full && aliased(source, &full, short));
    let names: Vec<&str> = std::iter::once(full.as_str()).chain(short).collect();

    let prefixes: &[&str] = match edge {
        Edge::Compile => &["use ", "require ", "@", "import ", "defstruct"],
        Edge::Export => &["import ", "%", "require ", "alias "],
        _ => &[],
    };
    let mut best: Option<(usize, u32, &str)> = None;
    for (index, line) in source.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with('%') && full.starts_with(':') {
            continue;
        }
        for name in &names {
            let Some(at) = find_name(trimmed, name) else {
                continue;
            };
            let rank = rank(trimmed, at, name, prefixes, edge);
            if best.is_none_or(|(r, _, _)| rank < r) {
                best = Some((rank, index as u32 + 1, trimmed));
            }
        }
    }
    best.map(|(_, line, text)| (line, truncate(text, 80)))
}

/// Lower is better: a prefix form for the edge, then a call, then anything.
fn rank(line: &str, at: usize, name: &str, prefixes: &[&str], edge: Edge) -> usize {
    let before = &line[..at];
    if let Some(i) = prefixes.iter().position(|p| {
        before.trim_end() == p.trim_end()
            || (p.len() == 1 && before.ends_with(p))
            || before.starts_with(p)
    }) {
        return i;
    }
    let call = line[at + name.len()..].starts_with('.');
    match (edge, call) {
        (Edge::Runtime, true) => 0,
        (_, true) => prefixes.len(),
        _ => prefixes.len() + 1,
    }
}

/// Byte offset of `name` in `line` as a whole module name: not part of a
/// longer alias (`MyApp.WebX`, `Other.MyApp.Web`, `MyApp.Web.Nested`).
fn find_name(line: &str, name: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(pos) = line[from..].find(name) {
        let at = from + pos;
        let end = at + name.len();
        let before_ok = at == 0 || !is_name_char(bytes[at - 1]) && bytes[at - 1] != b'.';
        let after_ok = match bytes.get(end) {
            None => true,
            Some(b'.') => !bytes.get(end + 1).is_some_and(|c| c.is_ascii_uppercase()),
            Some(&c) => !is_name_char(c),
        };
        if before_ok && after_ok {
            return Some(at);
        }
        from = end;
    }
    None
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// True when the source aliases `full` so that `short` refers to it.
fn aliased(source: &str, full: &str, short: &str) -> bool {
    let parent = full.rsplit_once('.').map(|(p, _)| p).unwrap_or("");
    source.lines().map(str::trim).any(|line| {
        line.strip_prefix("alias ").is_some_and(|rest| {
            find_name(rest, full).is_some_and(|at| at == 0)
                || rest.starts_with(&format!("{parent}.{{")) && find_name(rest, short).is_some()
        })
    })
}

fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_serialized_names() {
        for relation in Relation::ALL {
            assert_eq!(serde_json::to_value(relation).unwrap(), relation.as_str());
        }
        for subject in [Subject::Module, Subject::File] {
            assert_eq!(serde_json::to_value(subject).unwrap(), subject.as_str());
        }
    }

    #[test]
    fn finds_the_use_line_for_a_compile_reference() {
        let source = "defmodule MyApp.Router do\n  use MyApp.Web, :router\n  def x, do: MyApp.Web.y()\nend\n";
        assert_eq!(
            locate_reference(source, "Elixir.MyApp.Web", Edge::Compile),
            Some((2, "use MyApp.Web, :router".to_string()))
        );
    }

    #[test]
    fn prefers_calls_for_runtime_and_structs_for_exports() {
        let source = "defmodule B do\n  alias MyApp.User\n  def new, do: %User{}\n  def get, do: User.fetch(1)\nend\n";
        assert_eq!(
            locate_reference(source, "Elixir.MyApp.User", Edge::Runtime),
            Some((4, "def get, do: User.fetch(1)".to_string()))
        );
        assert_eq!(
            locate_reference(source, "Elixir.MyApp.User", Edge::Export).map(|(l, _)| l),
            Some(3)
        );
    }

    #[test]
    fn does_not_confuse_longer_or_nested_names() {
        let source = "x = MyApp.WebX.y()\ny = MyApp.Web.Nested.z()\nz = Other.MyApp.Web.w()\n";
        assert_eq!(
            locate_reference(source, "Elixir.MyApp.Web", Edge::Runtime),
            None
        );
    }

    #[test]
    fn finds_erlang_modules() {
        let source = "defmodule G do\n  @v :e2.g()\nend\n";
        assert_eq!(
            locate_reference(source, "e2", Edge::Compile),
            Some((2, "@v :e2.g()".to_string()))
        );
    }

    #[test]
    fn renders_a_chain_as_one_line() {
        let steps = vec![
            Step {
                subject: "MyApp.Router".into(),
                subject_kind: Subject::Module,
                relation: Relation::CompileTime,
                detail: Some("use MyApp.Web".into()),
                path: Some("lib/router.ex".into()),
                line: Some(2),
            },
            Step {
                subject: "MyApp.Web".into(),
                subject_kind: Subject::Module,
                relation: Relation::Changed,
                detail: None,
                path: Some("lib/web.ex".into()),
                line: None,
            },
        ];
        assert_eq!(
            render(&steps),
            "`MyApp.Router` ← compile-time (`use MyApp.Web` at lib/router.ex:2) ← `MyApp.Web` changed (lib/web.ex)"
        );
    }
}
