//! The dependency graph of a project: files and modules as nodes, the
//! references Mix recorded as labelled edges.
//!
//! Edges point from the file that holds a reference to what it refers to:
//!
//! - `Defines`: file → module it defines;
//! - `Compile`, `Export`, `Runtime`: file → module it references;
//! - `External`: Elixir file → one of its `@external_resource` files;
//! - `Include`: Erlang file → header it includes.
//!
//! Cycles are ordinary here: runtime references form them all the time,
//! and every traversal marks what it visited.

use crate::manifest::{App, Manifest, Module, Source, SourceKind};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use petgraph::Direction::{Incoming, Outgoing};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

pub type Id = NodeIndex<u32>;
pub type AppId = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    Defines,
    Compile,
    Export,
    Runtime,
    External,
    Include,
}

#[derive(Debug, Clone)]
pub struct FileNode {
    pub path: String,
    pub app: AppId,
    pub kind: SourceKind,
    pub compile_env: Vec<String>,
    /// The modules it defines, mirroring its outgoing `Defines` edges: the
    /// hot path of planning asks this of every referring file.
    modules: Vec<Id>,
}

#[derive(Debug, Clone)]
pub struct ModuleNode {
    pub name: String,
    /// `None` for modules only referenced (Elixir's, OTP's, a hex dep's).
    pub app: Option<AppId>,
    pub export: Option<String>,
    pub recompile: bool,
    /// The files defining it, mirroring its incoming `Defines` edges: a
    /// module used everywhere has thousands of incoming edges to search.
    files: Vec<Id>,
}

#[derive(Debug, Clone)]
pub enum Node {
    File(FileNode),
    Module(ModuleNode),
}

#[derive(Debug, Clone)]
pub struct AppNode {
    pub name: String,
    pub root: String,
    pub source_dirs: Vec<String>,
    /// Direct dependencies within the graph.
    pub deps: Vec<AppId>,
}

/// Counts, for reports and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stats {
    pub apps: usize,
    pub files: usize,
    pub modules: usize,
    pub edges: usize,
}

/// Sources to replace and paths to forget, after a compile rewrote part of
/// the manifests.
#[derive(Debug, Clone, Default)]
pub struct Delta {
    /// New or changed sources (all their edges are replaced).
    pub sources: Vec<Source>,
    /// New or changed module records.
    pub modules: Vec<Module>,
    /// Sources the manifests no longer have.
    pub removed_sources: Vec<String>,
    /// Modules the manifests no longer have.
    pub removed_modules: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct ReloadGraph {
    pub(crate) graph: StableDiGraph<Node, Edge, u32>,
    pub(crate) root: String,
    pub(crate) apps: Vec<AppNode>,
    app_index: FxHashMap<String, AppId>,
    pub(crate) files: FxHashMap<String, Id>,
    pub(crate) modules: FxHashMap<String, Id>,
    /// Modules whose staleness can make something recompile: those a file
    /// references at compile time, and those reached from them through
    /// runtime references. Staleness of any other module changes nothing,
    /// so planning never walks into it.
    relevant: Vec<bool>,
    /// Per module: how many edges planning a change of it walks when it is
    /// not compile-connected (its referrers, and those of the modules that
    /// import it); `u32::MAX` when a change of it may walk much further.
    change_cost: Vec<u32>,
}

impl ReloadGraph {
    pub fn build(manifest: &Manifest) -> Self {
        let mut graph = ReloadGraph {
            graph: StableDiGraph::with_capacity(
                manifest.sources.len() + manifest.modules.len(),
                manifest.sources.iter().map(edge_count).sum(),
            ),
            root: manifest.root.clone(),
            apps: Vec::new(),
            app_index: FxHashMap::default(),
            files: FxHashMap::default(),
            modules: FxHashMap::default(),
            relevant: Vec::new(),
            change_cost: Vec::new(),
        };
        graph.set_apps(&manifest.apps);
        for module in &manifest.modules {
            graph.upsert_module(module);
        }
        for source in &manifest.sources {
            graph.upsert_source(source);
        }
        graph.compute_relevance();
        graph
    }

