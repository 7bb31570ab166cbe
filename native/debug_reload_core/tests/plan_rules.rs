//! Mix's recompilation rules, one small graph per rule. The differential
//! test against real `mix compile` is test/plan_parity_test.exs; these pin
//! each rule and the explanations.

use debug_reload_core::graph::{Delta, ReloadGraph};
use debug_reload_core::manifest::{App, Manifest, Module, Source, SourceKind};
use debug_reload_core::plan::{self, Action, Certainty, Outcome, Plan, PlanRequest};
use std::collections::HashMap;

const ROOT: &str = "/p";

/// `refs` is "compile:A export:B runtime:C" style.
fn ex(name: &str, modules: &[&str], refs: &str) -> Source {
    let mut source = Source::new(&format!("{ROOT}/lib/{name}.ex"), "app", SourceKind::Elixir);
    source.modules = modules.iter().map(|m| format!("Elixir.{m}")).collect();
    for r in refs.split_whitespace() {
        let (kind, module) = r.split_once(':').unwrap();
        let module = if module.starts_with(char::is_lowercase) {
            module.to_string()
        } else {
            format!("Elixir.{module}")
        };
        match kind {
            "compile" => source.compile.push(module),
            "export" => source.export.push(module),
            "runtime" => source.runtime.push(module),
            other => panic!("unknown reference kind {other}"),
        }
    }
    source
}

fn app(name: &str, deps: &[&str]) -> App {
    App {
        name: name.into(),
        root: format!("{ROOT}/apps/{name}"),
        source_dirs: vec![
            format!("{ROOT}/lib"),
            format!("{ROOT}/src"),
            format!("{ROOT}/include"),
        ],
        deps: deps.iter().map(|d| d.to_string()).collect(),
    }
}

fn manifest(sources: Vec<Source>) -> Manifest {
    let modules = sources
        .iter()
        .flat_map(|s| {
            s.modules.iter().map(|m| Module {
                name: m.clone(),
                app: s.app.clone(),
                export: Some(format!("old-{m}")),
                recompile: false,
            })
        })
        .collect();
    Manifest {
        root: ROOT.into(),
        apps: vec![app("app", &[])],
        sources,
        modules,
    }
}

fn path(name: &str) -> String {
    format!("{ROOT}/lib/{name}.ex")
}

fn changed(names: &[&str]) -> PlanRequest {
    PlanRequest {
        changed: names.iter().map(|n| path(n)).collect(),
        ..PlanRequest::default()
    }
}

fn files(plan: &Plan, certainty: Certainty) -> Vec<String> {
    plan.files
        .iter()
        .filter(|f| f.certainty == certainty)
        .map(|f| {
            f.path
                .trim_start_matches(&format!("{ROOT}/lib/"))
                .trim_end_matches(".ex")
                .to_string()
        })
        .collect()
}

fn definite(plan: &Plan) -> Vec<String> {
    files(plan, Certainty::Definite)
}

fn conditional(plan: &Plan) -> Vec<String> {
    files(plan, Certainty::Conditional)
}

/// The compile's outcome: these modules got new exports.
fn exports_changed(modules: &[&str]) -> Outcome {
    Outcome {
        modules: modules
            .iter()
            .map(|m| (format!("Elixir.{m}"), Some("new".to_string()), None))
            .collect(),
        ..Outcome::default()
    }
}

#[test]
fn a_body_change_recompiles_the_file_only() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("b", &["B"], "runtime:A"),
    ]));
    let plan = plan::plan(&g, &changed(&["a"]), None);
    assert_eq!(definite(&plan), vec!["a"]);
    assert!(conditional(&plan).is_empty());
    assert_eq!(plan.modules.len(), 1);
    assert_eq!(plan.modules[0].explanation, "`A` changed (lib/a.ex)");
}

#[test]
fn compile_time_dependencies_recompile_through_runtime_chains() {
    // C uses A at compile time. D uses B at compile time, and B calls A at
    // runtime, so D is compile-connected to A. E only calls C.
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("b", &["B"], "runtime:A"),
        ex("c", &["C"], "compile:A"),
        ex("d", &["D"], "compile:B"),
        ex("e", &["E"], "runtime:C"),
    ]));
    let plan = plan::plan(&g, &changed(&["a"]), None);
    assert_eq!(definite(&plan), vec!["a", "c", "d"]);
    let d = plan.modules.iter().find(|m| m.name == "D").unwrap();
    assert_eq!(
        d.explanation,
        "`D` ← compile-time (in lib/d.ex) ← `B` ← runtime (in lib/b.ex) ← `A` changed (lib/a.ex)"
    );
}

