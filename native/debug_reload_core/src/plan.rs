//! Which files Mix will recompile for a change, which modules will then
//! need reloading, and why.
//!
//! The rules are Mix's own (`Mix.Compilers.Elixir`, unchanged in substance
//! from Elixir 1.11 to 1.18), applied per app, dependencies first:
//!
//! 1. A module is recompiled when a file defining it changed, when its
//!    files reference a *stale* module at compile time, or when they
//!    reference a module with *stale exports* through an export reference
//!    (`import`, `require`, a struct). Its files then count as changed.
//! 2. A recompiled module is stale; so is a module whose files reference a
//!    stale module at runtime. Staleness never recompiles by itself, it only
//!    travels to compile-time referrers: compile-connected chains.
//! 3. Both are one least fixed point per pass. After a pass compiles, the
//!    modules whose exports changed (or that disappeared) are the stale
//!    exports of a new pass over the modules not yet recompiled, with a
//!    fresh stale set, until a pass recompiles nothing.
//! 4. An Erlang source recompiles when it or a header it includes changed;
//!    if any did, every Erlang module of the app is stale, exports included,
//!    for the Elixir compiler (Mix's "parents" rule).
//! 5. An app whose dependency (umbrella sibling, path dependency)
//!    recompiled sees the dependency's recompiled modules, and the modules
//!    reaching them there through export or runtime references, as stale;
//!    those with changed exports as stale exports.
//!
//! Which exports change is only known after compiling. Before, a plan has a
//! definite part (assuming no export changes) and a conditional part (what
//! export changes would add). After the compile, [`resolve`] answers with
//! the exports of the new manifest.

use crate::explain::{self, Step};
use crate::graph::{AppId, Edge, Id, ReloadGraph};
use crate::manifest::{display_module, SourceKind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};

/// What changed on disk.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PlanRequest {
    /// Paths that exist and whose content changed, or that are new.
    pub changed: Vec<String>,
    /// Paths that no longer exist.
    pub removed: Vec<String>,
    /// Modules to treat as stale from the start, with the reason (for
    /// example `Elixir.Mix.Project` when `mix.exs` changed).
    pub stale_modules: Vec<(String, String)>,
    /// Modules whose `__mix_recompile__?/0` returned true.
    pub recompile_modules: Vec<String>,
    /// The compile-time configuration changed.
    pub config_changed: bool,
}

/// What a compile produced, read from the new manifests and beams.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Outcome {
    /// Modules the compile (re)defined: name, export digest, defining file.
    pub modules: Vec<(String, Option<String>, Option<String>)>,
    /// Modules the new manifests no longer have.
    pub gone: Vec<String>,
    /// Modules whose beam changed, appeared, disappeared.
    pub beams_changed: Vec<String>,
    pub beams_added: Vec<String>,
    pub beams_removed: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Certainty {
    Definite,
    /// Only if the exports of the modules in `conditions` change.
    Conditional,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Will be recompiled (before the compile).
    Recompile,
    /// Recompiled and its beam changed: reload or re-interpret it.
    Reload,
    /// Recompiled to an identical beam: nothing to reload.
    Unchanged,
    /// A new module.
    New,
    /// Its source was deleted.
    Delete,
}

impl Certainty {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Certainty::Definite => "definite",
            Certainty::Conditional => "conditional",
        }
    }
}

