use debug_reload_core::breakpoints::{self, Edit, Status};
use debug_reload_core::structure::{Statement, Structure};
use rustler::{NifMap, NifUnitEnum};

#[derive(NifUnitEnum)]
enum StatusTerm {
    Kept,
    Moved,
    Relocated,
    Removed,
}

impl From<Status> for StatusTerm {
    fn from(status: Status) -> Self {
        match status {
            Status::Kept => StatusTerm::Kept,
            Status::Moved => StatusTerm::Moved,
            Status::Relocated => StatusTerm::Relocated,
            Status::Removed => StatusTerm::Removed,
        }
    }
}

#[derive(NifMap)]
struct RemapTerm {
    old_line: u32,
    new_line: Option<u32>,
    status: StatusTerm,
    reason: String,
}

/// `{"name/arity", clause, path, line}` as `DebugReload.ExecutableLines` gives them.
type StatementTerm = (String, u32, Vec<u32>, u32);

fn structure(statements: Vec<StatementTerm>) -> Option<Structure> {
    (!statements.is_empty()).then(|| {
        Structure::new(
            statements
                .into_iter()
                .map(|(function, clause, path, line)| Statement {
                    function,
                    clause,
                    path,
                    line,
                })
                .collect(),
        )
    })
}

/// Maps breakpoint `lines` of one module across an edit. Dirty: a large
/// file's diff can take more than a millisecond.
#[rustler::nif(schedule = "DirtyCpu")]
fn remap_breakpoints(
    old_text: Option<String>,
    new_text: Option<String>,
    old_statements: Vec<StatementTerm>,
    new_statements: Vec<StatementTerm>,
    lines: Vec<u32>,
) -> Vec<RemapTerm> {
    let executable = |s: &[StatementTerm]| {
        let mut lines: Vec<u32> = s.iter().map(|t| t.3).collect();
        lines.sort_unstable();
        lines.dedup();
        lines
    };
    let (old_executable, new_executable) =
        (executable(&old_statements), executable(&new_statements));
    let (old_structure, new_structure) = (structure(old_statements), structure(new_statements));
    let edit = Edit {
        old_text: old_text.as_deref(),
        new_text: new_text.as_deref(),
        old_executable: &old_executable,
        new_executable: &new_executable,
        old_structure: old_structure.as_ref(),
        new_structure: new_structure.as_ref(),
    };
    breakpoints::remap(&edit, &lines)
        .into_iter()
        .map(|r| RemapTerm {
            old_line: r.old_line,
            new_line: r.new_line,
            status: r.status.into(),
            reason: r.reason,
        })
        .collect()
}