#[test]
fn export_dependencies_are_conditional_until_the_exports_are_known() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("u", &["U"], "export:A runtime:A"),
    ]));
    let request = changed(&["a"]);
    let before = plan::plan(&g, &request, None);
    assert_eq!(definite(&before), vec!["a"]);
    assert_eq!(conditional(&before), vec!["u"]);
    assert_eq!(before.files[1].conditions, vec!["A"]);
    assert_eq!(
        before.files[1].explanation,
        "lib/u.ex ← `U` ← export (in lib/u.ex) ← if the exports of `A` change"
    );

    let same = plan::resolve(&g, &request, &Outcome::default(), None);
    assert_eq!(definite(&same), vec!["a"]);
    let different = plan::resolve(&g, &request, &exports_changed(&["A"]), None);
    assert_eq!(definite(&different), vec!["a", "u"]);
    assert!(different.files[1]
        .explanation
        .contains("exports of `A` changed"));
}

#[test]
fn export_changes_of_recompiled_dependents_cascade_in_later_passes() {
    // X uses A (recompiled by it); Y imports X; Z uses Y at compile time.
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("x", &["X"], "compile:A"),
        ex("y", &["Y"], "export:X"),
        ex("z", &["Z"], "compile:Y"),
        ex("w", &["W"], "export:Z"),
    ]));
    let request = changed(&["a"]);
    let before = plan::plan(&g, &request, None);
    assert_eq!(definite(&before), vec!["a", "x"]);
    assert_eq!(conditional(&before), vec!["w", "y", "z"]);

    // Only X's exports changed: Y recompiles, Z with it (compile-time),
    // and W does not, since Z's exports stayed the same.
    let after = plan::resolve(&g, &request, &exports_changed(&["X"]), None);
    assert_eq!(definite(&after), vec!["a", "x", "y", "z"]);
}

#[test]
fn runtime_cycles_terminate_and_still_connect() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], "runtime:B"),
        ex("b", &["B"], "runtime:A"),
        ex("c", &["C"], "compile:A"),
    ]));
    let plan = plan::plan(&g, &changed(&["b"]), None);
    assert_eq!(definite(&plan), vec!["b", "c"]);
}

#[test]
fn all_modules_of_a_file_recompile_together() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("b", &["B", "B2"], "compile:A"),
        ex("c", &["C"], "compile:B2"),
    ]));
    let plan = plan::plan(&g, &changed(&["a"]), None);
    assert_eq!(definite(&plan), vec!["a", "b", "c"]);
    let c = plan.modules.iter().find(|m| m.name == "C").unwrap();
    assert_eq!(
        c.explanation,
        "`C` ← compile-time (in lib/c.ex) ← `B2` ← compile-time (in lib/b.ex) ← `A` changed (lib/a.ex)"
    );
}

#[test]
fn a_deleted_module_recompiles_compile_and_export_dependents_only() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("d", &["D"], ""),
        ex("r", &["R"], "runtime:D"),
        ex("s", &["S"], "export:D"),
        ex("t", &["T"], "compile:D"),
    ]));
    let request = PlanRequest {
        removed: vec![path("d")],
        ..PlanRequest::default()
    };
    let plan = plan::plan(&g, &request, None);
    assert_eq!(definite(&plan), vec!["s", "t"]);
    let d = plan.modules.iter().find(|m| m.name == "D").unwrap();
    assert_eq!(d.action, Action::Delete);
    let s = plan.modules.iter().find(|m| m.name == "S").unwrap();
    assert_eq!(
        s.explanation,
        "`S` ← export (in lib/s.ex) ← `D` was deleted (lib/d.ex)"
    );
}

#[test]
fn unknown_paths_are_reported_and_new_sources_planned() {
    let g = ReloadGraph::build(&manifest(vec![ex("a", &["A"], "")]));
    let request = PlanRequest {
        changed: vec![
            path("new"),
            "/elsewhere/x.ex".into(),
            format!("{ROOT}/lib/notes.txt"),
        ],
        removed: vec![path("never_compiled")],
        ..PlanRequest::default()
    };
    let plan = plan::plan(&g, &request, None);
    assert_eq!(definite(&plan), vec!["new"]);
    assert_eq!(plan.files[0].explanation, "lib/new.ex is new");
    let unknown: Vec<&str> = plan.unknown.iter().map(|u| u.path.as_str()).collect();
    assert_eq!(
        unknown,
        vec![
            "/elsewhere/x.ex",
            "/p/lib/notes.txt",
            "/p/lib/never_compiled.ex"
        ]
    );
}

