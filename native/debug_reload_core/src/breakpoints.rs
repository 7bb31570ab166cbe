//! Breakpoint remapping: where does each breakpoint go after an edit?
//!
//! The interpreter keys breakpoints by `{Module, Line}`, so an edit that
//! shifts lines leaves them on the wrong statement. This module maps every
//! old breakpoint line onto the new source using a patience diff of the two
//! texts, then snaps the result onto a line that holds executable code.
//! Every input line gets exactly one answer, with a reason: none is dropped.

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
    let mut new_exec = edit.new_executable.to_vec();
    new_exec.sort_unstable();
    new_exec.dedup();

    lines
        .iter()
        .map(|&line| resolve(line, positions.locate(line), edit, &new_exec))
        .collect()
}

fn resolve(old_line: u32, position: Position, edit: &Edit<'_>, new_exec: &[u32]) -> Remap {
    let had_code = edit.old_executable.is_empty() || edit.old_executable.contains(&old_line);
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

/// Pairs each old line of a rewritten hunk with the most similar new line
/// of that hunk, keeping the order of lines. An old line with no similar
/// counterpart was deleted in favour of what follows it.
fn pair_rewritten(old: &[&str], new: &[&str], new_index: usize) -> Vec<Position> {
    if old.len().saturating_mul(new.len()) > MAX_PAIRINGS {
        // A huge rewrite (a reformat of the whole file, say): pair by position
        // rather than spend quadratic time on similarity.
        return (0..old.len())
            .map(|i| Position::Edited(line_no(new_index + i.min(new.len().saturating_sub(1)))))
            .collect();
    }
    let mut next_free = 0;
    old.iter()
        .map(|old_line| {
            let best = (next_free..new.len())
                .map(|j| (j, similarity(old_line, new[j])))
                .filter(|&(_, score)| score >= MIN_SIMILARITY)
                .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
            match best {
                Some((j, _)) => {
                    next_free = j + 1;
                    Position::Edited(line_no(new_index + j))
                }
                None => Position::Deleted(line_no(new_index + next_free)),
            }
        })
        .collect()
}

fn similarity(a: &str, b: &str) -> f32 {
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() || b.is_empty() {
        return if a == b { 1.0 } else { 0.0 };
    }
    TextDiff::from_chars(a, b).ratio()
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
