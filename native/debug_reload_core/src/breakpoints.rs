//! Breakpoint remapping: where does each breakpoint go after an edit?
//!
//! The interpreter keys breakpoints by `{Module, Line}`, so an edit that
//! shifts lines leaves them on the wrong statement. This module maps every
//! old breakpoint line onto the new source using a patience diff of the two
//! texts, then snaps the result onto a line that holds executable code.
//! Every input line gets exactly one answer, with a reason: none is dropped.

use crate::structure::{same_shape, Structure};
use serde::Serialize;
use similar::{Algorithm, DiffOp, TextDiff};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Same line, still executable.
    Kept,
    /// Its statement is now on another line.
    Moved,
    /// Its statement is gone (or never was code); it went to the next one.
    Relocated,
    /// Nowhere sensible to go.
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Remap {
    pub old_line: u32,
    pub new_line: Option<u32>,
    pub status: Status,
    pub reason: String,
}

/// What the remapper knows about one module's edit.
#[derive(Debug, Default, Clone, Copy)]
pub struct Edit<'a> {
    /// The source as it was when the old code was loaded, if snapshotted.
    pub old_text: Option<&'a str>,
    pub new_text: Option<&'a str>,
    /// Executable lines of the old code; empty when unknown.
    pub old_executable: &'a [u32],
    /// Executable lines of the new code, where a breakpoint can trigger.
    pub new_executable: &'a [u32],
    /// Statements of the old and new code, from the beams' debug info.
    pub old_structure: Option<&'a Structure>,
    pub new_structure: Option<&'a Structure>,
}

/// Where an old line ended up in the new text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// The line itself survived unchanged at this new line.
    Same(u32),
    /// The line was rewritten; this is its best counterpart.
    Edited(u32),
    /// The line was deleted; this is the new line that now follows the gap.
    Deleted(u32),
    /// The same line, unchanged, elsewhere: its code was moved.
    Moved(u32),
}

pub fn remap(edit: &Edit<'_>, lines: &[u32]) -> Vec<Remap> {
    let positions = LinePositions::new(edit.old_text, edit.new_text);
    let sorted = |lines: &[u32]| {
        let mut lines = lines.to_vec();
        lines.sort_unstable();
        lines.dedup();
        lines
    };
    let (old_exec, new_exec) = (sorted(edit.old_executable), sorted(edit.new_executable));

    let texts = Texts {
        old: edit
            .old_text
            .map(|t| t.lines().collect())
            .unwrap_or_default(),
        new: edit
            .new_text
            .map(|t| t.lines().collect())
            .unwrap_or_default(),
    };

    lines
        .iter()
        .map(|&line| {
            let position = positions.locate(line);
            structural(line, position, edit, &texts, &new_exec)
                .unwrap_or_else(|| resolve(line, position, edit, &old_exec, &new_exec))
        })
        .collect()
}

struct Texts<'a> {
    old: Vec<&'a str>,
    new: Vec<&'a str>,
}

/// A statement's text and its counterpart's must share at least this much.
const STATEMENT_SIMILARITY: f32 = 0.75;

fn statement_similarity(a: &str, b: &str) -> f32 {
    dice(a, b)
}

impl Texts<'_> {
    /// The text of the statement starting at `line`: that line plus the
    /// continuation lines indented deeper than it (as formatted Elixir and
    /// Erlang lay out a statement split over lines), up to the next
    /// statement, with white space collapsed.
    fn statement(lines: &[&str], structure: &Structure, line: u32) -> Option<String> {
        let start = (line as usize).checked_sub(1)?;
        let first = lines.get(start)?;
        let indent = |l: &str| l.len() - l.trim_start().len();
        let end = structure
            .next_start_after(line)
            .map_or(lines.len(), |next| (next as usize - 1).min(lines.len()));
        let continuation = lines[start + 1..end.max(start + 1)]
            .iter()
            .take_while(|l| !l.trim().is_empty() && indent(l) > indent(first));
        let text = std::iter::once(first)
            .chain(continuation)
            .flat_map(|l| l.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        (!text.is_empty()).then_some(text)
    }

    fn old_statement(&self, structure: &Structure, line: u32) -> Option<String> {
        Self::statement(&self.old, structure, line)
    }

    fn new_statement(&self, structure: &Structure, line: u32) -> Option<String> {
        Self::statement(&self.new, structure, line)
    }
}