impl Action {
    /// The serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Recompile => "recompile",
            Action::Reload => "reload",
            Action::Unchanged => "unchanged",
            Action::New => "new",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedFile {
    pub path: String,
    pub app: String,
    pub kind: SourceKind,
    pub certainty: Certainty,
    pub conditions: Vec<String>,
    pub why: Vec<Step>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedModule {
    /// The atom's text: `Elixir.MyApp.Web`.
    pub module: String,
    /// As written in code: `MyApp.Web`.
    pub name: String,
    pub path: Option<String>,
    pub app: Option<String>,
    pub action: Action,
    pub certainty: Certainty,
    pub conditions: Vec<String>,
    pub why: Vec<Step>,
    pub explanation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownPath {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// True once the exports of the compile answered the conditions.
    pub resolved: bool,
    pub files: Vec<PlannedFile>,
    pub modules: Vec<PlannedModule>,
    pub unknown: Vec<UnknownPath>,
    pub warnings: Vec<String>,
}

impl Plan {
    /// Recompiled file paths, definite or not, sorted.
    pub fn file_paths(&self) -> Vec<&str> {
        self.files.iter().map(|f| f.path.as_str()).collect()
    }
}

/// Reads source text for locating references; `None` leaves lines out.
pub type SourceReader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The plan before compiling: definite and conditional parts.
pub fn plan(graph: &ReloadGraph, request: &PlanRequest, read: Option<SourceReader>) -> Plan {
    let inputs = Inputs::new(graph, request);
    let upper = simulate(graph, &inputs, &Exports::AssumeChanged);
    // With one app, the lower run is the upper run's first pass: export
    // verdicts only matter from the second pass on. With several, a
    // dependency's verdicts change what its dependents' first pass sees.
    let lower = (graph.apps.len() > 1).then(|| simulate(graph, &inputs, &Exports::AssumeUnchanged));
    let lower = match &lower {
        Some(run) => Lower::Run(run),
        None => Lower::FirstPass(&upper),
    };
    let mut explainer = explain::Explainer::new(graph, read, &inputs.stale_reasons);

    let mut plan = Plan {
        resolved: false,
        unknown: inputs.unknown.clone(),
        warnings: inputs.warnings.clone(),
        ..Plan::default()
    };
    for (&file, _) in upper.files.iter() {
        if let Some(entry) = planned_file(graph, &inputs, file, &lower, &upper, &mut explainer) {
            plan.files.push(entry);
        }
    }
    plan.files.extend(inputs.added_files(graph));
    for (&module, _) in upper.recompiled.iter() {
        let definite = lower.has_module(module);
        let run = if definite { lower.run() } else { &upper };
        let why = explainer.module_chain(run, module);
        let action = if inputs.deleted_modules.contains(&module) {
            Action::Delete
        } else {
            Action::Recompile
        };
        plan.modules
            .push(planned_module(graph, module, action, definite, why));
    }
    sort(&mut plan);
    plan
}

/// Whether planning `request` surely stays far under a millisecond, so a
/// caller may run it without a dirty scheduler: a few changed Elixir
/// sources whose modules nothing uses at compile time (so no chain can
/// start from them), nor the modules importing them, with a few thousand
/// references to look at in all. Anything else may walk the whole graph.
pub fn is_small(graph: &ReloadGraph, request: &PlanRequest) -> bool {
    const EDGES: usize = 4_000;
    if request.changed.len() > 8
        || !request.removed.is_empty()
        || !request.stale_modules.is_empty()
        || !request.recompile_modules.is_empty()
        || request.config_changed
    {
        return false;
    }
    let mut budget = EDGES as u64;
    for path in &request.changed {
        let Some(file) = graph.file(path) else {
            continue; // new or unknown: no graph work
        };
        if graph.file_node(file).kind != SourceKind::Elixir {
            return false;
        }
        for module in graph.defined_modules(file) {
            budget = budget.saturating_sub(u64::from(graph.change_cost(module)));
            if budget == 0 {
                return false;
            }
        }
    }
    true
}

/// The plan after compiling, with the new exports and beams: every part is
/// definite, and each recompiled module says whether its beam changed.
pub fn resolve(
    graph: &ReloadGraph,
    request: &PlanRequest,
    outcome: &Outcome,
    read: Option<SourceReader>,
) -> Plan {
    let inputs = Inputs::new(graph, request);
    let known = KnownExports::new(graph, outcome);
    let run = simulate(graph, &inputs, &Exports::Known(&known));
    let mut explainer = explain::Explainer::new(graph, read, &inputs.stale_reasons);
    let beams_changed: FxHashSet<&str> = outcome.beams_changed.iter().map(String::as_str).collect();
    let beams_added: FxHashSet<&str> = outcome.beams_added.iter().map(String::as_str).collect();

    let mut plan = Plan {
        resolved: true,
        unknown: inputs.unknown.clone(),
        warnings: inputs.warnings.clone(),
        ..Plan::default()
    };
    for (&file, _) in run.files.iter() {
        if let Some(entry) = planned_file(
            graph,
            &inputs,
            file,
            &Lower::Run(&run),
            &run,
            &mut explainer,
        ) {
            plan.files.push(entry);
        }
    }
    plan.files.extend(inputs.added_files(graph));

    let mut planned: FxHashSet<&str> = FxHashSet::default();
    for (&module, _) in run.recompiled.iter() {
        let name = graph.module_node(module).name.as_str();
        planned.insert(name);
        let action = if inputs.deleted_modules.contains(&module) && !known.redefined(name) {
            Action::Delete
        } else if beams_changed.contains(name) {
            Action::Reload
        } else if beams_added.contains(name) {
            Action::New
        } else {
            Action::Unchanged
        };
        let why = explainer.module_chain(&run, module);
        plan.modules
            .push(planned_module(graph, module, action, true, why));
    }
    for (name, _, path) in &outcome.modules {
        if planned.contains(name.as_str())
            || !(beams_added.contains(name.as_str()) || beams_changed.contains(name.as_str()))
        {
            continue;
        }
        let known_before = graph
            .module(name)
            .and_then(|m| graph.module_node(m).app)
            .is_some();
        if known_before {
            plan.warnings.push(format!(
                "{} was recompiled although the plan did not expect it",
                display_module(name)
            ));
        }
        plan.modules
            .push(new_module(graph, name, path.as_deref(), known_before));
    }
    sort(&mut plan);
    plan
}

/// The definite part of a plan: a run assuming no export changes, or the
/// first pass of the upper run when that is the same thing.
enum Lower<'r> {
    Run(&'r Run),
    FirstPass(&'r Run),
}

impl Lower<'_> {
    fn run(&self) -> &Run {
        match self {
            Lower::Run(run) | Lower::FirstPass(run) => run,
        }
    }

    fn has_module(&self, module: Id) -> bool {
        match self {
            Lower::Run(run) => run.recompiled.contains_key(&module),
            Lower::FirstPass(run) => run
                .recompiled
                .get(&module)
                .is_some_and(|&(_, pass)| pass <= run.first_pass),
        }
    }

    fn has_file(&self, file: Id) -> bool {
        match self {
            Lower::Run(run) => run.files.contains_key(&file),
            Lower::FirstPass(run) => match run.files.get(&file) {
                Some(Cause::FileOf(module)) => self.has_module(*module),
                Some(_) => true,
                None => false,
            },
        }
    }
}

fn planned_file(
    graph: &ReloadGraph,
    inputs: &Inputs,
    file: Id,
    lower: &Lower,
    upper: &Run,
    explainer: &mut explain::Explainer,
) -> Option<PlannedFile> {
    let node = graph.file_node(file);
    let compiled = matches!(node.kind, SourceKind::Elixir | SourceKind::Erlang);
    if !compiled || inputs.removed_files.contains(&file) {
        return None;
    }
    let definite = lower.has_file(file);
    let why = explainer.file_chain(if definite { lower.run() } else { upper }, file);
    let conditions = if definite {
        Vec::new()
    } else {
        explain::conditions(&why)
    };
    Some(PlannedFile {
        path: node.path.clone(),
        app: graph.app_name(node.app).to_string(),
        kind: node.kind,
        certainty: certainty(definite),
        explanation: explain::render(&why),
        conditions,
        why,
    })
}

fn planned_module(
    graph: &ReloadGraph,
    module: Id,
    action: Action,
    definite: bool,
    why: Vec<Step>,
) -> PlannedModule {
    let node = graph.module_node(module);
    PlannedModule {
        module: node.name.clone(),
        name: display_module(&node.name),
        path: graph
            .defining_files(module)
            .map(|f| graph.file_node(f).path.clone())
            .min(),
        app: node.app.map(|a| graph.app_name(a).to_string()),
        action,
        certainty: certainty(definite),
        conditions: if definite {
            Vec::new()
        } else {
            explain::conditions(&why)
        },
        explanation: explain::render(&why),
        why,
    }
}

fn new_module(
    graph: &ReloadGraph,
    name: &str,
    path: Option<&str>,
    known_before: bool,
) -> PlannedModule {
    let app = path
        .and_then(|p| graph.app_of_path(p))
        .map(|a| graph.app_name(a).to_string());
    let why = vec![explain::new_module_step(graph, name, path)];
    PlannedModule {
        module: name.to_string(),
        name: display_module(name),
        path: path.map(str::to_string),
        app,
        action: if known_before {
            Action::Reload
        } else {
            Action::New
        },
        certainty: Certainty::Definite,
        conditions: Vec::new(),
        explanation: explain::render(&why),
        why,
    }
}

fn certainty(definite: bool) -> Certainty {
    if definite {
        Certainty::Definite
    } else {
        Certainty::Conditional
    }
}

fn sort(plan: &mut Plan) {
    plan.files.sort_by(|a, b| a.path.cmp(&b.path));
    plan.modules.sort_by(|a, b| a.module.cmp(&b.module));
}

// -- inputs ---------------------------------------------------------------

/// Why something is in the plan. Each cause points to the node that
/// caused it, so a chain can be walked back to an edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// The file itself changed, was added or deleted, or the module was
    /// declared stale by the request.
    Root(Root),
    /// A module: a file defining it is recompiled.
    DefinedIn(Id),
    /// A file: a module it defines is recompiled.
    FileOf(Id),
    /// A module: the file holding it references `target` with `edge`.
    Reference { edge: Edge, target: Id, file: Id },
    /// An Erlang file: it includes this changed header.
    Includes(Id),
    /// An Elixir file: this `@external_resource` changed.
    ExternalChanged(Id),
    /// An Erlang module: this Erlang file of its app recompiled.
    ErlangRecompiled(Id),
    /// A module of a dependency app, stale for its dependents: see its own
    /// recompilation or reach in the dependency.
    FromDependency,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Changed,
    Added,
    Deleted,
    /// Index into the request's `stale_modules`.
    Stale(usize),
    RecompileCallback,
    ConfigChanged,
}

/// Why a module's exports count as changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportCause {
    /// The module was defined in a deleted file.
    Deleted,
    /// Recompiled with different exports; `assumed` before the compile.
    Changed { assumed: bool },
    /// Gone from the new manifest although its file was recompiled.
    Vanished,
    /// Stale exports from the start (Erlang modules, dependencies).
    Stale(Cause),
}

pub(crate) struct Inputs {
    by_app: Vec<AppInputs>,
    pub(crate) removed_files: FxHashSet<Id>,
    pub(crate) deleted_modules: FxHashSet<Id>,
    added: Vec<(String, AppId, SourceKind)>,
    pub(crate) stale_reasons: Vec<(String, String)>,
    unknown: Vec<UnknownPath>,
    warnings: Vec<String>,
}

#[derive(Default)]
struct AppInputs {
    elixir: Vec<(Id, Cause)>,
    erlang: Vec<(Id, Cause)>,
    erlang_added: bool,
    stale: Vec<(Id, Cause)>,
}

impl Inputs {
    fn new(graph: &ReloadGraph, request: &PlanRequest) -> Self {
        let mut inputs = Inputs {
            by_app: (0..graph.apps.len())
                .map(|_| AppInputs::default())
                .collect(),
            removed_files: FxHashSet::default(),
            deleted_modules: FxHashSet::default(),
            added: Vec::new(),
            stale_reasons: request.stale_modules.clone(),
            unknown: Vec::new(),
            warnings: Vec::new(),
        };
        for path in &request.changed {
            inputs.changed_path(graph, path, false);
        }
        for path in &request.removed {
            inputs.changed_path(graph, path, true);
        }
        for (i, (name, _)) in request.stale_modules.iter().enumerate() {
            inputs.stale_module(graph, name, Cause::Root(Root::Stale(i)));
        }
        for name in &request.recompile_modules {
            inputs.recompile_module(graph, name);
        }
        if request.config_changed {
            inputs.config_changed(graph);
        }
        inputs
    }

