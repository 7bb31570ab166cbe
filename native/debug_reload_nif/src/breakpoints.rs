use debug_reload_core::breakpoints::{self, Edit, Status};
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

/// Maps breakpoint `lines` of one module across an edit. Dirty: a large
/// file's diff can take more than a millisecond.
#[rustler::nif(schedule = "DirtyCpu")]
fn remap_breakpoints(
    old_text: Option<String>,
    new_text: Option<String>,
    old_executable: Vec<u32>,
    new_executable: Vec<u32>,
    lines: Vec<u32>,
) -> Vec<RemapTerm> {
    let edit = Edit {
        old_text: old_text.as_deref(),
        new_text: new_text.as_deref(),
        old_executable: &old_executable,
        new_executable: &new_executable,
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
