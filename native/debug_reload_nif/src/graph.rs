//! The reload-plan graph as a NIF resource: built once from the normalized
//! manifests (`DebugReload.Manifest`), updated after each compile, asked
//! for plans. Everything that walks the graph runs on a dirty scheduler.

use debug_reload_core::explain::Step;
use debug_reload_core::graph::{Delta, ReloadGraph, Stats};
use debug_reload_core::manifest::{App, Manifest, Module, Source, SourceKind};
use debug_reload_core::plan::{self, Outcome, Plan, PlanRequest, PlannedFile, PlannedModule};
use debug_reload_core::synthetic;
use debug_reload_io::text::read_text;
use rustler::types::atom::Atom;
use rustler::{
    Binary, Decoder, Encoder, Env, Error, NifMap, NifResult, OwnedBinary, ResourceArc, Term,
};
use std::sync::Mutex;

pub struct PlanGraph {
    graph: Mutex<ReloadGraph>,
}

#[rustler::resource_impl]
impl rustler::Resource for PlanGraph {}

impl PlanGraph {
    fn with<T>(&self, f: impl FnOnce(&mut ReloadGraph) -> T) -> NifResult<T> {
        // A panic during an update may have left the graph half-changed.
        let mut graph = self.graph.lock().map_err(|_| {
            Error::RaiseTerm(Box::new(
                "the plan graph is inconsistent after a failed update; rebuild it",
            ))
        })?;
        Ok(f(&mut graph))
    }
}

/// A module or app name: an atom from Elixir, its text in Rust.
struct Name(String);

impl<'a> Decoder<'a> for Name {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        if term.is_atom() {
            term.atom_to_string().map(Name)
        } else {
            term.decode::<String>().map(Name)
        }
    }
}

impl Encoder for Name {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match Atom::from_str(env, &self.0) {
            Ok(atom) => atom.encode(env),
            Err(_) => self.0.encode(env),
        }
    }
}

fn names(names: Vec<Name>) -> Vec<String> {
    names.into_iter().map(|n| n.0).collect()
}

fn to_names(names: &[String]) -> Vec<Name> {
    names.iter().cloned().map(Name).collect()
}

mod enum_atoms {
    rustler::atoms! {
        module, file,
        changed, added, deleted, stale, recompile_callback, config_changed, same_file, defines,
        compile_time, export, runtime, exports_changed, exports_may_change, vanished, includes,
        external_resource, erlang_recompiled, dependency, truncated,
        definite, conditional,
        recompile, reload, unchanged, new, delete,
        elixir, erlang, header, script, resource,
    }
}

/// An enum value as an atom: `:compile_time`, `:definite`... Atoms made
/// once: a plan has several per step.
struct EnumAtom(&'static str);

impl EnumAtom {
    fn atom(&self) -> Option<Atom> {
        use enum_atoms::*;
        Some(match self.0 {
            "module" => module(),
            "file" => file(),
            "changed" => changed(),
            "added" => added(),
            "deleted" => deleted(),
            "stale" => stale(),
            "recompile_callback" => recompile_callback(),
            "config_changed" => config_changed(),
            "same_file" => same_file(),
            "defines" => defines(),
            "compile_time" => compile_time(),
            "export" => export(),
            "runtime" => runtime(),
            "exports_changed" => exports_changed(),
            "exports_may_change" => exports_may_change(),
            "vanished" => vanished(),
            "includes" => includes(),
            "external_resource" => external_resource(),
            "erlang_recompiled" => erlang_recompiled(),
            "dependency" => dependency(),
            "truncated" => truncated(),
            "definite" => definite(),
            "conditional" => conditional(),
            "recompile" => recompile(),
            "reload" => reload(),
            "unchanged" => unchanged(),
            "new" => new(),
            "delete" => delete(),
            "elixir" => elixir(),
            "erlang" => erlang(),
            "header" => header(),
            "script" => script(),
            "resource" => resource(),
            _ => return None,
        })
    }
}

impl Encoder for EnumAtom {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        match self.atom() {
            Some(atom) => atom.encode(env),
            None => {
                Atom::from_str(env, self.0).map_or_else(|_| self.0.encode(env), |a| a.encode(env))
            }
        }
    }
}

/// Plans only go out; `NifMap` wants both directions.
impl<'a> Decoder<'a> for EnumAtom {
    fn decode(_term: Term<'a>) -> NifResult<Self> {
        Err(Error::BadArg)
    }
}

fn source_kind(kind: &Name) -> NifResult<SourceKind> {
    SourceKind::from_name(&kind.0).ok_or(Error::BadArg)
}

