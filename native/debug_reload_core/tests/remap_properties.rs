//! Property test: generated Elixir modules, random edits (inserted and
//! deleted lines, edited and inserted statements, moved functions,
//! reformatting) and a check that every breakpoint on an unchanged
//! statement lands on that same statement.

use debug_reload_core::breakpoints::{remap, Edit, Status};
use debug_reload_core::structure::{Statement, Structure};

const CASES: u64 = 600;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

#[derive(Clone, Debug)]
struct Stmt {
    id: usize,
    text: String,
    edited: bool,
}

#[derive(Clone, Debug)]
struct Function {
    name: String,
    clauses: Vec<Vec<Stmt>>,
}

#[derive(Clone, Debug)]
struct Layout {
    indent: usize,
    blank_between_statements: bool,
    /// `a = b` rendered as `a =` with `b` on the next line, as `mix format`
    /// does with long lines.
    split_assignments: bool,
    blank_lines_before: Vec<usize>,
}

#[derive(Clone, Debug)]
struct Module {
    functions: Vec<Function>,
    layout: Layout,
    /// Comment lines inserted before the function with this index.
    comments: Vec<(usize, usize)>,
}

struct Rendered {
    text: String,
    statements: Vec<Statement>,
    /// Statement id → line.
    lines: Vec<(usize, u32)>,
}

fn render(m: &Module) -> Rendered {
    let mut out = vec!["defmodule Generated do".to_string()];
    let mut statements = Vec::new();
    let mut lines = Vec::new();
    let pad = " ".repeat(m.layout.indent);
    for (fi, f) in m.functions.iter().enumerate() {
        for &(at, n) in &m.comments {
            if at == fi {
                for k in 0..n {
                    out.push(format!("{pad}# note {fi}.{k}"));
                }
            }
        }
        for _ in 0..m.layout.blank_lines_before.get(fi).copied().unwrap_or(0) {
            out.push(String::new());
        }
        for (ci, clause) in f.clauses.iter().enumerate() {
            out.push(format!(
                "{pad}def {}({}) do",
                f.name,
                if ci == 0 { "0" } else { "x" }
            ));
            for (si, s) in clause.iter().enumerate() {
                let line = out.len() as u32 + 1;
                match s.text.split_once(" = ") {
                    Some((lhs, rhs)) if m.layout.split_assignments => {
                        out.push(format!("{pad}{pad}{lhs} ="));
                        out.push(format!("{pad}{pad}{pad}{rhs}"));
                    }
                    _ => out.push(format!("{pad}{pad}{}", s.text)),
                }
                statements.push(Statement {
                    function: format!("{}/1", f.name),
                    clause: ci as u32,
                    path: vec![si as u32],
                    line,
                });
                lines.push((s.id, line));
                if m.layout.blank_between_statements {
                    out.push(String::new());
                }
            }
            out.push(format!("{pad}end"));
        }
    }
    out.push("end".to_string());
    Rendered {
        text: out.join("\n") + "\n",
        statements,
        lines,
    }
}

fn generate(rng: &mut Rng, next_id: &mut usize) -> Module {
    let functions = (0..2 + rng.below(5))
        .map(|i| Function {
            name: format!("fun_{i}_{}", rng.below(1000)),
            clauses: (0..1 + rng.below(2))
                .map(|_| {
                    (0..1 + rng.below(5))
                        .map(|_| statement(rng, next_id))
                        .collect()
                })
                .collect(),
        })
        .collect::<Vec<_>>();
    let n = functions.len();
    Module {
        functions,
        layout: Layout {
            indent: 2,
            blank_between_statements: false,
            split_assignments: false,
            blank_lines_before: vec![1; n],
        },
        comments: Vec::new(),
    }
}

fn statement(rng: &mut Rng, next_id: &mut usize) -> Stmt {
    *next_id += 1;
    let id = *next_id;
    let text = match rng.below(4) {
        0 => format!("value_{id} = compute({id}, x)"),
        1 => format!("Logger.debug(\"step {id}\")"),
        2 => format!("result_{id} = Enum.map(list_{id}, &(&1 * {id}))"),
        _ => format!("send(self(), {{:tick, {id}}})"),
    };
    Stmt {
        id,
        text,
        edited: false,
    }
}

