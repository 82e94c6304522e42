//! Shared by the integration tests: the built binary (through an emulator when one is set), the
//! shipped pipeline loaded once, and the emulation switch.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};

use attnprompt::config::PRECISION_ENV;
use attnprompt::{Config, Pipeline, Precision};

/// Set by `scripts/cross-test` when the binary is built for another architecture: the emulator
/// command that runs it (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu`), split on whitespace.
/// Without binfmt_misc the host kernel cannot exec an ARM binary, so the tests prefix it.
const RUNNER_ENV: &str = "ATTNPROMPT_TEST_RUNNER";

/// The built binary as a command, through the runner when one is set.
#[allow(dead_code)]
pub fn binary() -> Command {
    let bin = env!("CARGO_BIN_EXE_attnprompt");
    let runner = std::env::var(RUNNER_ENV).unwrap_or_default();
    let mut words = runner.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(bin);
            c
        }
        None => Command::new(bin),
    };
    // No model cache (src/model_cache.rs) unless a test asks for one: each test's load is
    // the ONNX load, whatever ran before it.
    command.env(
        attnprompt::model_cache::CACHE_ENV,
        attnprompt::model_cache::OFF,
    );
    command
}

/// Set (to 1) by `scripts/cross-test`: the suite runs under qemu-user, where a run of the int8
/// model is about 40 times slower than natively. Tests whose cost is a workload size, not a
/// correctness condition, run a smaller workload then, with the same assertions (each says which).
pub const EMULATED_ENV: &str = "ATTNPROMPT_EMULATED";

#[allow(dead_code)]
pub fn emulated() -> bool {
    std::env::var(EMULATED_ENV).is_ok_and(|v| v == "1")
}

/// The shipped model's directory in the source tree.
#[allow(dead_code)]
pub fn shipped_model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2-int8")
}

/// The precision the tests run in where precision is not what they test: `ATTNPROMPT_PRECISION`
/// if set (`scripts/cross-test` sets int8: under qemu floating point is emulated in software and
/// an f32 run costs about three times an int8 one, docs/ARM.md), else `auto`, what users get.
/// The binary reads the same variable, so the CLI tests follow it too.
#[allow(dead_code)]
pub fn test_precision() -> Precision {
    std::env::var(PRECISION_ENV)
        .ok()
        .map(|v| v.parse().expect("ATTNPROMPT_PRECISION: auto, int8 or f32"))
        .unwrap_or_default()
}

/// The default settings for a model directory, in the tests' precision.
#[allow(dead_code)]
pub fn config(model_dir: impl Into<PathBuf>) -> Config {
    Config {
        precision: test_precision(),
        ..Config::new(model_dir)
    }
}

/// A pipeline with the default settings on the shipped model, loaded once per test binary and
/// shared by the tests that only run texts through it (a load costs 6–8 s under qemu). A test
/// that panics while holding it leaves it usable: `run` takes each text from a clean state.
#[allow(dead_code)]
pub fn shipped_pipeline() -> MutexGuard<'static, Pipeline> {
    static SHARED: OnceLock<Mutex<Pipeline>> = OnceLock::new();
    SHARED
        .get_or_init(|| Mutex::new(Pipeline::load(config(shipped_model_dir())).unwrap()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}
