//! The integration tests, as one test binary: tract is linked once per target instead of once
//! per test file (eight static links of about 30 MB on each ARM target), and tests that only
//! read the shipped pipeline can share one load (`common::shipped_pipeline`). Each module was a
//! test file of its own; test names keep the module as a prefix (`reference::int8_...`), which
//! is how `.ci/run` selects them under emulation.
//!
//! `tests/memory.rs` stays a binary of its own: it installs the counting allocator and compares
//! process-wide heap and RSS peaks, which other tests running beside it would move.

mod chinese;
mod cli;
mod common;
mod document;
mod errors;
mod eval;
mod model_cache;
mod nounphrase;
mod precision;
mod properties;
mod reference;
mod stem;
mod text_path;
mod threads;
mod unigram;
