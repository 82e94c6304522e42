//! How far apart two cores are: the round trip of one cache line between two threads, in ns
//! (BENCHMARKS.md, "Threads": the second core's gain and where the cores sit).
//!
//! `--threads 2` hands data between the two threads at every op (activations packed by one,
//! products computed by both, the next op reading both halves), so it pays this round trip
//! many times per text. Between cores that share a last-level cache it is tens of ns; between
//! cores that do not (another CCD of an AMD EPYC, another socket) several hundred. On a shared
//! virtual machine the same two vCPUs can be either, from minute to minute.
//!
//! `cargo run --release --example core-pingpong` prints the median of 5 batches of 200,000
//! round trips. The threads are not pinned: it measures where the scheduler put them, as
//! `attnprompt --threads 2` would get them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

const ROUND_TRIPS: u64 = 200_000;
const BATCHES: u64 = 5;

fn main() {
    let flag = Arc::new(AtomicU64::new(0));
    let other = Arc::clone(&flag);
    // The other thread answers each odd value with the next even one.
    let echo = std::thread::spawn(move || {
        for i in 0..BATCHES * ROUND_TRIPS {
            while other.load(Ordering::Acquire) != 2 * i + 1 {
                std::hint::spin_loop();
            }
            other.store(2 * i + 2, Ordering::Release);
        }
    });
    let mut ns: Vec<f64> = (0..BATCHES)
        .map(|batch| {
            let t0 = Instant::now();
            for j in 0..ROUND_TRIPS {
                let i = batch * ROUND_TRIPS + j;
                flag.store(2 * i + 1, Ordering::Release);
                while flag.load(Ordering::Acquire) != 2 * i + 2 {
                    std::hint::spin_loop();
                }
            }
            t0.elapsed().as_nanos() as f64 / ROUND_TRIPS as f64
        })
        .collect();
    echo.join().expect("the echo thread");
    ns.sort_by(f64::total_cmp);
    println!(
        "cache-line round trip between two threads: {:.0} ns (median of {BATCHES} batches of {ROUND_TRIPS})",
        ns[ns.len() / 2]
    );
}
