//! The command line: argument definitions and one module per command.

pub mod args;
pub mod bench;
pub mod eval;
pub mod inspect;
pub mod run;