    fn changed_path(&mut self, graph: &ReloadGraph, path: &str, removed: bool) {
        let root = if removed {
            Root::Deleted
        } else {
            Root::Changed
        };
        let Some(file) = graph.file(path) else {
            return self.new_path(graph, path, removed);
        };
        let node = graph.file_node(file);
        let app = node.app as usize;
        if removed {
            self.removed_files.insert(file);
        }
        match node.kind {
            SourceKind::Elixir => {
                if removed {
                    for module in graph.defined_modules(file) {
                        self.deleted_modules.insert(module);
                        self.by_app[app]
                            .stale
                            .push((module, Cause::Root(Root::Deleted)));
                    }
                }
                self.by_app[app].elixir.push((file, Cause::Root(root)));
            }
            SourceKind::Erlang => self.by_app[app].erlang.push((file, Cause::Root(root))),
            SourceKind::Header => {
                for includer in graph.sources(file, Edge::Include) {
                    let app = graph.file_node(includer).app as usize;
                    self.by_app[app]
                        .erlang
                        .push((includer, Cause::Includes(file)));
                }
            }
            SourceKind::Resource => {
                for source in graph.sources(file, Edge::External) {
                    let app = graph.file_node(source).app as usize;
                    self.by_app[app]
                        .elixir
                        .push((source, Cause::ExternalChanged(file)));
                }
            }
            SourceKind::Script => self.warnings.push(format!(
                "{} is a script: `mix compile` does not compile it; its modules are not reloaded",
                explain::relative(graph, path)
            )),
        }
    }