#[test]
fn erlang_headers_and_the_parents_rule() {
    let mut e1 = Source::new(&format!("{ROOT}/src/e1.erl"), "app", SourceKind::Erlang);
    e1.modules = vec!["e1".into()];
    e1.includes = vec![format!("{ROOT}/include/e1.hrl")];
    let mut e2 = Source::new(&format!("{ROOT}/src/e2.erl"), "app", SourceKind::Erlang);
    e2.modules = vec!["e2".into()];
    let g = ReloadGraph::build(&manifest(vec![
        e1,
        e2,
        ex("f", &["F"], "runtime:e1"),
        ex("g", &["G"], "compile:e2"),
    ]));
    let request = PlanRequest {
        changed: vec![format!("{ROOT}/include/e1.hrl")],
        ..PlanRequest::default()
    };
    let plan = plan::plan(&g, &request, None);
    // e1.erl includes the header; any Erlang recompile makes every Erlang
    // module of the app stale for Elixir, so G (compile-time on :e2) too.
    assert_eq!(plan.file_paths(), vec!["/p/lib/g.ex", "/p/src/e1.erl"]);
    let g_mod = plan.modules.iter().find(|m| m.name == "G").unwrap();
    assert_eq!(
        g_mod.explanation,
        "`G` ← compile-time (in lib/g.ex) ← `:e2` ← an Erlang source of its app was recompiled ← src/e1.erl ← includes include/e1.hrl ← include/e1.hrl changed"
    );
}

#[test]
fn external_resources_make_their_sources_stale() {
    let mut a = ex("a", &["A"], "");
    a.external = vec![format!("{ROOT}/priv/data.txt")];
    let g = ReloadGraph::build(&manifest(vec![a, ex("b", &["B"], "compile:A")]));
    let request = PlanRequest {
        changed: vec![format!("{ROOT}/priv/data.txt")],
        ..PlanRequest::default()
    };
    let plan = plan::plan(&g, &request, None);
    assert_eq!(definite(&plan), vec!["a", "b"]);
    assert_eq!(
        plan.files[0].explanation,
        "lib/a.ex ← external resource priv/data.txt ← priv/data.txt changed"
    );
}

#[test]
fn stale_modules_from_the_request_recompile_compile_time_users() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], "compile:Mix.Project"),
        ex("b", &["B"], "runtime:Mix.Project"),
    ]));
    let request = PlanRequest {
        stale_modules: vec![("Elixir.Mix.Project".into(), "mix.exs changed".into())],
        ..PlanRequest::default()
    };
    let plan = plan::plan(&g, &request, None);
    assert_eq!(definite(&plan), vec!["a"]);
    assert!(plan.files[0]
        .explanation
        .ends_with("`Mix.Project` is stale (mix.exs changed)"));
}

#[test]
fn umbrella_dependents_see_recompiled_modules_of_their_dependencies() {
    let mut core_a = ex("core_a", &["Core.A"], "");
    core_a.app = "core".into();
    let mut core_b = ex("core_b", &["Core.B"], "runtime:Core.A");
    core_b.app = "core".into();
    let mut web_c = ex("web_c", &["Web.C"], "compile:Core.B");
    web_c.app = "web".into();
    let mut web_d = ex("web_d", &["Web.D"], "export:Core.A");
    web_d.app = "web".into();
    let mut web_e = ex("web_e", &["Web.E"], "runtime:Core.A");
    web_e.app = "web".into();
    let mut m = manifest(vec![web_c, web_d, web_e, core_a, core_b]);
    m.apps = vec![app("web", &["core"]), app("core", &[])];
    let g = ReloadGraph::build(&m);

    let request = changed(&["core_a"]);
    let before = plan::plan(&g, &request, None);
    // Core.B reaches Core.A at runtime inside core, so it is stale for web.
    assert_eq!(definite(&before), vec!["core_a", "web_c"]);
    assert_eq!(conditional(&before), vec!["web_d"]);
    let after = plan::resolve(&g, &request, &exports_changed(&["Core.A"]), None);
    assert_eq!(definite(&after), vec!["core_a", "web_c", "web_d"]);
}

