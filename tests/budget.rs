//! `--memory-budget` bounds the whole process, measured from outside: the kernel's peak RSS of
//! the child (`ru_maxrss` from `wait4`), for budgets that are accepted and budgets that are
//! refused, at several sequence lengths and both precisions. Host only: under qemu-user the
//! RSS is the emulator's, not the program's.
//!
//! A test binary of its own, which loads no model: a child's `ru_maxrss` also counts the memory
//! it shared with its parent before `exec` (Linux keeps the larger high-water mark), so the
//! parent must stay small. In `tests/it`, beside tests holding pipelines, it read 150-160 MiB for
//! a refused child that stops before reading the model.

use std::io::Read;
use std::os::raw::{c_int, c_long};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Set by `scripts/cross-test` (see tests/it/common.rs).
fn emulated() -> bool {
    std::env::var("ATTNPROMPT_EMULATED").is_ok_and(|v| v == "1")
}

const TEXT: &str = "The Raspberry Pi 5 runs BERT inference offline with tract.";

/// `struct rusage` of Linux: two `struct timeval` (two longs each), then `ru_maxrss` (KiB) and
/// thirteen more longs.
#[repr(C)]
struct Rusage {
    utime: [c_long; 2],
    stime: [c_long; 2],
    maxrss: c_long,
    rest: [c_long; 13],
}

extern "C" {
    fn wait4(pid: c_int, status: *mut c_int, options: c_int, rusage: *mut Rusage) -> c_int;
}

/// Runs the binary with `args`; returns its exit code, its peak RSS in bytes and its stderr.
/// The child is reaped by `wait4` (for its resource usage), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (i32, u64, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_attnprompt"))
        .args(args)
        .env(
            attnprompt::model_cache::CACHE_ENV,
            attnprompt::model_cache::OFF,
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status: c_int = 0;
    let mut usage = Rusage {
        utime: [0; 2],
        stime: [0; 2],
        maxrss: 0,
        rest: [0; 13],
    };
    // SAFETY: the child is ours and not yet reaped (std's Child does not wait on drop); both
    // pointers are to live locals of the right layout.
    let pid = unsafe { wait4(child.id() as c_int, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as c_int, "wait4 failed");
    assert_eq!(
        status & 0x7f,
        0,
        "killed by signal {}: {err}",
        status & 0x7f
    );
    ((status >> 8) & 0xff, usage.maxrss as u64 * 1024, err)
}

/// What the plan says the process needs for this setting (`inspect --json`).
fn needed(precision: &str, max_seq: &str) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_attnprompt"))
        .env(
            attnprompt::model_cache::CACHE_ENV,
            attnprompt::model_cache::OFF,
        )
        .args([
            "inspect",
            "--json",
            "--precision",
            precision,
            "--max-seq",
            max_seq,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["memory_needed"].as_u64().unwrap()
}

/// Runs a short text at `precision` and `max_seq` under a budget of `budget` bytes.
fn run_with_budget(precision: &str, max_seq: &str, budget: u64) -> (i32, u64, String) {
    let budget = budget.to_string();
    run_measured(&[
        "--precision",
        precision,
        "--max-seq",
        max_seq,
        "--memory-budget",
        &budget,
        TEXT,
    ])
}

#[test]
fn the_budget_bounds_the_process_peak_rss_accepted_or_refused() {
    if emulated() {
        eprintln!("skipped under emulation: the RSS would be qemu's");
        return;
    }
    const MIB: u64 = 1 << 20;
    for (precision, max_seq) in [("int8", "32"), ("int8", "512"), ("f32", "128")] {
        let needed = needed(precision, max_seq);
        let (code, rss, err) = run_with_budget(precision, max_seq, needed);
        eprintln!(
            "{precision} seq {max_seq}: budget {:.1} MiB, peak RSS {:.1} MiB",
            needed as f64 / MIB as f64,
            rss as f64 / MIB as f64
        );
        assert_eq!(code, 0, "{precision} seq {max_seq}: {err}");
        assert!(
            rss <= needed,
            "{precision} seq {max_seq}: peak RSS {rss} over the accepted budget {needed}"
        );
        // One MiB short: refused (exit 3), and the refusal itself stays within it.
        let short = needed - MIB;
        let (code, rss, err) = run_with_budget(precision, max_seq, short);
        assert_eq!(code, 3, "{precision} seq {max_seq}: {err}");
        assert!(err.contains("memory budget"), "{err}");
        assert!(
            rss <= short,
            "{precision} seq {max_seq}: peak RSS {rss} over the refused budget {short}"
        );
    }
}
