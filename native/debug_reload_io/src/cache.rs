//! Content digests remembered by file identity, so that scanning a
//! project whose files did not change reads metadata only.
//!
//! A remembered digest is used only while the file's identity (device,
//! inode, size, modification and change times) is the one it was taken
//! with. File times come from a coarse clock, so a second write within
//! the same tick can leave them unchanged: a digest taken less than
//! [`SETTLE`] after the file's last change is not remembered (the file is
//! read again next time), as git does for its "racily clean" entries.
//! The change time cannot be set from user space, so a file put back
//! with an old modification time still looks changed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long after its last change a file's digest may be remembered.
pub const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

struct Entry {
    identity: Identity,
    digest: String,
}

fn cache() -> &'static Mutex<HashMap<String, Entry>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

/// The digest of the file at `path`: remembered, or computed by `digest`.
pub fn digest_with(path: &str, digest: impl Fn(&Path) -> io::Result<String>) -> io::Result<String> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) => {
            forget(path);
            return Err(e);
        }
    };
    let identity = identity(&meta);
    if let Some(entry) = lock().get(path) {
        if Some(entry.identity) == identity {
            return Ok(entry.digest.clone());
        }
    }
    let now = SystemTime::now();
    let value = digest(Path::new(path))?;
    let mut cache = lock();
    match identity {
        Some(id) if settled(id, now) => {
            cache.insert(
                path.to_string(),
                Entry {
                    identity: id,
                    digest: value.clone(),
                },
            );
        }
        _ => {
            cache.remove(path);
        }
    }
    Ok(value)
}

fn forget(path: &str) {
    lock().remove(path);
}

// A poisoned lock only means another scan panicked mid-insert; the map
// itself is still a valid cache.
fn lock() -> std::sync::MutexGuard<'static, HashMap<String, Entry>> {
    cache().lock().unwrap_or_else(|e| e.into_inner())
}

fn settled(id: Identity, now: SystemTime) -> bool {
    let now_ns = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let settle_ns = SETTLE.as_nanos() as i128;
    id.ctime_ns + settle_ns < now_ns && id.mtime_ns + settle_ns < now_ns
}

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    let ns = |secs: i64, nanos: i64| secs as i128 * 1_000_000_000 + nanos as i128;
    Some(Identity {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
    })
}

// Without a change time nothing is remembered.
#[cfg(not(unix))]
fn identity(_meta: &fs::Metadata) -> Option<Identity> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn counting(calls: &Cell<u32>) -> impl Fn(&Path) -> io::Result<String> + '_ {
        move |p| {
            calls.set(calls.get() + 1);
            fs::read_to_string(p)
        }
    }

    fn age(path: &Path, secs: u64) {
        let old = SystemTime::now() - Duration::from_secs(secs);
        let file = fs::File::options().write(true).open(path).unwrap();
        file.set_modified(old).unwrap();
    }

    #[test]
    fn a_settled_unchanged_file_is_read_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a.ex");
        fs::write(&path, "one").unwrap();
        age(&path, 10);
        let key = path.to_string_lossy().into_owned();
        let calls = Cell::new(0);
        // The change time is recent (set_modified changes it): read each time.
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(calls.get(), 2);
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(calls.get(), 3);
    }

    #[test]
    fn a_same_size_rewrite_with_the_old_modification_time_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("b.ex");
        fs::write(&path, "one").unwrap();
        age(&path, 10);
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        let key = path.to_string_lossy().into_owned();
        let calls = Cell::new(0);
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        let mtime = fs::metadata(&path).unwrap().modified().unwrap();
        fs::write(&path, "two").unwrap();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "two");
    }

    #[test]
    fn a_file_that_went_away_is_forgotten() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("c.ex");
        fs::write(&path, "one").unwrap();
        let key = path.to_string_lossy().into_owned();
        let calls = Cell::new(0);
        digest_with(&key, counting(&calls)).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(digest_with(&key, counting(&calls)).is_err());
        assert!(!lock().contains_key(&key));
    }
}