    /// Applies what a compile changed: only the given sources are touched.
    pub fn update(&mut self, delta: &Delta) {
        for module in &delta.modules {
            self.upsert_module(module);
        }
        for source in &delta.sources {
            self.upsert_source(source);
        }
        for path in &delta.removed_sources {
            if let Some(&file) = self.files.get(path) {
                self.clear_outgoing(file);
                if self.graph.edges_directed(file, Incoming).next().is_none() {
                    self.graph.remove_node(file);
                    self.files.remove(path);
                }
            }
        }
        for name in &delta.removed_modules {
            if let Some(&module) = self.modules.get(name) {
                let defined = self.defining_files(module).next().is_some();
                if let (false, Node::Module(node)) = (defined, &mut self.graph[module]) {
                    node.app = None;
                    node.export = None;
                    node.recompile = false;
                }
            }
        }
        self.collect_orphans();
        self.compute_relevance();
    }

    pub fn stats(&self) -> Stats {
        Stats {
            apps: self.apps.len(),
            files: self.files.len(),
            modules: self.modules.len(),
            edges: self.graph.edge_count(),
        }
    }

    /// A digest of everything planning reads: each node with its
    /// attributes and each labelled edge, named by path or module name, not
    /// by index. Two graphs with the same content have the same fingerprint
    /// however they were built (a build, or a build and updates), so it
    /// shows whether incremental updates kept the graph exact.
    pub fn fingerprint(&self) -> u64 {
        let app_name = |app: AppId| self.apps[app as usize].name.as_str();
        let label = |id: Id| match &self.graph[id] {
            Node::File(f) => (0u8, f.path.as_str()),
            Node::Module(m) => (1u8, m.name.as_str()),
        };
        // A sum of per-item hashes: independent of iteration order.
        let mut sum = 0u64;
        for id in self.graph.node_indices() {
            sum = sum.wrapping_add(match &self.graph[id] {
                Node::File(f) => stable_hash(&(&f.path, app_name(f.app), f.kind, &f.compile_env)),
                Node::Module(m) => {
                    stable_hash(&(&m.name, m.app.map(app_name), &m.export, m.recompile))
                }
            });
        }
        for edge in self.graph.edge_references() {
            sum = sum.wrapping_add(stable_hash(&(
                label(edge.source()),
                label(edge.target()),
                *edge.weight(),
            )));
        }
        for app in &self.apps {
            let deps: Vec<&str> = app.deps.iter().map(|&d| app_name(d)).collect();
            sum = sum.wrapping_add(stable_hash(&(&app.name, &app.source_dirs, deps)));
        }
        sum
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn file(&self, path: &str) -> Option<Id> {
        self.files.get(path).copied()
    }

    pub fn module(&self, name: &str) -> Option<Id> {
        self.modules.get(name).copied()
    }

    pub(crate) fn file_node(&self, id: Id) -> &FileNode {
        match &self.graph[id] {
            Node::File(file) => file,
            Node::Module(_) => unreachable!("node {id:?} is a module"),
        }
    }

    pub(crate) fn module_node(&self, id: Id) -> &ModuleNode {
        match &self.graph[id] {
            Node::Module(module) => module,
            Node::File(_) => unreachable!("node {id:?} is a file"),
        }
    }

    pub(crate) fn is_relevant(&self, module: Id) -> bool {
        self.relevant.get(module.index()).copied().unwrap_or(false)
    }

    pub(crate) fn app_name(&self, app: AppId) -> &str {
        &self.apps[app as usize].name
    }

    /// The app whose source directories hold `path` (the deepest one).
    pub(crate) fn app_of_path(&self, path: &str) -> Option<AppId> {
        self.apps
            .iter()
            .enumerate()
            .flat_map(|(i, app)| app.source_dirs.iter().map(move |dir| (i, dir)))
            .filter(|(_, dir)| path.starts_with(dir.as_str()) && path[dir.len()..].starts_with('/'))
            .max_by_key(|(_, dir)| dir.len())
            .map(|(i, _)| i as AppId)
    }

    /// Apps ordered so that every app comes after the apps it depends on.
    pub(crate) fn app_order(&self) -> Vec<AppId> {
        let mut order = Vec::with_capacity(self.apps.len());
        let mut state = vec![0u8; self.apps.len()];
        for app in 0..self.apps.len() {
            self.visit_app(app, &mut state, &mut order);
        }
        order
    }

    fn visit_app(&self, app: usize, state: &mut [u8], order: &mut Vec<AppId>) {
        if state[app] != 0 {
            return; // done, or a dependency cycle Mix itself would reject
        }
        state[app] = 1;
        for &dep in &self.apps[app].deps {
            self.visit_app(dep as usize, state, order);
        }
        state[app] = 2;
        order.push(app as AppId);
    }

    /// Every app `app` depends on, directly or not.
    pub(crate) fn transitive_deps(&self, app: AppId) -> Vec<AppId> {
        let mut seen = vec![false; self.apps.len()];
        let mut stack: Vec<AppId> = self.apps[app as usize].deps.clone();
        let mut out = Vec::new();
        while let Some(dep) = stack.pop() {
            if !std::mem::replace(&mut seen[dep as usize], true) {
                out.push(dep);
                stack.extend(self.apps[dep as usize].deps.iter().copied());
            }
        }
        out
    }

    pub(crate) fn defined_modules(&self, file: Id) -> impl Iterator<Item = Id> + '_ {
        self.file_node(file).modules.iter().copied()
    }