/// Places a breakpoint by its statement: function, clause and expression
/// path. `None` leaves the decision to the text diff, which is right for a
/// line that is unchanged and still code, or when no structure is known.
fn structural(
    old_line: u32,
    position: Position,
    edit: &Edit<'_>,
    texts: &Texts<'_>,
    new_exec: &[u32],
) -> Option<Remap> {
    let (old_s, new_s) = (edit.old_structure?, edit.new_structure?);
    let statement = old_s.at_line(old_line)?;
    // Without an old text, "same line" only means "same number".
    if let (Position::Same(n) | Position::Moved(n), Some(_)) = (position, edit.old_text) {
        if new_exec.binary_search(&n).is_ok() {
            return None;
        }
    }

    let function = statement.function.as_str();
    if !new_s.has_function(function) {
        return Some(Remap {
            old_line,
            new_line: None,
            status: Status::Removed,
            reason: format!("function {function} was removed"),
        });
    }
    let clause = new_s.clause(function, statement.clause);
    let Some(last) = clause.last() else {
        let first = new_s.function(function)[0].line;
        let why = format!(
            "clause {} of {function} was removed; moved to the first statement of {function}",
            statement.clause + 1
        );
        return Some(placed(old_line, first, Status::Relocated, why));
    };

    // The statement whose whole text (over however many lines it spans now)
    // is most like the old one, if clearly so: survives reformatting.
    if let Some(text) = texts.old_statement(old_s, old_line) {
        let mut scored: Vec<(f32, u32)> = clause
            .iter()
            .filter_map(|s| {
                Some((
                    statement_similarity(&text, &texts.new_statement(new_s, s.line)?),
                    s.line,
                ))
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let clear = match scored[..] {
            [(best, _), (second, _), ..] => best >= STATEMENT_SIMILARITY && best > second + 0.05,
            [(best, _)] => best >= STATEMENT_SIMILARITY,
            [] => false,
        };
        if clear {
            let why = format!("followed its statement in {function}");
            return Some(placed(old_line, scored[0].1, Status::Moved, why));
        }
    }
    if let Position::Edited(n) = position {
        // The rewritten line may be the second line of a statement that
        // now spans several: the statement is the one that starts last
        // before it, if that one is in this clause.
        let enclosing = new_s
            .enclosing(n)
            .filter(|s| s.function == function && s.clause == statement.clause);
        if let Some(s) = enclosing {
            return Some(placed(
                old_line,
                s.line,
                Status::Moved,
                "its line was edited".into(),
            ));
        }
    }
    if same_shape(old_s, new_s, function, statement.clause) {
        if let Some(s) = new_s.lookup(function, statement.clause, &statement.path) {
            let why = format!("followed its statement in {function} across the reformat");
            return Some(placed(old_line, s.line, Status::Moved, why));
        }
    }

    let anchor = match position {
        Position::Same(n) | Position::Edited(n) | Position::Deleted(n) | Position::Moved(n) => n,
    };
    let next = clause
        .iter()
        .map(|s| s.line)
        .find(|&l| l >= anchor)
        .unwrap_or(last.line);
    let why = format!(
        "the statement at line {old_line} was deleted; moved to the next statement of {function}"
    );
    Some(placed(old_line, next, Status::Relocated, why))
}

/// A decided placement; staying on the same line is reported as kept.
fn placed(old_line: u32, new_line: u32, status: Status, reason: String) -> Remap {
    let (status, reason) = match status {
        Status::Moved if new_line == old_line => (Status::Kept, reason),
        Status::Moved => (status, format!("{reason}; now line {new_line}")),
        _ => (status, reason),
    };
    Remap {
        old_line,
        new_line: Some(new_line),
        status,
        reason,
    }
}

fn resolve(
    old_line: u32,
    position: Position,
    edit: &Edit<'_>,
    old_exec: &[u32],
    new_exec: &[u32],
) -> Remap {
    let had_code = edit.old_executable.is_empty() || old_exec.binary_search(&old_line).is_ok();
    let (target, why) = match position {
        Position::Same(n) if !had_code => (n, Why::NoCode),
        Position::Same(n) => (n, Why::Followed),
        Position::Edited(n) => (n, Why::Edited),
        Position::Deleted(n) => (n, Why::Deleted),
        Position::Moved(n) => (n, Why::Moved),
    };

    match next_executable(new_exec, target) {
        None => Remap {
            old_line,
            new_line: None,
            status: Status::Removed,
            reason: format!(
                "{}; no executable line follows it in the new code",
                why.describe(old_line)
            ),
        },
        Some(new_line) => {
            let exact = new_line == target;
            let (status, reason) = match (why, exact) {
                (Why::Followed, true) if new_line == old_line => {
                    (Status::Kept, "line unchanged".to_string())
                }
                (Why::Followed, true) => (
                    Status::Moved,
                    format!("lines above it changed; its statement moved from line {old_line} to {new_line}"),
                ),
                (Why::Moved, true) => (
                    Status::Moved,
                    format!("its code was moved; it followed from line {old_line} to {new_line}"),
                ),
                (Why::Edited, true) if new_line == old_line => {
                    (Status::Kept, "its line was edited in place".to_string())
                }
                (Why::Edited, true) => (
                    Status::Moved,
                    format!("its line was edited and is now line {new_line}"),
                ),
                (why, _) => (
                    Status::Relocated,
                    format!("{}; moved to the next executable line {new_line}", why.describe(old_line)),
                ),
            };
            Remap {
                old_line,
                new_line: Some(new_line),
                status,
                reason,
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    Followed,
    Moved,
    Edited,
    Deleted,
    NoCode,
}

impl Why {
    fn describe(self, old_line: u32) -> String {
        match self {
            Why::Followed | Why::Moved => {
                format!("line {old_line} no longer holds executable code")
            }
            Why::Edited => format!("line {old_line} was edited and holds no executable code now"),
            Why::Deleted => format!("the statement at line {old_line} was deleted"),
            Why::NoCode => format!("line {old_line} had no executable code, so it never triggered"),
        }
    }
}

fn next_executable(sorted: &[u32], from: u32) -> Option<u32> {
    let idx = sorted.partition_point(|&l| l < from);
    sorted.get(idx).copied()
}

/// A table from old line numbers to positions in the new text.
struct LinePositions {
    /// Indexed by old line - 1. `None` when there is no old text to diff.
    table: Option<Vec<Position>>,
}

impl LinePositions {
    fn new(old_text: Option<&str>, new_text: Option<&str>) -> Self {
        let table = match (old_text, new_text) {
            (Some(old), Some(new)) => Some(Self::build(old, new)),
            _ => None,
        };
        LinePositions { table }
    }

    fn build(old: &str, new: &str) -> Vec<Position> {
        let diff = TextDiff::configure()
            .algorithm(Algorithm::Patience)
            .diff_lines(old, new);
        let old_lines: Vec<&str> = old.lines().collect();
        let new_lines: Vec<&str> = new.lines().collect();
        let mut table = Vec::new();
        let mut new_matched = vec![false; new_lines.len()];
        for op in diff.ops() {
            match *op {
                DiffOp::Equal { new_index, len, .. } => {
                    new_matched[new_index..new_index + len].fill(true);
                    table.extend((0..len).map(|i| Position::Same(line_no(new_index + i))))
                }
                DiffOp::Delete {
                    old_len, new_index, ..
                } => table.extend((0..old_len).map(|_| Position::Deleted(line_no(new_index)))),
                DiffOp::Insert { .. } => {}
                DiffOp::Replace {
                    old_index,
                    old_len,
                    new_index,
                    new_len,
                } => table.extend(pair_rewritten(
                    &old_lines[old_index..old_index + old_len],
                    &new_lines[new_index..new_index + new_len],
                    new_index,
                )),
            }
        }
        follow_moved_lines(&mut table, &old_lines, &new_lines, &new_matched);
        table
    }

    fn locate(&self, old_line: u32) -> Position {
        match &self.table {
            None => Position::Same(old_line),
            Some(table) => match table.get((old_line as usize).wrapping_sub(1)) {
                Some(position) => *position,
                // Past the end of the old text (or line 0): treat as a line
                // with no code right after the end of the new text.
                None => Position::Deleted(u32::try_from(table.len()).unwrap_or(u32::MAX)),
            },
        }
    }
}

/// A diff sees a moved function as a deletion plus an insertion. A line
/// that the diff lost, which occurs exactly once in each text and appears
/// among the new text's unmatched lines, is the same statement moved.
fn follow_moved_lines(table: &mut [Position], old: &[&str], new: &[&str], new_matched: &[bool]) {
    let (old_counts, new_counts) = (line_counts(old), line_counts(new));

    for (i, position) in table.iter_mut().enumerate() {
        if matches!(position, Position::Same(_) | Position::Moved(_)) {
            continue;
        }
        let Some(text) = old.get(i).map(|l| l.trim()) else {
            continue;
        };
        if !distinctive(text) || old_counts.get(text).map(|c| c.0) != Some(1) {
            continue;
        }
        if let Some(&(1, j)) = new_counts.get(text) {
            if !new_matched[j] {
                *position = Position::Moved(line_no(j));
            }
        }
    }
}

/// Trimmed line → (occurrences, index of the first one).
fn line_counts<'a>(lines: &[&'a str]) -> std::collections::HashMap<&'a str, (usize, usize)> {
    let mut counts = std::collections::HashMap::new();
    for (i, line) in lines.iter().enumerate() {
        counts.entry(line.trim()).or_insert((0, i)).0 += 1;
    }
    counts
}

/// Lines like `end`, `do` or `)` say nothing about which statement they are.
fn distinctive(line: &str) -> bool {
    line.chars().filter(|c| c.is_alphanumeric()).count() >= 4
        && !matches!(line, "else" | "after" | "rescue" | "catch")
}

/// A rewritten line and its counterpart must share at least this much.
const MIN_SIMILARITY: f32 = 0.5;

/// Beyond this many candidate pairs in one hunk, similarity is too costly.
const MAX_PAIRINGS: usize = 4_096;

/// Pairs old lines of a rewritten hunk with new lines of that hunk: the
/// order-preserving pairing with the greatest total similarity (a weighted
/// longest common subsequence), so that one deleted line that resembles a
/// later one cannot push every following pair out of place. An old line
/// left unpaired was deleted in favour of what follows it.
fn pair_rewritten(old: &[&str], new: &[&str], new_index: usize) -> Vec<Position> {
    if old.len().saturating_mul(new.len()) > MAX_PAIRINGS {
        // A huge rewrite (a reformat of the whole file, say): pair by position
        // rather than spend quadratic time on similarity.
        return (0..old.len())
            .map(|i| Position::Edited(line_no(new_index + i.min(new.len().saturating_sub(1)))))
            .collect();
    }
    let (n, m) = (old.len(), new.len());
    let sim: Vec<Vec<f32>> = old
        .iter()
        .map(|o| new.iter().map(|nl| similarity(o, nl)).collect())
        .collect();
    // best[i][j]: best total for old[i..] and new[j..].
    let mut best = vec![vec![0f32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            let pair = if sim[i][j] >= MIN_SIMILARITY {
                sim[i][j] + best[i + 1][j + 1]
            } else {
                0.0
            };
            best[i][j] = pair.max(best[i + 1][j]).max(best[i][j + 1]);
        }
    }
    let mut positions = Vec::with_capacity(n);
    let (mut i, mut j) = (0, 0);
    while i < n {
        if j < m && sim[i][j] >= MIN_SIMILARITY && best[i][j] == sim[i][j] + best[i + 1][j + 1] {
            positions.push(Position::Edited(line_no(new_index + j)));
            i += 1;
            j += 1;
        } else if j < m && best[i][j] == best[i][j + 1] {
            j += 1;
        } else {
            positions.push(Position::Deleted(line_no(new_index + j)));
            i += 1;
        }
    }
    positions
}

fn similarity(a: &str, b: &str) -> f32 {
    dice(a.trim(), b.trim())
}

/// Sørensen–Dice coefficient over character bigrams: linear time, so a
/// hunk's worth of pairs stays cheap (a character diff per pair does not).
fn dice(a: &str, b: &str) -> f32 {
    if a == b {
        return 1.0;
    }
    let bigrams = |s: &str| {
        let chars: Vec<char> = s.chars().collect();
        let mut grams: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
        grams.sort_unstable();
        grams
    };
    let (x, y) = (bigrams(a), bigrams(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    // Multiset intersection of two sorted lists.
    let (mut i, mut j, mut shared) = (0, 0, 0usize);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
        }
    }
    (2 * shared) as f32 / (x.len() + y.len()) as f32
}

fn line_no(index: usize) -> u32 {
    u32::try_from(index + 1).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(old: &str, new: &str, old_exec: &[u32], new_exec: &[u32], lines: &[u32]) -> Vec<Remap> {
        let edit = Edit {
            old_text: Some(old),
            new_text: Some(new),
            old_executable: old_exec,
            new_executable: new_exec,
            ..Edit::default()
        };
        remap(&edit, lines)
    }

    const OLD: &str = "defmodule M do\n  def f(a, b) do\n    x = a + b\n    x * 2\n  end\nend\n";

    #[test]
    fn unchanged_line_is_kept() {
        let r = run(OLD, OLD, &[3, 4], &[3, 4], &[3]);
        assert_eq!(r[0].status, Status::Kept);
        assert_eq!(r[0].new_line, Some(3));
    }

    #[test]
    fn lines_inserted_above_move_the_breakpoint() {
        let new = "defmodule M do\n  @moduledoc false\n\n  def f(a, b) do\n    x = a + b\n    x * 2\n  end\nend\n";
        let r = run(OLD, new, &[3, 4], &[5, 6], &[3, 4]);
        assert_eq!(r[0].new_line, Some(5));
        assert_eq!(r[0].status, Status::Moved);
        assert_eq!(r[1].new_line, Some(6));
    }

    #[test]
    fn an_edited_line_keeps_its_breakpoint() {
        let new = OLD.replace("x = a + b", "x = a + b + 1");
        let r = run(OLD, &new, &[3, 4], &[3, 4], &[3]);
        assert_eq!(r[0].status, Status::Kept);
        assert_eq!(r[0].new_line, Some(3));
    }

    #[test]
    fn an_edited_line_inside_a_larger_rewrite_is_found_by_similarity() {
        let new = OLD.replace(
            "    x = a + b\n",
            "    # a comment\n    # another\n    x = a + b + 1\n",
        );
        let r = run(OLD, &new, &[3, 4], &[5, 6], &[3, 4]);
        assert_eq!(r[0].new_line, Some(5), "{:?}", r[0]);
        assert_eq!(r[0].status, Status::Moved);
        assert_eq!(r[1].new_line, Some(6));
    }

    #[test]
    fn breakpoints_follow_a_function_moved_elsewhere_in_the_file() {
        let old = "defmodule M do\n  def a do\n    :alpha_one\n  end\n\n  def b(x) do\n    y = x * 3\n    y - 1\n  end\nend\n";
        let new = "defmodule M do\n  def b(x) do\n    y = x * 3\n    y - 1\n  end\n\n  def a do\n    :alpha_one\n  end\nend\n";
        let r = run(old, new, &[3, 7, 8], &[3, 4, 8], &[7, 8, 3]);
        let lines: Vec<_> = r.iter().map(|m| m.new_line).collect();
        assert_eq!(lines, vec![Some(3), Some(4), Some(8)], "{r:?}");
        assert!(r.iter().all(|m| m.status == Status::Moved), "{r:?}");
    }

    #[test]
    fn a_deleted_statement_relocates_to_the_next_one() {
        let new = OLD
            .replace("    x = a + b\n", "    x = 1\n")
            .replace("    x = 1\n", "");
        let r = run(OLD, &new, &[3, 4], &[3], &[3]);
        assert_eq!(r[0].status, Status::Relocated);
        assert_eq!(r[0].new_line, Some(3));
        assert!(r[0].reason.contains("deleted"), "{}", r[0].reason);
    }

    #[test]
    fn nothing_executable_after_means_removed_with_reason() {
        let new = "defmodule M do\nend\n";
        let r = run(OLD, new, &[3, 4], &[], &[3]);
        assert_eq!(r[0].status, Status::Removed);
        assert_eq!(r[0].new_line, None);
        assert!(!r[0].reason.is_empty());
    }

    #[test]
    fn a_breakpoint_on_a_blank_line_is_reported_and_moved() {
        let r = run(OLD, OLD, &[3, 4], &[3, 4], &[2]);
        assert_eq!(r[0].status, Status::Relocated);
        assert_eq!(r[0].new_line, Some(3));
        assert!(r[0].reason.contains("never triggered"), "{}", r[0].reason);
    }

    #[test]
    fn without_old_text_lines_stay_where_code_is() {
        let edit = Edit {
            old_text: None,
            new_text: Some(OLD),
            old_executable: &[],
            new_executable: &[3, 4],
            ..Edit::default()
        };
        let r = remap(&edit, &[4, 5]);
        assert_eq!(r[0].status, Status::Kept);
        assert_eq!(r[1].status, Status::Removed);
    }

    #[test]
    fn every_line_gets_an_answer() {
        let r = run(OLD, "", &[3, 4], &[], &[0, 1, 3, 99]);
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|m| !m.reason.is_empty()));
    }
}

