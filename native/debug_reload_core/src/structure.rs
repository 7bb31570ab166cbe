//! The structural map of a module: every statement the interpreter can stop
//! at, keyed by function, clause and expression path, read from a beam's
//! debug info. Unlike line numbers, these keys survive reformatting and
//! moving functions around.

use std::collections::HashMap;

/// One executable statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Statement {
    /// `name/arity`.
    pub function: String,
    /// Index of the function clause, from 0.
    pub clause: u32,
    /// Indices through nested bodies: `[2]` is the third expression of the
    /// clause body, `[2, 1, 0]` the first expression of the second nested
    /// clause (of a `case`, `fn`, ...) inside it.
    pub path: Vec<u32>,
    pub line: u32,
}

/// All statements of one module version.
#[derive(Debug, Default, Clone)]
pub struct Structure {
    /// Sorted by line, outermost first on a shared line.
    statements: Vec<Statement>,
    by_key: HashMap<(String, u32, Vec<u32>), usize>,
    /// Function → indices of its statements, in line order.
    by_function: HashMap<String, Vec<usize>>,
}

impl Structure {
    pub fn new(mut statements: Vec<Statement>) -> Self {
        statements.sort_by_key(|s| (s.line, s.path.len()));
        let by_key = statements
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.function.clone(), s.clause, s.path.clone()), i))
            .collect();
        let mut by_function: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, s) in statements.iter().enumerate() {
            by_function.entry(s.function.clone()).or_default().push(i);
        }
        Structure {
            statements,
            by_key,
            by_function,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// The outermost statement that starts on `line`.
    pub fn at_line(&self, line: u32) -> Option<&Statement> {
        let i = self.statements.partition_point(|s| s.line < line);
        self.statements.get(i).filter(|s| s.line == line)
    }

    /// The outermost statement that starts last at or before `line`.
    pub fn enclosing(&self, line: u32) -> Option<&Statement> {
        let end = self.statements.partition_point(|s| s.line <= line);
        let last_line = self.statements[..end].last()?.line;
        self.statements[..end].iter().find(|s| s.line == last_line)
    }

    /// The first line after `line` where another statement starts.
    pub fn next_start_after(&self, line: u32) -> Option<u32> {
        let idx = self.statements.partition_point(|s| s.line <= line);
        self.statements.get(idx).map(|s| s.line)
    }

    pub fn has_function(&self, function: &str) -> bool {
        self.by_function.contains_key(function)
    }

    pub fn lookup(&self, function: &str, clause: u32, path: &[u32]) -> Option<&Statement> {
        self.by_key
            .get(&(function.to_string(), clause, path.to_vec()))
            .map(|&i| &self.statements[i])
    }

    /// Statements of one clause, in line order.
    pub fn clause(&self, function: &str, clause: u32) -> Vec<&Statement> {
        self.statements
            .iter()
            .filter(|s| s.function == function && s.clause == clause)
            .collect()
    }

    /// Statements of every clause of `function`, in line order.
    pub fn function(&self, function: &str) -> Vec<&Statement> {
        self.statements
            .iter()
            .filter(|s| s.function == function)
            .collect()
    }
}

/// True when the clause has the same statements (by path) in both versions:
/// its code may have been reformatted or moved, but not restructured.
pub fn same_shape(old: &Structure, new: &Structure, function: &str, clause: u32) -> bool {
    let paths = |s: &Structure| {
        let mut p: Vec<Vec<u32>> = s
            .clause(function, clause)
            .into_iter()
            .map(|s| s.path.clone())
            .collect();
        p.sort();
        p
    };
    paths(old) == paths(new)
}

/// Test shorthand for a statement.
#[cfg(test)]
pub(crate) fn st(function: &str, clause: u32, path: &[u32], line: u32) -> Statement {
    Statement {
        function: function.into(),
        clause,
        path: path.to_vec(),
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_outermost_statement_on_a_line_and_looks_up_keys() {
        let s = Structure::new(vec![
            st("f/1", 0, &[0], 3),
            st("f/1", 0, &[0, 0, 0], 3),
            st("f/1", 0, &[1], 4),
        ]);
        assert_eq!(s.at_line(3).unwrap().path, vec![0]);
        assert_eq!(s.lookup("f/1", 0, &[1]).unwrap().line, 4);
        assert!(s.has_function("f/1"));
        assert!(!s.has_function("g/0"));
        assert_eq!(s.clause("f/1", 0).len(), 3);
    }

    #[test]
    fn shape_ignores_lines_but_not_paths() {
        let old = Structure::new(vec![st("f/1", 0, &[0], 3), st("f/1", 0, &[1], 4)]);
        let moved = Structure::new(vec![st("f/1", 0, &[0], 10), st("f/1", 0, &[1], 12)]);
        let grown = Structure::new(vec![
            st("f/1", 0, &[0], 3),
            st("f/1", 0, &[1], 4),
            st("f/1", 0, &[2], 5),
        ]);
        assert!(same_shape(&old, &moved, "f/1", 0));
        assert!(!same_shape(&old, &grown, "f/1", 0));
    }
}