fn export_hex(export: Option<Binary>) -> Option<String> {
    export.map(|bin| bin.as_slice().iter().map(|b| format!("{b:02x}")).collect())
}

// -- input terms ------------------------------------------------------------

#[derive(NifMap)]
struct AppTerm {
    name: Name,
    root: String,
    source_dirs: Vec<String>,
    deps: Vec<Name>,
}

#[derive(NifMap)]
struct SourceTerm {
    path: String,
    app: Name,
    kind: Name,
    modules: Vec<Name>,
    compile: Vec<Name>,
    export: Vec<Name>,
    runtime: Vec<Name>,
    external: Vec<String>,
    includes: Vec<String>,
    compile_env: Vec<Name>,
}

#[derive(NifMap)]
struct ModuleTerm<'a> {
    name: Name,
    app: Name,
    export: Option<Binary<'a>>,
    recompile: bool,
}

#[derive(NifMap)]
struct ManifestTerm<'a> {
    root: String,
    apps: Vec<AppTerm>,
    sources: Vec<SourceTerm>,
    modules: Vec<ModuleTerm<'a>>,
}

#[derive(NifMap)]
struct DeltaTerm<'a> {
    sources: Vec<SourceTerm>,
    modules: Vec<ModuleTerm<'a>>,
    removed_sources: Vec<String>,
    removed_modules: Vec<Name>,
}

#[derive(NifMap)]
struct RequestTerm {
    changed: Vec<String>,
    removed: Vec<String>,
    stale_modules: Vec<(Name, String)>,
    recompile_modules: Vec<Name>,
    config_changed: bool,
    /// Read sources to find the line of each reference.
    locate: bool,
}

#[derive(NifMap)]
struct OutcomeTerm<'a> {
    /// `{module, export digest or nil, defining file or nil}`
    modules: Vec<(Name, Option<Binary<'a>>, Option<String>)>,
    gone: Vec<Name>,
    beams_changed: Vec<Name>,
    beams_added: Vec<Name>,
    beams_removed: Vec<Name>,
}

impl SourceTerm {
    fn into_source(self) -> NifResult<Source> {
        Ok(Source {
            path: self.path,
            app: self.app.0,
            kind: source_kind(&self.kind)?,
            modules: names(self.modules),
            compile: names(self.compile),
            export: names(self.export),
            runtime: names(self.runtime),
            external: self.external,
            includes: self.includes,
            compile_env: names(self.compile_env),
        })
    }
}

impl ModuleTerm<'_> {
    fn into_module(self) -> Module {
        Module {
            name: self.name.0,
            app: self.app.0,
            export: export_hex(self.export),
            recompile: self.recompile,
        }
    }
}

fn sources(terms: Vec<SourceTerm>) -> NifResult<Vec<Source>> {
    terms.into_iter().map(SourceTerm::into_source).collect()
}

impl ManifestTerm<'_> {
    fn into_manifest(self) -> NifResult<Manifest> {
        Ok(Manifest {
            root: self.root,
            apps: self
                .apps
                .into_iter()
                .map(|a| App {
                    name: a.name.0,
                    root: a.root,
                    source_dirs: a.source_dirs,
                    deps: names(a.deps),
                })
                .collect(),
            sources: sources(self.sources)?,
            modules: self
                .modules
                .into_iter()
                .map(ModuleTerm::into_module)
                .collect(),
        })
    }
}

impl RequestTerm {
    fn into_request(self) -> (PlanRequest, bool) {
        let request = PlanRequest {
            changed: self.changed,
            removed: self.removed,
            stale_modules: self
                .stale_modules
                .into_iter()
                .map(|(m, why)| (m.0, why))
                .collect(),
            recompile_modules: names(self.recompile_modules),
            config_changed: self.config_changed,
        };
        (request, self.locate)
    }
}

impl OutcomeTerm<'_> {
    fn into_outcome(self) -> Outcome {
        Outcome {
            modules: self
                .modules
                .into_iter()
                .map(|(name, export, path)| (name.0, export_hex(export), path))
                .collect(),
            gone: names(self.gone),
            beams_changed: names(self.beams_changed),
            beams_added: names(self.beams_added),
            beams_removed: names(self.beams_removed),
        }
    }
}

// -- output terms -----------------------------------------------------------

#[derive(NifMap)]
struct StatsTerm {
    apps: usize,
    files: usize,
    modules: usize,
    edges: usize,
}

impl From<Stats> for StatsTerm {
    fn from(s: Stats) -> Self {
        StatsTerm {
            apps: s.apps,
            files: s.files,
            modules: s.modules,
            edges: s.edges,
        }
    }
}