#[cfg(test)]
mod structural_tests {
    use super::*;
    use crate::structure::{st, Statement};

    fn remap_with(
        old: (&str, Vec<Statement>),
        new: (&str, Vec<Statement>),
        lines: &[u32],
        with_text: bool,
    ) -> Vec<Remap> {
        let old_exec: Vec<u32> = old.1.iter().map(|s| s.line).collect();
        let new_exec: Vec<u32> = new.1.iter().map(|s| s.line).collect();
        let (old_s, new_s) = (Structure::new(old.1), Structure::new(new.1));
        let edit = Edit {
            old_text: with_text.then_some(old.0),
            new_text: Some(new.0),
            old_executable: &old_exec,
            new_executable: &new_exec,
            old_structure: Some(&old_s),
            new_structure: Some(&new_s),
        };
        remap(&edit, lines)
    }

    const OLD: &str = "defmodule M do\n  def f(x) do\n    a = x + 1\n    b = a * 2\n    b - 3\n  end\n\n  def g, do: :ok\nend\n";

    fn old_structure() -> Vec<Statement> {
        vec![
            st("f/1", 0, &[0], 3),
            st("f/1", 0, &[1], 4),
            st("f/1", 0, &[2], 5),
            st("g/0", 0, &[0], 8),
        ]
    }