    fn new_path(&mut self, graph: &ReloadGraph, path: &str, removed: bool) {
        let kind = if path.ends_with(".ex") {
            Some(SourceKind::Elixir)
        } else if path.ends_with(".erl") {
            Some(SourceKind::Erlang)
        } else {
            None
        };
        match (removed, kind, graph.app_of_path(path)) {
            (true, _, _) => self.unknown.push(UnknownPath {
                path: path.to_string(),
                reason: "not in the compile manifests, so nothing was compiled from it".to_string(),
            }),
            (false, Some(kind), Some(app)) => {
                if kind == SourceKind::Erlang {
                    self.by_app[app as usize].erlang_added = true;
                }
                self.added.push((path.to_string(), app, kind));
            }
            (false, _, _) => self.unknown.push(UnknownPath {
                path: path.to_string(),
                reason: "not a source file of any app of the project (.ex or .erl under its source directories)"
                    .to_string(),
            }),
        }
    }

    fn stale_module(&mut self, graph: &ReloadGraph, name: &str, cause: Cause) {
        let Some(module) = graph.module(name) else {
            return;
        };
        match graph.module_node(module).app {
            Some(app) => self.by_app[app as usize].stale.push((module, cause)),
            // Not a project module: stale for every app.
            None => {
                for app in self.by_app.iter_mut() {
                    app.stale.push((module, cause));
                }
            }
        }
    }