#[derive(NifMap)]
struct StepTerm {
    subject: String,
    subject_kind: EnumAtom,
    relation: EnumAtom,
    detail: Option<String>,
    path: Option<String>,
    line: Option<u32>,
}

#[derive(NifMap)]
struct PlannedFileTerm {
    path: String,
    app: Name,
    kind: EnumAtom,
    certainty: EnumAtom,
    conditions: Vec<String>,
    why: Vec<StepTerm>,
    explanation: String,
}

#[derive(NifMap)]
struct PlannedModuleTerm {
    module: Name,
    name: String,
    path: Option<String>,
    app: Option<Name>,
    action: EnumAtom,
    certainty: EnumAtom,
    conditions: Vec<String>,
    why: Vec<StepTerm>,
    explanation: String,
}

#[derive(NifMap)]
struct UnknownTerm {
    path: String,
    reason: String,
}

#[derive(NifMap)]
struct PlanTerm {
    resolved: bool,
    files: Vec<PlannedFileTerm>,
    modules: Vec<PlannedModuleTerm>,
    unknown: Vec<UnknownTerm>,
    warnings: Vec<String>,
}

fn steps(why: Vec<Step>) -> Vec<StepTerm> {
    why.into_iter()
        .map(|s| StepTerm {
            subject_kind: EnumAtom(s.subject_kind.as_str()),
            relation: EnumAtom(s.relation.as_str()),
            subject: s.subject,
            detail: s.detail,
            path: s.path,
            line: s.line,
        })
        .collect()
}

impl From<Plan> for PlanTerm {
    fn from(plan: Plan) -> Self {
        PlanTerm {
            resolved: plan.resolved,
            files: plan.files.into_iter().map(file_term).collect(),
            modules: plan.modules.into_iter().map(module_term).collect(),
            unknown: plan
                .unknown
                .into_iter()
                .map(|u| UnknownTerm {
                    path: u.path,
                    reason: u.reason,
                })
                .collect(),
            warnings: plan.warnings,
        }
    }
}

fn file_term(f: PlannedFile) -> PlannedFileTerm {
    PlannedFileTerm {
        kind: EnumAtom(f.kind.as_str()),
        certainty: EnumAtom(f.certainty.as_str()),
        path: f.path,
        app: Name(f.app),
        conditions: f.conditions,
        why: steps(f.why),
        explanation: f.explanation,
    }
}

fn module_term(m: PlannedModule) -> PlannedModuleTerm {
    PlannedModuleTerm {
        action: EnumAtom(m.action.as_str()),
        certainty: EnumAtom(m.certainty.as_str()),
        module: Name(m.module),
        name: m.name,
        path: m.path,
        app: m.app.map(Name),
        conditions: m.conditions,
        why: steps(m.why),
        explanation: m.explanation,
    }
}

// -- NIFs -------------------------------------------------------------------

/// Builds the graph from a normalized manifest.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_build(manifest: ManifestTerm) -> NifResult<ResourceArc<PlanGraph>> {
    let graph = ReloadGraph::build(&manifest.into_manifest()?);
    Ok(ResourceArc::new(PlanGraph {
        graph: Mutex::new(graph),
    }))
}

/// Replaces the given sources and module records, forgets removed ones.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_update(graph: ResourceArc<PlanGraph>, delta: DeltaTerm) -> NifResult<StatsTerm> {
    let delta = Delta {
        sources: sources(delta.sources)?,
        modules: delta
            .modules
            .into_iter()
            .map(ModuleTerm::into_module)
            .collect(),
        removed_sources: delta.removed_sources,
        removed_modules: names(delta.removed_modules),
    };
    graph.with(|g| {
        g.update(&delta);
        g.stats().into()
    })
}

/// Dirty: it waits for the graph's lock, which a plan of a large graph
/// may hold for longer than a scheduler may be blocked.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_stats(graph: ResourceArc<PlanGraph>) -> NifResult<StatsTerm> {
    graph.with(|g| g.stats().into())
}

/// The graph's content digest (`ReloadGraph::fingerprint`), as a string:
/// a u64 does not fit every integer term the glue would build.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_fingerprint(graph: ResourceArc<PlanGraph>) -> NifResult<String> {
    graph.with(|g| format!("{:016x}", g.fingerprint()))
}

