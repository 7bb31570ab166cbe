//! Spreading blocking file system calls over a few threads.
//!
//! Most of a scan is one metadata call per file, each a system call that
//! waits on the kernel; over a few threads a thousand files take a
//! fraction of the time.

/// Below this many items a thread costs more than it saves.
const ITEMS_PER_THREAD: usize = 128;
const MAX_THREADS: usize = 4;

/// `f` over `items`, in order, on up to [`MAX_THREADS`] threads.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = (items.len() / ITEMS_PER_THREAD).clamp(1, cores.min(MAX_THREADS));
    if threads == 1 {
        return items.iter().map(&f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let f = &f;
        let mut parts = items.chunks(chunk);
        // This thread takes the first part instead of waiting idle.
        let first = parts.next().unwrap_or_default();
        let handles: Vec<_> = parts
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut results: Vec<R> = first.iter().map(f).collect();
        for handle in handles {
            match handle.join() {
                Ok(part) => results.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<usize> = (0..1000).collect();
        assert_eq!(
            super::map(&items, |i| i * 2),
            (0..1000).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(super::map(&Vec::<usize>::new(), |i| *i).is_empty());
    }
}