    #[test]
    fn a_reformatted_file_keeps_breakpoints_on_their_statements() {
        let new = "defmodule M do\n  def f(x) do\n    a =\n      x +\n        1\n\n    b =\n      a * 2\n\n    b - 3\n  end\n\n  def g do\n    :ok\n  end\nend\n";
        let structure = vec![
            st("f/1", 0, &[0], 3),
            st("f/1", 0, &[1], 7),
            st("f/1", 0, &[2], 10),
            st("g/0", 0, &[0], 14),
        ];
        for with_text in [true, false] {
            let r = remap_with(
                (OLD, old_structure()),
                (new, structure.clone()),
                &[3, 4, 5, 8],
                with_text,
            );
            let lines: Vec<_> = r.iter().map(|m| m.new_line).collect();
            assert_eq!(
                lines,
                vec![Some(3), Some(7), Some(10), Some(14)],
                "text: {with_text}: {r:?}"
            );
        }
    }

    #[test]
    fn a_deleted_statement_goes_to_the_next_statement_of_its_clause() {
        let new = "defmodule M do\n  def f(x) do\n    a = x + 1\n    b - 3\n  end\n\n  def g, do: :ok\nend\n";
        let structure = vec![
            st("f/1", 0, &[0], 3),
            st("f/1", 0, &[1], 4),
            st("g/0", 0, &[0], 7),
        ];
        let r = remap_with((OLD, old_structure()), (new, structure), &[4], true);
        assert_eq!(r[0].new_line, Some(4));
        assert_eq!(r[0].status, Status::Relocated);
        assert!(r[0].reason.contains("f/1"), "{}", r[0].reason);
    }

    #[test]
    fn a_removed_function_removes_its_breakpoints_naming_it() {
        let new = "defmodule M do\n  def g, do: :ok\nend\n";
        let r = remap_with(
            (OLD, old_structure()),
            (new, vec![st("g/0", 0, &[0], 2)]),
            &[4, 8],
            true,
        );
        assert_eq!(r[0].status, Status::Removed);
        assert_eq!(r[0].reason, "function f/1 was removed");
        assert_eq!(r[1].new_line, Some(2));
        assert_eq!(r[1].status, Status::Moved);
    }
}