    /// Mix recompiles the files of a module whose `__mix_recompile__?/0`
    /// returned true; the module is not stale before that.
    fn recompile_module(&mut self, graph: &ReloadGraph, name: &str) {
        let Some(module) = graph.module(name) else {
            return;
        };
        for file in graph.defining_files(module) {
            let app = graph.file_node(file).app as usize;
            self.by_app[app]
                .elixir
                .push((file, Cause::Root(Root::RecompileCallback)));
        }
    }

    fn config_changed(&mut self, graph: &ReloadGraph) {
        for &file in graph.files.values() {
            let node = graph.file_node(file);
            if !node.compile_env.is_empty() {
                self.by_app[node.app as usize]
                    .elixir
                    .push((file, Cause::Root(Root::ConfigChanged)));
            }
        }
        self.warnings.push(
            "the configuration changed: planned as Mix does for files that read compile-time configuration; \
             runtime configuration needs a restart"
                .to_string(),
        );
    }

    fn added_files(&self, graph: &ReloadGraph) -> Vec<PlannedFile> {
        self.added
            .iter()
            .map(|(path, app, kind)| {
                let why = vec![explain::added_step(graph, path)];
                PlannedFile {
                    path: path.clone(),
                    app: graph.app_name(*app).to_string(),
                    kind: *kind,
                    certainty: Certainty::Definite,
                    conditions: Vec::new(),
                    explanation: explain::render(&why),
                    why,
                }
            })
            .collect()
    }
}

// -- simulation -----------------------------------------------------------

pub(crate) enum Exports<'a> {
    AssumeUnchanged,
    AssumeChanged,
    Known(&'a KnownExports<'a>),
}

pub(crate) struct KnownExports<'a> {
    graph: &'a ReloadGraph,
    exports: HashMap<&'a str, Option<&'a str>>,
    gone: FxHashSet<&'a str>,
}