/// Without a text snapshot only the structure is known, so only edits that
/// keep each clause's statements (moves, reformatting, comments) are fair.
fn edit(rng: &mut Rng, m: &mut Module, next_id: &mut usize, shape_preserving: bool) {
    for _ in 0..1 + rng.below(3) {
        let fi = rng.below(m.functions.len());
        let kind = if shape_preserving {
            [0, 4, 5, 6][rng.below(4)]
        } else {
            rng.below(7)
        };
        match kind {
            0 => m.comments.push((fi, 1 + rng.below(3))),
            1 => {
                let clause = pick_clause(rng, m, fi);
                if clause.len() > 1 {
                    let at = rng.below(clause.len());
                    clause.remove(at);
                }
            }
            2 => {
                let clause = pick_clause(rng, m, fi);
                let at = rng.below(clause.len());
                clause[at].text.push_str(" + 1");
                clause[at].edited = true;
            }
            3 => {
                let s = statement(rng, next_id);
                let clause = pick_clause(rng, m, fi);
                let at = rng.below(clause.len() + 1);
                clause.insert(at, s);
            }
            4 => {
                let f = m.functions.remove(fi);
                let to = rng.below(m.functions.len() + 1);
                m.functions.insert(to, f);
            }
            5 => {
                m.layout.indent = [2, 4, 3][rng.below(3)];
                m.layout.blank_between_statements = rng.chance(50);
                m.layout.split_assignments = rng.chance(60);
            }
            _ => {
                let fi = rng.below(m.layout.blank_lines_before.len());
                m.layout.blank_lines_before[fi] = rng.below(4);
            }
        }
    }
}

fn pick_clause<'a>(rng: &mut Rng, m: &'a mut Module, fi: usize) -> &'a mut Vec<Stmt> {
    let clauses = &mut m.functions[fi].clauses;
    let ci = rng.below(clauses.len());
    &mut clauses[ci]
}

fn numbered(text: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:3} {l}\n", i + 1))
        .collect()
}

#[test]
fn breakpoints_on_unchanged_statements_land_on_the_same_statement() {
    let mut failures = Vec::new();
    for case in 0..CASES {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let mut next_id = 0;
        let old_model = generate(&mut rng, &mut next_id);
        let mut new_model = old_model.clone();
        // Every other case has no text snapshot: the structure alone decides.
        let with_text = case % 2 == 0;
        edit(&mut rng, &mut new_model, &mut next_id, !with_text);
        let (old, new) = (render(&old_model), render(&new_model));
        if std::env::var("DUMP_CASE").ok() == Some(case.to_string()) {
            eprintln!(
                "--- old\n{}--- new\n{}",
                numbered(&old.text),
                numbered(&new.text)
            );
        }

        let unchanged: Vec<(u32, u32)> = old
            .lines
            .iter()
            .filter_map(|&(id, old_line)| {
                let still = new_model
                    .functions
                    .iter()
                    .flat_map(|f| f.clauses.iter().flatten())
                    .any(|s| s.id == id && !s.edited);
                let new_line = new.lines.iter().find(|&&(i, _)| i == id).map(|&(_, l)| l)?;
                still.then_some((old_line, new_line))
            })
            .collect();

        let old_exec: Vec<u32> = old.statements.iter().map(|s| s.line).collect();
        let new_exec: Vec<u32> = new.statements.iter().map(|s| s.line).collect();
        let (old_s, new_s) = (
            Structure::new(old.statements),
            Structure::new(new.statements),
        );
        let edit = Edit {
            old_text: with_text.then_some(old.text.as_str()),
            new_text: Some(&new.text),
            old_executable: &old_exec,
            new_executable: &new_exec,
            old_structure: Some(&old_s),
            new_structure: Some(&new_s),
        };
        let lines: Vec<u32> = unchanged.iter().map(|&(o, _)| o).collect();
        for (result, &(old_line, expected)) in remap(&edit, &lines).iter().zip(&unchanged) {
            if result.new_line != Some(expected) || result.status == Status::Removed {
                failures.push(format!(
                    "case {case}: line {old_line} expected {expected}, got {result:?}"
                ));
            }
        }
        // Every breakpoint gets an answer with a reason, whatever happened to it.
        assert!(remap(&edit, &old_exec).iter().all(|r| !r.reason.is_empty()));
    }
    assert!(
        failures.is_empty(),
        "{} failures, first: {:#?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}