#[test]
fn resolution_tells_reloaded_from_identical_beams() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("c", &["C"], "compile:A"),
    ]));
    let outcome = Outcome {
        beams_changed: vec!["Elixir.A".into()],
        modules: vec![("Elixir.N".into(), Some("n".into()), Some(path("a")))],
        beams_added: vec!["Elixir.N".into()],
        ..Outcome::default()
    };
    let plan = plan::resolve(&g, &changed(&["a"]), &outcome, None);
    let actions: HashMap<&str, Action> = plan
        .modules
        .iter()
        .map(|m| (m.name.as_str(), m.action))
        .collect();
    assert_eq!(actions["A"], Action::Reload);
    assert_eq!(actions["C"], Action::Unchanged);
    assert_eq!(actions["N"], Action::New);
}

#[test]
fn lines_are_located_in_the_source_text() {
    let g = ReloadGraph::build(&manifest(vec![
        ex("web", &["MyApp.Web"], ""),
        ex("router", &["MyApp.Router"], "compile:MyApp.Web"),
    ]));
    let read = |p: &str| -> Option<String> {
        p.ends_with("router.ex")
            .then(|| "defmodule MyApp.Router do\n  use MyApp.Web, :router\nend\n".to_string())
    };
    let plan = plan::plan(&g, &changed(&["web"]), Some(&read));
    let router = plan
        .modules
        .iter()
        .find(|m| m.name == "MyApp.Router")
        .unwrap();
    assert_eq!(
        router.explanation,
        "`MyApp.Router` ← compile-time (`use MyApp.Web, :router` at lib/router.ex:2) ← `MyApp.Web` changed (lib/web.ex)"
    );
}

#[test]
fn updates_change_later_plans() {
    let mut g = ReloadGraph::build(&manifest(vec![
        ex("a", &["A"], ""),
        ex("b", &["B"], "runtime:A"),
    ]));
    assert_eq!(definite(&plan::plan(&g, &changed(&["a"]), None)), vec!["a"]);
    g.update(&Delta {
        sources: vec![ex("b", &["B"], "compile:A")],
        ..Delta::default()
    });
    assert_eq!(
        definite(&plan::plan(&g, &changed(&["a"]), None)),
        vec!["a", "b"]
    );
}

#[test]
fn plans_do_not_depend_on_the_order_of_the_manifest() {
    use debug_reload_core::synthetic;
    let forward = synthetic::manifest(600, 6_000, 3);
    let mut backward = forward.clone();
    backward.sources.reverse();
    backward.modules.reverse();
    let (a, b) = (ReloadGraph::build(&forward), ReloadGraph::build(&backward));
    for i in [1, 5, 40, 123, 377, 599] {
        let request = PlanRequest {
            changed: vec![synthetic::path_of(i)],
            ..PlanRequest::default()
        };
        let set = |p: &Plan| -> Vec<(String, Certainty)> {
            p.files
                .iter()
                .map(|f| (f.path.clone(), f.certainty))
                .collect()
        };
        assert_eq!(
            set(&plan::plan(&a, &request, None)),
            set(&plan::plan(&b, &request, None)),
            "module {i}"
        );
        let outcome = exports_changed(&["App.M3", "App.M40", "App.M200"]);
        assert_eq!(
            set(&plan::resolve(&a, &request, &outcome, None)),
            set(&plan::resolve(&b, &request, &outcome, None)),
            "module {i}"
        );
    }
}

#[test]
fn small_plans_are_recognized_and_large_ones_are_not() {
    use debug_reload_core::synthetic;
    let g = ReloadGraph::build(&synthetic::manifest(2_000, 20_000, 5));
    let request = |i: usize| PlanRequest {
        changed: vec![synthetic::path_of(i)],
        ..PlanRequest::default()
    };
    // A macro module: most of the project recompiles.
    assert!(!plan::is_small(&g, &request(3)));
    assert!(plan::plan(&g, &request(3), None).files.len() > 100);
    // Ordinary modules: small, and their plans are.
    let small: Vec<usize> = (40..2_000)
        .step_by(37)
        .filter(|&i| plan::is_small(&g, &request(i)))
        .collect();
    assert!(small.len() > 20, "{small:?}");
    for i in small {
        assert!(plan::plan(&g, &request(i), None).files.len() < 50);
    }
}