impl<'a> KnownExports<'a> {
    fn new(graph: &'a ReloadGraph, outcome: &'a Outcome) -> Self {
        KnownExports {
            graph,
            exports: outcome
                .modules
                .iter()
                .map(|(name, export, _)| (name.as_str(), export.as_deref()))
                .collect(),
            gone: outcome.gone.iter().map(String::as_str).collect(),
        }
    }

    fn redefined(&self, name: &str) -> bool {
        self.exports.contains_key(name)
    }

    fn verdict(&self, module: Id) -> Option<ExportCause> {
        let node = self.graph.module_node(module);
        if self.gone.contains(node.name.as_str()) {
            return Some(ExportCause::Vanished);
        }
        match self.exports.get(node.name.as_str()) {
            Some(new) if *new != node.export.as_deref() => {
                Some(ExportCause::Changed { assumed: false })
            }
            _ => None,
        }
    }
}

impl Exports<'_> {
    /// Whether the exports of `module` changed (`export_only`: it was
    /// recompiled for export references only).
    ///
    /// The upper bound assumes they may change for every module recompiled
    /// because of an edit or a compile-time dependency. A module recompiled
    /// only for an export dependency (an `import`, a struct) compiles the
    /// same definitions, so its exports are assumed to stay: otherwise a
    /// single edit would make most of a project conditionally stale.
    fn verdict(&self, module: Id, export_only: bool) -> Option<ExportCause> {
        match self {
            Exports::AssumeUnchanged => None,
            Exports::AssumeChanged if export_only => None,
            Exports::AssumeChanged => Some(ExportCause::Changed { assumed: true }),
            Exports::Known(known) => known.verdict(module),
        }
    }
}

/// Everything one simulation decided, with causes.
#[derive(Default)]
pub(crate) struct Run {
    /// Recompiled modules, with the pass that recompiled them.
    pub(crate) recompiled: FxHashMap<Id, (Cause, u32)>,
    /// Recompiled files (and deleted ones).
    pub(crate) files: FxHashMap<Id, Cause>,
    /// Runtime staleness, per pass (only where it mattered).
    pub(crate) stale: FxHashMap<(Id, u32), Cause>,
    pub(crate) export_stale: FxHashMap<Id, ExportCause>,
    /// Recompiled modules whose every reason, in their pass, was an export
    /// reference (see `Exports::verdict`).
    pub(crate) export_only: FxHashSet<Id>,
    /// Modules of a dependency reached through export or runtime references.
    pub(crate) dependency_reach: FxHashMap<Id, Cause>,
    /// The number of the first Elixir pass (0: the Erlang phase).
    pub(crate) first_pass: u32,
}

enum Event {
    File(Id, Cause),
    Recompile(Id, Cause),
    Stale(Id, Cause),
}

struct Engine<'g> {
    graph: &'g ReloadGraph,
    run: Run,
    app: AppId,
    pass: u32,
    pass_stale: FxHashSet<Id>,
    pass_recompiled: Vec<Id>,
    single_app: bool,
    /// First in, first out: causes are recorded by the first event to
    /// reach a node, so chains are shortest paths back to an edit.
    events: VecDeque<Event>,
}

