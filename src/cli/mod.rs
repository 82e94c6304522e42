//! The command line: argument definitions and one module per command.

/// `println!` for the reports of `inspect`, `bench` and `eval`. `println!` panics when stdout is
/// closed (`attnprompt inspect | head`); a reader stopping early is normal, so that ends the
/// process quietly with exit 0, and any other write error with the I/O exit code.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

pub mod args;
pub mod bench;
pub mod eval;
pub mod inspect;
pub mod interrupt;
pub mod run;

pub fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    std::process::exit(i32::from(crate::EXIT_IO));
}
