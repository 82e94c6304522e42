//! Guest threads start and join. Under qemu-user, a runner that mixes two glibc builds (the cross
//! sysroot and a multiarch `libc6:<arch>`) hangs on every thread creation; `scripts/cross-test`
//! runs this suite under a timeout, so that mistake fails here first, with a clear name.

use std::sync::mpsc;
use std::thread;

const THREADS: usize = 4;

#[test]
fn threads_start_compute_and_join() {
    let (tx, rx) = mpsc::channel();
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let tx = tx.clone();
            thread::spawn(move || tx.send((i, (0..=i as u64 * 1000).sum::<u64>())).unwrap())
        })
        .collect();
    drop(tx);
    for h in handles {
        h.join().unwrap();
    }
    let mut got: Vec<(usize, u64)> = rx.iter().collect();
    got.sort();
    let want: Vec<(usize, u64)> = (0..THREADS)
        .map(|i| (i, (i as u64 * 1000) * (i as u64 * 1000 + 1) / 2))
        .collect();
    assert_eq!(got, want);
}
