//! Ctrl-C and SIGTERM in batch mode: every output line stays whole and answers its input line.
//!
//! While a line is in hand (`busy`: from the moment it is read until its answer is flushed) the
//! handler only records the signal, and the batch loop stops once that answer is out. While the
//! loop waits for input there is nothing to finish, so the handler ends the process at once:
//! a flag alone would leave a read that started just after the loop's last check blocked forever.
//! A second signal always ends the process at once. The exit code is 128 + the signal.
//!
//! The handler touches atomics and calls only `write` and `_exit`, which are async-signal-safe.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};

static SIGNAL: AtomicI32 = AtomicI32::new(0);
static BUSY: AtomicBool = AtomicBool::new(false);
static ANSWERED: AtomicUsize = AtomicUsize::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    let earlier = SIGNAL.swap(signal, Ordering::SeqCst);
    if earlier != 0 || !BUSY.load(Ordering::SeqCst) {
        report(signal);
        // SAFETY: _exit is async-signal-safe; every answer written so far was flushed.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// Installs the handler for SIGINT and SIGTERM.
pub fn install() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a handler that is async-signal-safe, the documented
        // way to set a plain handler.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// A line is in hand: a signal now waits for its answer.
pub fn start_line() {
    BUSY.store(true, Ordering::SeqCst);
}

/// The line's answer is flushed: a signal now ends the process at once.
pub fn line_answered() {
    ANSWERED.fetch_add(1, Ordering::SeqCst);
    BUSY.store(false, Ordering::SeqCst);
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// `interrupted by signal S after N lines, each answered` on stderr, without allocating.
pub fn report(signal: i32) {
    let mut buf = [0u8; 96];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        let n = bytes.len().min(buf.len() - len);
        buf[len..len + n].copy_from_slice(&bytes[..n]);
        len += n;
    };
    put(b"interrupted by signal ");
    put(digits(signal as usize, &mut [0; 20]));
    put(b" after ");
    put(digits(ANSWERED.load(Ordering::SeqCst), &mut [0; 20]));
    put(b" lines, each answered\n");
    // SAFETY: write(2) on stderr from a stack buffer; a failed write has nowhere to be reported.
    unsafe { libc::write(2, buf.as_ptr().cast(), len) };
}

fn digits(mut n: usize, out: &mut [u8; 20]) -> &[u8] {
    let mut i = out.len();
    loop {
        i -= 1;
        out[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &out[i..];
        }
    }
}
