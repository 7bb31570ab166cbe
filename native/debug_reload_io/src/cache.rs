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

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fs;
use std::hash::Hash;
use std::io;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::parallel;

/// How long after its last change a file's digest may be remembered.
pub const SETTLE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Identity {
    dev: u64,
    ino: u64,
    len: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl Identity {
    #[cfg(unix)]
    pub(crate) fn of(meta: &fs::Metadata) -> Option<Identity> {
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
    pub(crate) fn of(_meta: &fs::Metadata) -> Option<Identity> {
        None
    }

    /// Whether what was read at `now` can be remembered: the last change
    /// is older than [`SETTLE`].
    pub(crate) fn settled(self, now: SystemTime) -> bool {
        let now_ns = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i128)
            .unwrap_or(0);
        let settle_ns = SETTLE.as_nanos() as i128;
        self.ctime_ns + settle_ns < now_ns && self.mtime_ns + settle_ns < now_ns
    }
}

/// What was read from files or directories, each value kept with the
/// identity its file or directory had when read, under the settling rule
/// (see the module documentation); shared by every scan in the VM.
pub(crate) struct Memory<K, V>(OnceLock<Mutex<HashMap<K, (Identity, V)>>>);

/// The locked contents of a [`Memory`].
pub(crate) struct Recall<'a, K, V>(MutexGuard<'a, HashMap<K, (Identity, V)>>);

impl<K: Eq + Hash, V> Memory<K, V> {
    pub(crate) const fn new() -> Self {
        Memory(OnceLock::new())
    }

    // A poisoned lock only means another scan panicked mid-insert; the map
    // itself is still a valid cache.
    pub(crate) fn lock(&self) -> Recall<'_, K, V> {
        let map = self.0.get_or_init(Default::default);
        Recall(map.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl<K: Eq + Hash, V> Recall<'_, K, V> {
    /// The value remembered for `key`, if it was read from the object
    /// whose identity is `identity` now.
    pub(crate) fn get<Q>(&self, key: &Q, identity: Option<Identity>) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let (remembered, value) = self.0.get(key)?;
        (Some(*remembered) == identity).then_some(value)
    }

    /// Keeps `value`, read at `read_at` from the object with `identity`,
    /// if that object had settled by then; otherwise forgets `key`.
    pub(crate) fn put(
        &mut self,
        key: K,
        identity: Option<Identity>,
        value: V,
        read_at: SystemTime,
    ) {
        match identity {
            Some(id) if id.settled(read_at) => {
                self.0.insert(key, (id, value));
            }
            _ => self.forget(&key),
        }
    }

    pub(crate) fn forget<Q>(&mut self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.0.remove(key);
    }

    #[cfg(test)]
    pub(crate) fn holds<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.0.contains_key(key)
    }
}

static DIGESTS: Memory<String, String> = Memory::new();

/// The digests of the files at `paths`, in order: remembered ones where a
/// file's identity is the one they were taken with, the others computed by
/// `digest`. The metadata calls are spread over threads and the cache is
/// locked twice in all, not once per file: with a thousand files, the
/// lock and the threads contending for it cost more than the calls.
pub fn digest_all(
    paths: &[String],
    digest: impl Fn(&Path) -> io::Result<String> + Sync,
) -> Vec<io::Result<String>> {
    let identities = parallel::map(paths, |path| {
        fs::metadata(path).map(|meta| Identity::of(&meta))
    });
    let mut results: Vec<Option<io::Result<String>>> = {
        let digests = DIGESTS.lock();
        paths
            .iter()
            .zip(&identities)
            .map(|(path, identity)| match identity {
                Ok(identity) => digests.get(path.as_str(), *identity).cloned().map(Ok),
                Err(_) => None,
            })
            .collect()
    };

    let misses: Vec<usize> = (0..paths.len()).filter(|&i| results[i].is_none()).collect();
    if misses.is_empty() {
        return results.into_iter().flatten().collect();
    }
    let now = SystemTime::now();
    let computed = parallel::map(&misses, |&i| match &identities[i] {
        Ok(_) => digest(Path::new(&paths[i])),
        Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
    });
    let mut digests = DIGESTS.lock();
    for (i, result) in misses.into_iter().zip(computed) {
        match (&identities[i], &result) {
            (Ok(identity), Ok(digest)) => {
                digests.put(paths[i].clone(), *identity, digest.clone(), now)
            }
            _ => digests.forget(paths[i].as_str()),
        }
        results[i] = Some(result);
    }
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Calls(AtomicU32);

    impl Calls {
        fn new() -> Self {
            Calls(AtomicU32::new(0))
        }

        fn get(&self) -> u32 {
            self.0.load(Ordering::SeqCst)
        }
    }

    /// The digest of the file at `path`: remembered, or computed by `digest`.
    fn digest_with(
        path: &str,
        digest: impl Fn(&Path) -> io::Result<String> + Sync,
    ) -> io::Result<String> {
        let mut results = digest_all(std::slice::from_ref(&path.to_string()), digest);
        results.pop().expect("one result per path")
    }

    fn counting(calls: &Calls) -> impl Fn(&Path) -> io::Result<String> + Sync + '_ {
        move |p| {
            calls.0.fetch_add(1, Ordering::SeqCst);
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
        let changed = std::time::Instant::now();
        let key = path.to_string_lossy().into_owned();
        let calls = Calls::new();
        // The change time is recent (set_modified changes it): read each time.
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        // (unless a stalled machine let the file settle in between)
        if changed.elapsed() < SETTLE {
            assert_eq!(calls.get(), 2);
        }
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        let settled_reads = calls.get();
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(digest_with(&key, counting(&calls)).unwrap(), "one");
        assert_eq!(calls.get(), settled_reads);
    }

    #[test]
    fn a_same_size_rewrite_with_the_old_modification_time_is_seen() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("b.ex");
        fs::write(&path, "one").unwrap();
        age(&path, 10);
        std::thread::sleep(SETTLE + Duration::from_millis(50));
        let key = path.to_string_lossy().into_owned();
        let calls = Calls::new();
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
        let calls = Calls::new();
        digest_with(&key, counting(&calls)).unwrap();
        fs::remove_file(&path).unwrap();
        assert!(digest_with(&key, counting(&calls)).is_err());
        assert!(!DIGESTS.lock().holds(key.as_str()));
    }
}
