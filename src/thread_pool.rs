//! The threads a run of the encoder uses (`--threads N`).
//!
//! tract-linalg hands matrix products, packing and the row-wise ops (softmax, reductions,
//! element-wise over many rows) to a rayon pool when a run is inside
//! `multithread_tract_scope`. A pool of N threads of its own leaves the calling thread blocked
//! while they work, and its idle workers spin between two products while the calling thread runs
//! the single-threaded ops: N + 1 threads on N cores. On a 2-core AMD EPYC a second thread so
//! made inference slower, not faster (BENCHMARKS.md, "Threads"). Here the calling thread is
//! worker 0 of its own pool (rayon's `use_current_thread`), so `--threads N` is N threads.

use std::cell::RefCell;
use std::sync::Arc;

use tract_linalg::multithread::{self, Executor};

/// The fewest output panels (tiles of the kernel's rows × columns) a product needs before tract
/// splits it between threads; tract's default is 64. A product over attention heads runs one head
/// after another, each split or not by this count, and attention × values of one head (32 rows:
/// one 64-row panel of the AVX-512 f32 kernel, S / 3 column panels) has 43 panels at 128 tokens:
/// at 64 it ran whole on one thread, 9% of the int8 time with the second thread idle. At 32 it is
/// split from 94 tokens up (2 threads, 128 tokens: 3% faster; at 16, 32-token texts lost 4%:
/// BENCHMARKS.md, "Threads: products split from 32 panels"). tract keeps this count per
/// process, so it is set for every run with a pool, and a one-thread run does not read it.
const PANEL_THRESHOLD: usize = 32;

thread_local! {
    /// This thread's pools, by size. rayon lets a thread be a worker of one pool only, and for
    /// good (that pool is never freed), so the first pool a thread asks for has it as worker 0
    /// and is kept; a second size on the same thread (rare: two encoders with different
    /// `threads`) gets a pool of its own threads, the calling one waiting. The pools end with
    /// the thread: dropping one stops its workers (rayon keeps only its small registry).
    static POOLS: RefCell<Vec<(usize, Executor)>> = const { RefCell::new(Vec::new()) };
}

/// The executor for a run with `threads` threads on the calling thread: `None` for one (tract
/// then runs everything inline), else a pool built on the first call and reused after.
pub fn executor(threads: usize) -> Result<Option<Executor>, String> {
    if threads <= 1 {
        return Ok(None);
    }
    POOLS.with_borrow_mut(|pools| {
        if let Some((_, executor)) = pools.iter().find(|(n, _)| *n == threads) {
            return Ok(Some(executor.clone()));
        }
        let builder = || {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|i| format!("attnprompt-{i}"))
        };
        // `use_current_thread` fails when this thread already is a worker of some pool (an
        // earlier size here, or a caller's own rayon pool): then the pool's threads are all new.
        let with_caller = match pools.is_empty() {
            true => builder().use_current_thread().build().ok(),
            false => None,
        };
        let pool = match with_caller {
            Some(pool) => pool,
            None => builder()
                .build()
                .map_err(|e| format!("could not start a pool of {threads} threads: {e}"))?,
        };
        multithread::set_threading_panel_threshold(PANEL_THRESHOLD);
        let executor = Executor::MultiThread(Arc::new(pool));
        pools.push((threads, executor.clone()));
        Ok(Some(executor))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(executor: &Executor) -> Arc<rayon::ThreadPool> {
        match executor {
            Executor::MultiThread(pool) => pool.clone(),
            other => panic!("not a pool of its own: {other:?}"),
        }
    }

    #[test]
    fn one_thread_is_no_pool() {
        assert!(executor(1).unwrap().is_none());
        assert!(executor(0).unwrap().is_none());
    }

    /// The first pool of a thread runs work on that thread (worker 0, no hand-over) and is
    /// reused; a second size gets threads of its own and is reused too.
    #[test]
    fn the_calling_thread_is_worker_zero_of_its_first_pool() {
        std::thread::spawn(|| {
            let first = pool(&executor(2).unwrap().unwrap());
            assert_eq!(first.current_num_threads(), 2);
            // A run with a pool splits products from PANEL_THRESHOLD panels, not tract's 64.
            assert_eq!(
                multithread::current_threading_panel_threshold(),
                PANEL_THRESHOLD
            );
            let caller = std::thread::current().id();
            let (index, thread) =
                first.install(|| (rayon::current_thread_index(), std::thread::current().id()));
            assert_eq!((index, thread), (Some(0), caller));
            // Both workers take part in a parallel loop run from the calling thread.
            let workers: std::collections::BTreeSet<usize> = first.install(|| {
                use rayon::prelude::*;
                (0..64)
                    .into_par_iter()
                    .map(|_| {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                        rayon::current_thread_index().unwrap()
                    })
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect()
            });
            assert_eq!(workers.into_iter().collect::<Vec<_>>(), [0, 1]);
            assert!(Arc::ptr_eq(&first, &pool(&executor(2).unwrap().unwrap())));

            let other = pool(&executor(3).unwrap().unwrap());
            assert_eq!(other.current_num_threads(), 3);
            assert_ne!(other.install(std::thread::current).id(), caller);
            assert!(Arc::ptr_eq(&other, &pool(&executor(3).unwrap().unwrap())));
        })
        .join()
        .unwrap();
    }
}
