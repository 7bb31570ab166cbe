//! Source text for explanations.

use std::fs;

/// The text of a source file. Invalid UTF-8 (an Erlang source in Latin-1)
/// is replaced, not refused: the text is only searched for references.
pub fn read_text(path: &str) -> Option<String> {
    let bytes = fs::read(path).ok()?;
    Some(match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utf8_and_replaces_invalid_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.erl");
        fs::write(&path, b"-module(a).\n% caf\xe9\n").unwrap();
        let text = read_text(path.to_str().unwrap()).unwrap();
        assert!(text.starts_with("-module(a).") && text.contains("caf\u{FFFD}"));
        assert_eq!(read_text("/nonexistent/file.ex"), None);
    }
}