fn simulate(graph: &ReloadGraph, inputs: &Inputs, exports: &Exports) -> Run {
    let mut engine = Engine {
        graph,
        run: Run::default(),
        app: 0,
        pass: 0,
        pass_stale: FxHashSet::default(),
        pass_recompiled: Vec::new(),
        single_app: graph.apps.len() <= 1,
        events: VecDeque::new(),
    };
    // Stale modules and exports each app inherits from its dependencies.
    let mut from_deps: Vec<Option<(Vec<Id>, Vec<Id>)>> = vec![None; graph.apps.len()];

    for app in graph.app_order() {
        let input = &inputs.by_app[app as usize];
        let mut stale = input.stale.clone();
        let mut export_stale: Vec<Id> = Vec::new();
        for &(module, cause) in &input.stale {
            if inputs.deleted_modules.contains(&module) {
                engine
                    .run
                    .export_stale
                    .entry(module)
                    .or_insert(ExportCause::Deleted);
                export_stale.push(module);
            } else {
                // Mix recompiles the project modules it was told are stale.
                for file in graph.defining_files(module) {
                    engine.events.push_back(Event::File(file, cause));
                }
            }
        }

        let erlang = engine.erlang_phase(app, input);
        for module in erlang.iter().copied() {
            let cause = engine
                .run
                .stale
                .get(&(module, 0))
                .copied()
                .unwrap_or(Cause::FromDependency);
            stale.push((module, cause));
            engine
                .run
                .export_stale
                .entry(module)
                .or_insert(ExportCause::Stale(cause));
            export_stale.push(module);
        }
        for dep in graph.transitive_deps(app) {
            if let Some((modules, exports)) = &from_deps[dep as usize] {
                stale.extend(modules.iter().map(|&m| (m, Cause::FromDependency)));
                export_stale.extend(exports.iter().copied());
            }
        }

        let mut recompiled = engine.pass(app, &input.elixir, &stale, &export_stale);
        if engine.run.first_pass == 0 {
            engine.run.first_pass = engine.pass;
        }
        let mut all_recompiled = recompiled.clone();
        loop {
            let pending: Vec<Id> = recompiled
                .iter()
                .copied()
                .filter(|m| !inputs.deleted_modules.contains(m))
                .filter_map(|m| {
                    let export_only = engine.run.export_only.contains(&m);
                    exports.verdict(m, export_only).map(|export| (m, export))
                })
                .map(|(m, cause)| {
                    engine.run.export_stale.entry(m).or_insert(cause);
                    m
                })
                .collect();
            if pending.is_empty() {
                break;
            }
            recompiled = engine.pass(app, &[], &[], &pending);
            all_recompiled.extend(recompiled.iter().copied());
        }

        if graph.apps.iter().any(|a| a.deps.contains(&app)) {
            all_recompiled.extend(
                erlang
                    .iter()
                    .filter(|m| engine.run.recompiled.contains_key(m)),
            );
            from_deps[app as usize] = Some(engine.dependency_stale(app, all_recompiled, exports));
        }
    }
    engine.run
}