    pub(crate) fn defining_files(&self, module: Id) -> impl Iterator<Item = Id> + '_ {
        self.module_node(module).files.iter().copied()
    }

    /// Nodes `node` points to with an edge of `kind`.
    pub(crate) fn targets(&self, node: Id, kind: Edge) -> impl Iterator<Item = Id> + '_ {
        self.graph
            .edges_directed(node, Outgoing)
            .filter(move |e| *e.weight() == kind)
            .map(|e| e.target())
    }

    /// Nodes pointing to `node` with an edge of `kind`.
    pub(crate) fn sources(&self, node: Id, kind: Edge) -> impl Iterator<Item = Id> + '_ {
        self.graph
            .edges_directed(node, Incoming)
            .filter(move |e| *e.weight() == kind)
            .map(|e| e.source())
    }

    /// Files pointing to `node`, with the kind of edge.
    pub(crate) fn referrers(&self, node: Id) -> impl Iterator<Item = (Id, Edge)> + '_ {
        self.graph
            .edges_directed(node, Incoming)
            .map(|e| (e.source(), *e.weight()))
    }

    /// Modules of `app` defined by Erlang sources.
    pub(crate) fn erlang_modules(&self, app: AppId) -> Vec<Id> {
        let mut modules: Vec<Id> = self
            .files
            .values()
            .filter(|&&f| {
                let node = self.file_node(f);
                node.app == app && node.kind == SourceKind::Erlang
            })
            .flat_map(|&f| self.defined_modules(f))
            .collect();
        modules.sort();
        modules.dedup();
        modules
    }

    fn set_apps(&mut self, apps: &[App]) {
        for app in apps {
            self.app_id(&app.name);
        }
        for app in apps {
            let id = self.app_id(&app.name) as usize;
            let deps: Vec<AppId> = app.deps.iter().map(|d| self.app_id(d)).collect();
            let node = &mut self.apps[id];
            node.root = app.root.clone();
            node.source_dirs = app.source_dirs.clone();
            node.deps = deps;
        }
    }

    fn app_id(&mut self, name: &str) -> AppId {
        if let Some(&id) = self.app_index.get(name) {
            return id;
        }
        let id = self.apps.len() as AppId;
        self.apps.push(AppNode {
            name: name.to_string(),
            root: String::new(),
            source_dirs: Vec::new(),
            deps: Vec::new(),
        });
        self.app_index.insert(name.to_string(), id);
        id
    }

    fn module_id(&mut self, name: &str) -> Id {
        if let Some(&id) = self.modules.get(name) {
            return id;
        }
        let id = self.graph.add_node(Node::Module(ModuleNode {
            name: name.to_string(),
            app: None,
            export: None,
            recompile: false,
            files: Vec::new(),
        }));
        self.modules.insert(name.to_string(), id);
        id
    }

    fn file_id(&mut self, path: &str, app: AppId, kind: SourceKind) -> Id {
        if let Some(&id) = self.files.get(path) {
            return id;
        }
        let id = self.graph.add_node(Node::File(FileNode {
            path: path.to_string(),
            app,
            kind,
            compile_env: Vec::new(),
            modules: Vec::new(),
        }));
        self.files.insert(path.to_string(), id);
        id
    }

    fn upsert_module(&mut self, module: &Module) {
        let app = self.app_id(&module.app);
        let id = self.module_id(&module.name);
        if let Node::Module(node) = &mut self.graph[id] {
            node.app = Some(app);
            node.export = module.export.clone();
            node.recompile = module.recompile;
        }
    }

    fn upsert_source(&mut self, source: &Source) {
        let app = self.app_id(&source.app);
        let file = self.file_id(&source.path, app, source.kind);
        self.clear_outgoing(file);
        if let Node::File(node) = &mut self.graph[file] {
            node.app = app;
            node.kind = source.kind;
            node.compile_env = source.compile_env.clone();
        }

        let defined: FxHashSet<&str> = source.modules.iter().map(String::as_str).collect();
        for name in &source.modules {
            let module = self.module_id(name);
            if let Node::Module(node) = &mut self.graph[module] {
                node.app.get_or_insert(app);
                node.files.push(file);
            }
            if let Node::File(node) = &mut self.graph[file] {
                node.modules.push(module);
            }
            self.graph.add_edge(file, module, Edge::Defines);
        }
        for (kind, names) in [
            (Edge::Compile, &source.compile),
            (Edge::Export, &source.export),
            (Edge::Runtime, &source.runtime),
        ] {
            // Mix drops references to the file's own modules; so do we.
            for name in names.iter().filter(|n| !defined.contains(n.as_str())) {
                let module = self.module_id(name);
                self.graph.add_edge(file, module, kind);
            }
        }
        for (kind, file_kind, paths) in [
            (Edge::External, SourceKind::Resource, &source.external),
            (Edge::Include, SourceKind::Header, &source.includes),
        ] {
            for path in paths {
                let target = self.file_id(path, app, file_kind);
                self.graph.add_edge(file, target, kind);
            }
        }
    }

    fn clear_outgoing(&mut self, node: Id) {
        let edges: Vec<_> = self
            .graph
            .edges_directed(node, Outgoing)
            .map(|e| (e.id(), e.target(), *e.weight()))
            .collect();
        for (edge, target, kind) in edges {
            if let (Edge::Defines, Node::Module(module)) = (kind, &mut self.graph[target]) {
                module.files.retain(|&f| f != node);
            }
            if let (Edge::Defines, Node::File(file)) = (kind, &mut self.graph[node]) {
                file.modules.retain(|&m| m != target);
            }
            self.graph.remove_edge(edge);
        }
    }

    /// Drops module and resource nodes nothing defines or refers to any more.
    fn collect_orphans(&mut self) {
        let orphans: Vec<Id> = self
            .graph
            .node_indices()
            .filter(|&n| match &self.graph[n] {
                Node::Module(m) => {
                    m.app.is_none() && self.graph.edges_directed(n, Incoming).next().is_none()
                }
                Node::File(f) => {
                    matches!(f.kind, SourceKind::Resource | SourceKind::Header)
                        && self.graph.edges_directed(n, Incoming).next().is_none()
                        && self.graph.edges_directed(n, Outgoing).next().is_none()
                }
            })
            .collect();
        for node in orphans {
            match self.graph.remove_node(node) {
                Some(Node::Module(m)) => {
                    self.modules.remove(&m.name);
                }
                Some(Node::File(f)) => {
                    self.files.remove(&f.path);
                }
                None => {}
            }
        }
    }

    fn compute_relevance(&mut self) {
        let mut relevant = vec![false; self.graph.node_bound()];
        let mut stack: Vec<Id> = Vec::new();
        for edge in self.graph.edge_references() {
            if *edge.weight() == Edge::Compile && !relevant[edge.target().index()] {
                relevant[edge.target().index()] = true;
                stack.push(edge.target());
            }
        }
        while let Some(module) = stack.pop() {
            let files: Vec<Id> = self.defining_files(module).collect();
            for file in files {
                for target in self.targets(file, Edge::Runtime) {
                    if !relevant[target.index()] {
                        relevant[target.index()] = true;
                        stack.push(target);
                    }
                }
            }
        }
        self.relevant = relevant;
        self.compute_change_costs();
    }

    fn compute_change_costs(&mut self) {
        let mut in_degree = vec![0u32; self.graph.node_bound()];
        for edge in self.graph.edge_references() {
            in_degree[edge.target().index()] += 1;
        }
        let mut cost = vec![u32::MAX; self.graph.node_bound()];
        for &module in self.modules.values() {
            if self.is_relevant(module) {
                continue;
            }
            let mut total: u64 = 0;
            for (referrer, edge) in self.referrers(module) {
                total += 1;
                if edge == Edge::Export {
                    for importer in self.defined_modules(referrer) {
                        total += if self.is_relevant(importer) {
                            u64::from(u32::MAX)
                        } else {
                            u64::from(in_degree[importer.index()])
                        };
                    }
                }
            }
            cost[module.index()] = total.min(u64::from(u32::MAX)) as u32;
        }
        self.change_cost = cost;
    }

    /// See `change_cost`.
    pub(crate) fn change_cost(&self, module: Id) -> u32 {
        self.change_cost
            .get(module.index())
            .copied()
            .unwrap_or(u32::MAX)
    }
}

