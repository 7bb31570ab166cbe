//! What the compile manifests record, in one shape for every Elixir
//! version: the Elixir side (`DebugReload.Manifest`) reads Mix's own files
//! and normalizes them into these types, so nothing here knows a manifest
//! format.

use serde::{Deserialize, Serialize};

/// What a file is to the compilers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// An `.ex` file compiled by Mix's Elixir compiler.
    Elixir,
    /// An `.erl` file compiled by Mix's Erlang compiler.
    Erlang,
    /// An `.hrl` header included by Erlang sources.
    Header,
    /// An `.exs` file: evaluated, never compiled by `mix compile`.
    Script,
    /// An `@external_resource` of some Elixir source.
    Resource,
}

impl SourceKind {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Elixir => "elixir",
            SourceKind::Erlang => "erlang",
            SourceKind::Header => "header",
            SourceKind::Script => "script",
            SourceKind::Resource => "resource",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            SourceKind::Elixir,
            SourceKind::Erlang,
            SourceKind::Header,
            SourceKind::Script,
            SourceKind::Resource,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// One app of the project: the project itself, an umbrella child or a path
/// dependency. `deps` names the apps of the same graph it depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub name: String,
    /// Absolute.
    pub root: String,
    /// Absolute directories whose sources the app compiles.
    pub source_dirs: Vec<String>,
    pub deps: Vec<String>,
}

/// One source file and the references Mix recorded for it. References are
/// per file (Mix's lexical tracker works per file): every module the file
/// defines is considered to make all of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Absolute.
    pub path: String,
    pub app: String,
    pub kind: SourceKind,
    /// Modules defined by the file (atom text, e.g. `Elixir.MyApp.Web`).
    pub modules: Vec<String>,
    pub compile: Vec<String>,
    pub export: Vec<String>,
    pub runtime: Vec<String>,
    /// Absolute paths of its `@external_resource`s.
    pub external: Vec<String>,
    /// Absolute paths of the headers an Erlang source includes.
    pub includes: Vec<String>,
    /// Apps whose compile-time configuration the file reads.
    pub compile_env: Vec<String>,
}

/// What Mix recorded about a module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Module {
    pub name: String,
    pub app: String,
    /// The digest of its exports (functions, macros and struct), hex.
    pub export: Option<String>,
    /// The module defines `__mix_recompile__?/0`.
    pub recompile: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The project root, for display.
    pub root: String,
    pub apps: Vec<App>,
    pub sources: Vec<Source>,
    pub modules: Vec<Module>,
}

impl Source {
    /// A source with no references, for tests and generators.
    pub fn new(path: &str, app: &str, kind: SourceKind) -> Self {
        Source {
            path: path.to_string(),
            app: app.to_string(),
            kind,
            modules: Vec::new(),
            compile: Vec::new(),
            export: Vec::new(),
            runtime: Vec::new(),
            external: Vec::new(),
            includes: Vec::new(),
            compile_env: Vec::new(),
        }
    }
}

/// The display name of a module atom: `Elixir.MyApp.Web` is `MyApp.Web`,
/// an Erlang module `lists` is `:lists`.
pub fn display_module(atom: &str) -> String {
    match atom.strip_prefix("Elixir.") {
        Some(name) => name.to_string(),
        None => format!(":{atom}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_serialized_names() {
        for kind in ["elixir", "erlang", "header", "script", "resource"] {
            let parsed = SourceKind::from_name(kind).unwrap();
            assert_eq!(serde_json::to_value(parsed).unwrap(), kind);
        }
        assert_eq!(SourceKind::from_name("cobol"), None);
    }

    #[test]
    fn module_names_display_as_written_in_code() {
        assert_eq!(display_module("Elixir.MyApp.Web"), "MyApp.Web");
        assert_eq!(display_module("lists"), ":lists");
    }
}
