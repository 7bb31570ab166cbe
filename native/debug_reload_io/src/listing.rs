//! Directory listings remembered by the directory's identity.
//!
//! Adding, removing or renaming an entry changes its directory's
//! modification and change times, so while a directory's identity is the
//! one its listing was read with, the listing still holds. Reading a large
//! directory costs far more than asking for its metadata (on ext4, listing
//! 650 entries takes about half a millisecond, about as long as the
//! metadata of all of them), and a source tree's directories rarely change
//! between two reloads. The same settling rule as for file digests
//! applies (see [`crate::cache`]): a listing read less than
//! [`crate::cache::SETTLE`] after the directory's last change is not
//! remembered.

use crate::cache::{Identity, Memory};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// What an entry is, as the listing reports it (a symlink is not followed,
/// so a link cycle cannot make a walk loop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink,
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: OsString,
    pub path: PathBuf,
    pub kind: Kind,
}

type Listing = Arc<Vec<Entry>>;

static LISTINGS: Memory<PathBuf, Listing> = Memory::new();

/// The entries of `dir`, in no particular order: remembered, or read.
/// Entries whose type cannot be told are left out, as a walk would skip
/// them.
pub fn read(dir: &Path) -> io::Result<Listing> {
    let identity = match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Identity::of(&meta),
        Ok(_) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
        Err(e) => {
            LISTINGS.lock().forget(dir);
            return Err(e);
        }
    };
    if let Some(entries) = LISTINGS.lock().get(dir, identity) {
        return Ok(Arc::clone(entries));
    }
    let now = SystemTime::now();
    let entries = Arc::new(read_entries(dir)?);
    LISTINGS
        .lock()
        .put(dir.to_path_buf(), identity, Arc::clone(&entries), now);
    Ok(entries)
}

fn read_entries(dir: &Path) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir)?.filter_map(Result::ok) {
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let kind = if file_type.is_dir() {
            Kind::Dir
        } else if file_type.is_file() {
            Kind::File
        } else if file_type.is_symlink() {
            Kind::Symlink
        } else {
            Kind::Other
        };
        entries.push(Entry {
            name: entry.file_name(),
            path: entry.path(),
            kind,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::SETTLE;
    use std::time::Duration;

    fn names(listing: &[Entry]) -> Vec<String> {
        let mut names: Vec<String> = listing
            .iter()
            .map(|e| e.name.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn remembered(dir: &Path) -> bool {
        LISTINGS.lock().holds(dir)
    }

    #[test]
    fn a_settled_directory_is_remembered_until_an_entry_comes_or_goes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("lib");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("a.ex"), "a").unwrap();
        fs::create_dir(dir.join("nested")).unwrap();
        let changed = std::time::Instant::now();

        // Changed just now: read, not remembered (unless a stalled machine
        // let it settle already).
        assert_eq!(names(&read(&dir).unwrap()), ["a.ex", "nested"]);
        if changed.elapsed() < SETTLE {
            assert!(!remembered(&dir));
        }

        std::thread::sleep(SETTLE + Duration::from_millis(50));
        let first = read(&dir).unwrap();
        assert!(remembered(&dir));
        assert!(Arc::ptr_eq(&first, &read(&dir).unwrap()));
        let a = first.iter().find(|e| e.name == "a.ex").unwrap();
        assert_eq!((a.kind, a.path.clone()), (Kind::File, dir.join("a.ex")));
        let nested = first.iter().find(|e| e.name == "nested").unwrap();
        assert_eq!(nested.kind, Kind::Dir);

        // Writing into an existing file leaves the listing as it is.
        fs::write(dir.join("a.ex"), "a2").unwrap();
        assert!(Arc::ptr_eq(&first, &read(&dir).unwrap()));

        fs::write(dir.join("b.ex"), "b").unwrap();
        assert_eq!(names(&read(&dir).unwrap()), ["a.ex", "b.ex", "nested"]);
        fs::rename(dir.join("b.ex"), dir.join("c.ex")).unwrap();
        assert_eq!(names(&read(&dir).unwrap()), ["a.ex", "c.ex", "nested"]);
        fs::remove_file(dir.join("a.ex")).unwrap();
        assert_eq!(names(&read(&dir).unwrap()), ["c.ex", "nested"]);
    }

    #[test]
    fn a_directory_that_went_away_is_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gone");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("a.ex"), "a").unwrap();
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        read(&dir).unwrap();
        assert!(remembered(&dir));
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(read(&dir).unwrap_err().kind(), io::ErrorKind::NotFound);
        assert!(!remembered(&dir));
    }

    #[test]
    fn a_file_is_not_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("a.ex");
        fs::write(&file, "a").unwrap();
        assert_eq!(
            read(&file).unwrap_err().kind(),
            io::ErrorKind::NotADirectory
        );
    }
}