/// Plans `request`: before the compile when `outcome` is nil, resolved
/// with the compile's outcome otherwise. `format` is `:term` or `:json`.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_plan<'a>(
    env: Env<'a>,
    graph: ResourceArc<PlanGraph>,
    request: RequestTerm,
    outcome: Option<OutcomeTerm>,
    format: Atom,
) -> NifResult<Term<'a>> {
    let (request, locate) = request.into_request();
    let outcome = outcome.map(OutcomeTerm::into_outcome);
    let reader = |path: &str| read_text(path);
    let read: Option<plan::SourceReader> = if locate { Some(&reader) } else { None };
    let plan = graph.with(|g| match &outcome {
        None => plan::plan(g, &request, read),
        Some(outcome) => plan::resolve(g, &request, outcome, read),
    })?;
    encode_plan(env, plan, format)
}

/// The same as `plan_graph_plan` before a compile, on a normal scheduler,
/// for plans that surely take microseconds (`plan::is_small`, and the
/// graph not busy); otherwise `:dirty`, and the caller uses the dirty NIF.
/// Sparing the dirty-scheduler round trip matters at this size.
#[rustler::nif]
fn plan_graph_try_plan<'a>(
    env: Env<'a>,
    graph: ResourceArc<PlanGraph>,
    request: RequestTerm,
    format: Atom,
) -> NifResult<Term<'a>> {
    let (request, locate) = request.into_request();
    let Ok(g) = graph.graph.try_lock() else {
        return Ok(dirty(env));
    };
    // Reading sources for lines is I/O: never on a normal scheduler.
    if locate || !plan::is_small(&g, &request) {
        return Ok(dirty(env));
    }
    let plan = plan::plan(&g, &request, None);
    drop(g);
    encode_plan(env, plan, format)
}

fn dirty(env: Env) -> Term {
    Atom::from_str(env, "dirty").map_or_else(|_| "dirty".encode(env), |a| a.encode(env))
}

fn encode_plan<'a>(env: Env<'a>, plan: Plan, format: Atom) -> NifResult<Term<'a>> {
    match format.to_term(env).atom_to_string()?.as_str() {
        "json" => {
            let json = serde_json::to_vec(&plan).map_err(|_| Error::BadArg)?;
            Ok(Bytes(json).encode(env))
        }
        "term" => Ok(PlanTerm::from(plan).encode(env)),
        _ => Err(Error::BadArg),
    }
}

/// Bytes encoded as a binary.
struct Bytes(Vec<u8>);

impl Encoder for Bytes {
    fn encode<'a>(&self, env: Env<'a>) -> Term<'a> {
        let mut bin = OwnedBinary::new(self.0.len());
        bin.as_mut_slice().copy_from_slice(&self.0);
        bin.release(env).encode(env)
    }
}

impl<'a> Decoder<'a> for Bytes {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        term.decode::<Binary>()
            .map(|b| Bytes(b.as_slice().to_vec()))
    }
}

fn hex_bytes(hex: &str) -> Bytes {
    Bytes(
        (0..hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect(),
    )
}

#[derive(NifMap)]
struct ModuleOut {
    name: Name,
    app: Name,
    export: Option<Bytes>,
    recompile: bool,
}

#[derive(NifMap)]
struct ManifestOut {
    root: String,
    apps: Vec<AppTerm>,
    sources: Vec<SourceTerm>,
    modules: Vec<ModuleOut>,
}

/// The synthetic manifest of the benchmarks, as `DebugReload.Manifest`
/// would produce it, so Elixir and Rust plan over the same graph.
#[rustler::nif(schedule = "DirtyCpu")]
fn plan_graph_synthetic(modules: usize, edges: usize, seed: u64) -> ManifestOut {
    let m = synthetic::manifest(modules, edges, seed);
    ManifestOut {
        root: m.root,
        apps: m
            .apps
            .into_iter()
            .map(|a| AppTerm {
                name: Name(a.name),
                root: a.root,
                source_dirs: a.source_dirs,
                deps: to_names(&a.deps),
            })
            .collect(),
        sources: m
            .sources
            .into_iter()
            .map(|s| SourceTerm {
                kind: Name(s.kind.as_str().to_string()),
                path: s.path,
                app: Name(s.app),
                modules: to_names(&s.modules),
                compile: to_names(&s.compile),
                export: to_names(&s.export),
                runtime: to_names(&s.runtime),
                external: s.external,
                includes: s.includes,
                compile_env: to_names(&s.compile_env),
            })
            .collect(),
        modules: m
            .modules
            .into_iter()
            .map(|module| ModuleOut {
                export: module.export.as_deref().map(hex_bytes),
                name: Name(module.name),
                app: Name(module.app),
                recompile: module.recompile,
            })
            .collect(),
    }
}
