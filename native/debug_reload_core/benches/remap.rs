//! Remapping 1,000 breakpoints in a 5,000-line file after a 50-hunk edit,
//! with the text diff alone and with the structural map added: the
//! difference is the cost of the structure mapping.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use debug_reload_core::breakpoints::{remap, Edit};
use debug_reload_core::structure::{Statement, Structure};

const FUNCTIONS: usize = 830; // 6 lines each: ~5,000 lines
const HUNKS: usize = 50;

struct Version {
    text: String,
    statements: Vec<Statement>,
}

fn render(functions: &[Vec<String>], comments_before: &[usize]) -> Version {
    let mut lines = vec!["defmodule Big do".to_string()];
    let mut statements = Vec::new();
    for (f, body) in functions.iter().enumerate() {
        if comments_before.contains(&f) {
            lines.push(format!("  # changed near function {f}"));
        }
        lines.push(format!("  def fun_{f}(x) do"));
        for (i, s) in body.iter().enumerate() {
            lines.push(format!("    {s}"));
            statements.push(Statement {
                function: format!("fun_{f}/1"),
                clause: 0,
                path: vec![i as u32],
                line: lines.len() as u32,
            });
        }
        lines.push("  end".to_string());
        lines.push(String::new());
    }
    lines.push("end".to_string());
    Version {
        text: lines.join("\n"),
        statements,
    }
}

fn workload() -> (Version, Version, Vec<u32>) {
    let functions: Vec<Vec<String>> = (0..FUNCTIONS)
        .map(|f| {
            (0..4)
                .map(|i| format!("v{i} = compute({f}, {i}, x)"))
                .collect()
        })
        .collect();
    let old = render(&functions, &[]);
    let mut edited = functions.clone();
    let step = FUNCTIONS / HUNKS;
    let mut comments = Vec::new();
    for h in 0..HUNKS {
        let f = h * step + 3;
        match h % 3 {
            0 => edited[f][1].push_str(" + 1"),
            1 => {
                edited[f].remove(2);
            }
            _ => comments.push(f),
        }
    }
    let new = render(&edited, &comments);
    let lines: Vec<u32> = old
        .statements
        .iter()
        .step_by(3)
        .take(1_000)
        .map(|s| s.line)
        .collect();
    (old, new, lines)
}

fn bench(c: &mut Criterion) {
    let (old, new, lines) = workload();
    let exec = |v: &Version| v.statements.iter().map(|s| s.line).collect::<Vec<_>>();
    let (old_exec, new_exec) = (exec(&old), exec(&new));
    let (old_s, new_s) = (
        Structure::new(old.statements.clone()),
        Structure::new(new.statements.clone()),
    );
    let mut group = c.benchmark_group("remap 1000 breakpoints, 5000 lines, 50 hunks");
    group.bench_function("line table only (no breakpoints)", |b| {
        b.iter(|| {
            let edit = Edit {
                old_text: Some(&old.text),
                new_text: Some(&new.text),
                ..Edit::default()
            };
            black_box(remap(&edit, &[]))
        })
    });
    for (name, with_structure) in [("text diff only", false), ("text diff + structure", true)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let edit = Edit {
                    old_text: Some(&old.text),
                    new_text: Some(&new.text),
                    old_executable: &old_exec,
                    new_executable: &new_exec,
                    old_structure: with_structure.then_some(&old_s),
                    new_structure: with_structure.then_some(&new_s),
                };
                black_box(remap(&edit, &lines))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