impl Engine<'_> {
    /// Recompiles the app's Erlang sources that changed or include a
    /// changed header; returns the app's Erlang modules if any did.
    fn erlang_phase(&mut self, app: AppId, input: &AppInputs) -> Vec<Id> {
        let mut trigger = None;
        for &(file, cause) in &input.erlang {
            if self.run.files.insert(file, cause).is_none() {
                trigger.get_or_insert(file);
                for module in self.graph.defined_modules(file) {
                    self.run
                        .recompiled
                        .insert(module, (Cause::DefinedIn(file), 0));
                }
            }
        }
        if trigger.is_none() && !input.erlang_added {
            return Vec::new();
        }
        let modules = self.graph.erlang_modules(app);
        let cause = match trigger {
            Some(file) => Cause::ErlangRecompiled(file),
            None => Cause::Root(Root::Added),
        };
        for &module in &modules {
            self.run.stale.insert((module, 0), cause);
        }
        modules
    }

    /// One pass of Mix's fixed point; returns the modules it recompiled.
    fn pass(
        &mut self,
        app: AppId,
        files: &[(Id, Cause)],
        stale: &[(Id, Cause)],
        export_stale: &[Id],
    ) -> Vec<Id> {
        self.app = app;
        self.pass += 1;
        self.pass_stale.clear();
        self.pass_recompiled.clear();

        self.events
            .extend(files.iter().map(|&(f, c)| Event::File(f, c)));
        for &(module, cause) in stale {
            self.run.stale.entry((module, self.pass)).or_insert(cause);
            self.mark_stale(module);
        }
        for &target in export_stale {
            for (file, edge) in self.graph.referrers(target) {
                if edge == Edge::Export && self.in_app(file) {
                    let cause = Cause::Reference { edge, target, file };
                    for module in self.graph.defined_modules(file) {
                        self.events.push_back(Event::Recompile(module, cause));
                    }
                }
            }
        }
        self.drain();
        std::mem::take(&mut self.pass_recompiled)
    }

    fn drain(&mut self) {
        while let Some(event) = self.events.pop_front() {
            match event {
                Event::File(file, cause) => {
                    if !self.in_app(file) || self.run.files.contains_key(&file) {
                        continue;
                    }
                    self.run.files.insert(file, cause);
                    for module in self.graph.defined_modules(file) {
                        self.events
                            .push_back(Event::Recompile(module, Cause::DefinedIn(file)));
                    }
                }
                Event::Recompile(module, cause) => {
                    let export_only = self.export_only_cause(cause);
                    if let Some(&(_, pass)) = self.run.recompiled.get(&module) {
                        if pass == self.pass && export_only == Some(false) {
                            self.run.export_only.remove(&module);
                        }
                        continue;
                    }
                    if export_only == Some(true) {
                        self.run.export_only.insert(module);
                    }
                    self.run.recompiled.insert(module, (cause, self.pass));
                    self.pass_recompiled.push(module);
                    for file in self.graph.defining_files(module) {
                        self.events
                            .push_back(Event::File(file, Cause::FileOf(module)));
                    }
                    self.mark_stale(module);
                }
                Event::Stale(module, cause) => {
                    // Modules recompiled by an earlier pass are out of Mix's
                    // pending list: nothing marks them stale again.
                    if self.run.recompiled.contains_key(&module)
                        || self.pass_stale.contains(&module)
                    {
                        continue;
                    }
                    self.run.stale.entry((module, self.pass)).or_insert(cause);
                    self.mark_stale(module);
                }
            }
        }
    }

    fn mark_stale(&mut self, module: Id) {
        if !self.pass_stale.insert(module) {
            return;
        }
        for (file, edge) in self.graph.referrers(module) {
            if !matches!(edge, Edge::Compile | Edge::Runtime) || !self.in_app(file) {
                continue;
            }
            let cause = Cause::Reference {
                edge,
                target: module,
                file,
            };
            for referrer in self.graph.defined_modules(file) {
                if edge == Edge::Compile {
                    self.events.push_back(Event::Recompile(referrer, cause));
                } else if self.graph.is_relevant(referrer) && !self.pass_stale.contains(&referrer) {
                    self.events.push_back(Event::Stale(referrer, cause));
                }
            }
        }
    }

    /// Whether `cause` recompiles for an export reference only (`Some(true)`),
    /// for something else (`Some(false)`), or says nothing either way: the
    /// file being recompiled for one of its own modules.
    fn export_only_cause(&self, cause: Cause) -> Option<bool> {
        match cause {
            Cause::Reference {
                edge: Edge::Export, ..
            } => Some(true),
            Cause::DefinedIn(file) => match self.run.files.get(&file) {
                Some(Cause::FileOf(_)) => None,
                _ => Some(false),
            },
            _ => Some(false),
        }
    }

    fn in_app(&self, file: Id) -> bool {
        self.single_app || self.graph.file_node(file).app == self.app
    }

    /// What dependents of `app` see: Mix's `stale_local_deps`. The
    /// recompiled modules, extended through export and runtime references
    /// inside the app, are stale; those whose exports changed (or that
    /// have no Elixir exports at all) are stale exports.
    fn dependency_stale(
        &mut self,
        app: AppId,
        recompiled: Vec<Id>,
        exports: &Exports,
    ) -> (Vec<Id>, Vec<Id>) {
        let mut seen: FxHashSet<Id> = recompiled.iter().copied().collect();
        let mut stack = recompiled.clone();
        let mut modules = recompiled;
        while let Some(target) = stack.pop() {
            for (file, edge) in self.graph.referrers(target) {
                if !matches!(edge, Edge::Export | Edge::Runtime)
                    || self.graph.file_node(file).app != app
                {
                    continue;
                }
                for module in self.graph.defined_modules(file) {
                    if seen.insert(module) {
                        self.run
                            .dependency_reach
                            .insert(module, Cause::Reference { edge, target, file });
                        modules.push(module);
                        stack.push(module);
                    }
                }
            }
        }
        let stale_exports = modules
            .iter()
            .copied()
            .filter(|&m| {
                let erlang = self
                    .graph
                    .defining_files(m)
                    .any(|f| self.graph.file_node(f).kind == SourceKind::Erlang);
                let verdict = self
                    .run
                    .recompiled
                    .contains_key(&m)
                    .then(|| exports.verdict(m, self.run.export_only.contains(&m)))
                    .flatten();
                let changed = verdict.is_some();
                if let Some(export) = verdict {
                    self.run.export_stale.entry(m).or_insert(export);
                } else if erlang {
                    self.run
                        .export_stale
                        .entry(m)
                        .or_insert(ExportCause::Stale(Cause::FromDependency));
                }
                erlang || changed
            })
            .collect();
        (modules, stale_exports)
    }
}