fn edge_count(source: &Source) -> usize {
    source.modules.len()
        + source.compile.len()
        + source.export.len()
        + source.runtime.len()
        + source.external.len()
        + source.includes.len()
}

// SipHash with fixed keys: the same value in every run and process.
fn stable_hash<T: std::hash::Hash>(value: &T) -> u64 {
    use std::hash::{DefaultHasher, Hasher};
    let mut hasher = DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn source(path: &str, modules: &[&str]) -> Source {
        let mut s = Source::new(path, "app", SourceKind::Elixir);
        s.modules = modules.iter().map(|m| m.to_string()).collect();
        s
    }

    fn manifest(sources: Vec<Source>) -> Manifest {
        Manifest {
            root: "/p".into(),
            apps: vec![App {
                name: "app".into(),
                root: "/p".into(),
                source_dirs: vec!["/p/lib".into()],
                deps: vec![],
            }],
            sources,
            modules: vec![],
        }
    }

    #[test]
    fn builds_file_and_module_nodes_with_labelled_edges() {
        let mut a = source("/p/lib/a.ex", &["A"]);
        a.runtime = vec!["B".into(), "A".into()];
        let mut b = source("/p/lib/b.ex", &["B"]);
        b.compile = vec!["A".into()];
        let g = ReloadGraph::build(&manifest(vec![a, b]));
        assert_eq!(g.stats().files, 2);
        assert_eq!(g.stats().modules, 2);
        // Defines ×2, a→B runtime, b→A compile; the self reference is dropped.
        assert_eq!(g.stats().edges, 4);
        let a_file = g.file("/p/lib/a.ex").unwrap();
        let b_mod = g.module("B").unwrap();
        assert_eq!(
            g.targets(a_file, Edge::Runtime).collect::<Vec<_>>(),
            vec![b_mod]
        );
    }

    #[test]
    fn relevance_follows_runtime_references_from_compile_targets() {
        // C uses A at compile time; A calls B at runtime; D is only called.
        let mut a = source("/p/lib/a.ex", &["A"]);
        a.runtime = vec!["B".into()];
        let b = source("/p/lib/b.ex", &["B"]);
        let mut c = source("/p/lib/c.ex", &["C"]);
        c.compile = vec!["A".into()];
        c.runtime = vec!["D".into()];
        let d = source("/p/lib/d.ex", &["D"]);
        let g = ReloadGraph::build(&manifest(vec![a, b, c, d]));
        let rel = |m: &str| g.is_relevant(g.module(m).unwrap());
        assert!(rel("A") && rel("B"));
        assert!(!rel("C") && !rel("D"));
    }

    #[test]
    fn update_replaces_a_sources_edges_and_forgets_removed_ones() {
        let mut a = source("/p/lib/a.ex", &["A"]);
        a.runtime = vec!["B".into()];
        let b = source("/p/lib/b.ex", &["B"]);
        let mut g = ReloadGraph::build(&manifest(vec![a, b]));

        let mut a2 = source("/p/lib/a.ex", &["A"]);
        a2.compile = vec!["B".into()];
        g.update(&Delta {
            sources: vec![a2],
            ..Delta::default()
        });
        let a_file = g.file("/p/lib/a.ex").unwrap();
        assert_eq!(g.targets(a_file, Edge::Runtime).count(), 0);
        assert_eq!(g.targets(a_file, Edge::Compile).count(), 1);
        assert!(g.is_relevant(g.module("B").unwrap()));

        g.update(&Delta {
            removed_sources: vec!["/p/lib/b.ex".into()],
            removed_modules: vec!["B".into()],
            ..Delta::default()
        });
        assert!(g.file("/p/lib/b.ex").is_none());
        // Still referenced by a.ex, so the module stays, without an app.
        let b_mod = g.module("B").unwrap();
        assert_eq!(g.module_node(b_mod).app, None);
    }

    #[test]
    fn an_updated_graph_has_the_fingerprint_of_one_built_from_the_result() {
        let mut a = source("/p/lib/a.ex", &["A"]);
        a.runtime = vec!["B".into()];
        let b = source("/p/lib/b.ex", &["B"]);
        let mut a2 = source("/p/lib/a.ex", &["A"]);
        a2.compile = vec!["B".into()];
        let mut a_export = source("/p/lib/a.ex", &["A"]);
        a_export.export = vec!["B".into()];

        let mut updated = ReloadGraph::build(&manifest(vec![a, b.clone()]));
        updated.update(&Delta {
            sources: vec![a2.clone()],
            ..Delta::default()
        });
        let fresh = ReloadGraph::build(&manifest(vec![b.clone(), a2]));
        assert_eq!(updated.fingerprint(), fresh.fingerprint());

        // Same counts, one edge labelled differently.
        let relabelled = ReloadGraph::build(&manifest(vec![a_export, b]));
        assert_eq!(relabelled.stats(), fresh.stats());
        assert_ne!(relabelled.fingerprint(), fresh.fingerprint());
    }

    #[test]
    fn apps_are_ordered_after_their_dependencies() {
        let mut m = manifest(vec![]);
        m.apps = vec![
            App {
                name: "web".into(),
                deps: vec!["core".into()],
                ..App::default()
            },
            App {
                name: "core".into(),
                ..App::default()
            },
        ];
        let g = ReloadGraph::build(&m);
        let names: Vec<&str> = g.app_order().into_iter().map(|a| g.app_name(a)).collect();
        assert_eq!(names, vec!["core", "web"]);
    }
}
