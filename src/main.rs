//! The `attnprompt` command: a thin layer over the library that parses arguments, dispatches to
//! a command (src/cli/), and maps errors to exit codes.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

#[cfg(feature = "heap-stats")]
#[global_allocator]
static ALLOCATOR: attnprompt::heap::CountingAlloc = attnprompt::heap::CountingAlloc;

use attnprompt::Error;
use cli::args::PipelineArgs;

/// Exit codes, also listed in `--help`.
const EXIT_INPUT: u8 = 1;
const EXIT_LOAD: u8 = 3;
const EXIT_IO: u8 = 4;

#[derive(Parser, Debug)]
#[command(
    name = "attnprompt",
    version,
    args_conflicts_with_subcommands = true,
    about = "Find the words a text is about from a small int8 BERT's self-attention (tract, offline) and turn them into a prompt for an LLM.",
    after_help = "\
Input:
  attnprompt \"TEXT\"          one text; prints its prompt
  attnprompt < FILE           one text per line from stdin (also: --input FILE)
  attnprompt --document FILE  FILE (or - for stdin) as one document of any length
  In batch mode every input line gets exactly one output line, in order. A line that fails
  prints an empty line (or, with --json, an error object) and the rest go on.
  (A text that is exactly a command name, e.g. \"inspect\", needs `attnprompt -- inspect`.)

Templates (--template): a built-in name or your own text with placeholders
  en        Answer the following question: what is {keyword}?
  zh        请回答以下问题：什么是{keyword}？
  {keyword} the top keyword, {keywords} the top-k joined by \", \", {text} the input;
  {{ and }} are literal braces.

Exit codes:
  0  every text succeeded
  1  at least one text failed (empty, too long, invalid UTF-8, not covered by the model's
     vocabulary, no keyword candidates, prompt too long)
  2  bad command-line arguments
  3  the model, tokenizer, template or settings could not be loaded
  4  the input could not be read or the output could not be written
  130, 143  a batch stopped by Ctrl-C or SIGTERM: the line in hand was finished, every output
     line is whole and answers its input line; a second signal stops at once"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// The text to process. Without it (and without --input), texts are read from stdin, one per line.
    text: Option<OsString>,

    /// Read texts from FILE, one per line.
    #[arg(short, long, value_name = "FILE", conflicts_with = "text")]
    input: Option<PathBuf>,

    /// Read FILE (`-`: stdin) as one document, whatever its length: line breaks and paragraphs
    /// are kept as text, it is read in windows of --max-seq tokens in a fixed memory, and its
    /// keywords are ranked over the whole of it. One output line.
    #[arg(long, value_name = "FILE|-", conflicts_with_all = ["text", "input"])]
    document: Option<PathBuf>,

    /// Print one JSON object per text: keywords with scores and byte offsets, prompt, tokens and windows read, latency per stage.
    #[arg(long, global = true)]
    json: bool,

    #[command(flatten)]
    pipeline: PipelineArgs,

    /// More log output on stderr (-v info, -vv debug). Quiet by default: warnings and errors only.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Load the model and print what the pipeline found in it: layers, heads, attention nodes, quantization.
    Inspect {
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Time the whole pipeline per stage (min/p50/p90/p99/max/mean) and report the setting,
    /// cold start, peak heap and RSS.
    Bench {
        #[command(flatten)]
        bench: cli::bench::BenchArgs,
        #[command(flatten)]
        pipeline: PipelineArgs,
    },
    /// Measure keyword quality on a keyphrase benchmark (JSON lines with `text` and gold
    /// `keyphrases`): macro and micro P/R/F1 at k, with the protocol of the keyphrase literature.
    #[command(
        after_help = "Documents longer than --max-seq tokens are read in windows of --max-seq tokens, never cut. \
--top-k and --template do not apply (the largest --k is used). See EVALUATION.md."
    )]
    Eval(cli::eval::EvalArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    // Logging is best effort: a failure to set it up must not stop the real work.
    let _ = simple_logger::SimpleLogger::new().with_level(level).init();

    if let Some(Command::Bench { bench, pipeline }) = &cli.command {
        if bench.compare {
            return match cli::bench::compare(pipeline, bench, cli.json) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(if e.is_input_error() {
                        EXIT_INPUT
                    } else {
                        EXIT_LOAD
                    })
                }
            };
        }
    }
    let pipeline_args = match &cli.command {
        Some(Command::Inspect { pipeline }) | Some(Command::Bench { pipeline, .. }) => pipeline,
        Some(Command::Eval(args)) => {
            // eval loads its own model runs (windows, several settings at once)
            return match cli::eval::eval(args, cli.json) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(EXIT_INPUT),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(if matches!(e, Error::Io { .. } | Error::Dataset { .. }) {
                        EXIT_IO
                    } else {
                        EXIT_LOAD
                    })
                }
            };
        }
        None => &cli.pipeline,
    };
    if let (None, Some(text)) = (&cli.command, &cli.text) {
        match cli::run::precheck_single(text, cli.json) {
            Ok(true) => {}
            Ok(false) => return ExitCode::from(EXIT_INPUT),
            // The text failed either way; a closed stdout only lost its report.
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return ExitCode::from(EXIT_INPUT),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(EXIT_IO);
            }
        }
    }
    if cli.command.is_none() {
        // Texts: a pipeline per language. The one the first text (or, for a batch, `--lang`,
        // auto meaning English) needs is loaded now, so a bad model stops the run before any
        // text; another is loaded when a text first needs it.
        let mut pipelines = pipeline_args.pipelines();
        // A document: its first chunk is read before any model loads, so the pipeline of the
        // language it is in is the only one loaded.
        let mut document = None;
        if let Some(path) = &cli.document {
            let name = path.display().to_string();
            let mut reader: Box<dyn io::Read> = if path.as_os_str() == "-" {
                Box::new(io::stdin().lock())
            } else {
                match File::open(path) {
                    Ok(f) => Box::new(f),
                    Err(e) => {
                        eprintln!("error: cannot read {name}: {e}");
                        return ExitCode::from(EXIT_IO);
                    }
                }
            };
            match pipelines.document_head(&mut reader) {
                Ok((head, lang)) => document = Some((name, head, lang, reader)),
                Err(e) => {
                    eprintln!("error: {name}: {e}");
                    return ExitCode::from(EXIT_IO);
                }
            }
        }
        let first = match (&document, &cli.text) {
            (Some((_, _, lang, _)), _) => *lang,
            (None, Some(text)) => pipelines.lang_of(&text.to_string_lossy()),
            (None, None) => pipelines.lang_of(""),
        };
        if let Err(e) = pipelines.get(first) {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_LOAD);
        }
        let result = match (&cli.text, &cli.input) {
            _ if document.is_some() => {
                let (name, head, lang, reader) = document.take().expect("matched");
                cli::run::run_document(&mut pipelines, lang, &head, reader, &name, cli.json)
            }
            (Some(text), _) => cli::run::run_single(&mut pipelines, text, cli.json),
            (None, Some(path)) => match File::open(path) {
                Ok(f) => cli::run::run_batch(&mut pipelines, BufReader::new(f), cli.json),
                Err(e) => {
                    eprintln!("error: cannot read {}: {e}", path.display());
                    return ExitCode::from(EXIT_IO);
                }
            },
            (None, None) => cli::run::run_batch(&mut pipelines, io::stdin().lock(), cli.json),
        };
        // The process hands the memory back whole: freeing the model and the tokenizer piece by
        // piece took about 5% of a short run's CPU time, all of it after the answer.
        std::mem::forget(pipelines);
        if let Some(signal) = cli::interrupt::received() {
            return ExitCode::from(128 + signal as u8);
        }
        return exit_code(result);
    }
    let mut pipeline = match pipeline_args.load() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(EXIT_LOAD);
        }
    };

    let result = match (&cli.command, &cli.text, &cli.input) {
        (Some(Command::Eval(_)), _, _) => unreachable!("handled above"),
        (Some(Command::Inspect { .. }), _, _) => {
            cli::inspect::inspect(&pipeline, cli.json);
            Ok(0)
        }
        (Some(Command::Bench { bench, .. }), _, _) => {
            match cli::bench::bench(&mut pipeline, bench, cli.json) {
                Ok(()) => Ok(0),
                Err(e) => {
                    eprintln!("error: {e}");
                    Ok(1)
                }
            }
        }
        (None, _, _) => unreachable!("texts are handled above"),
    };
    exit_code(result)
}

fn exit_code(result: io::Result<usize>) -> ExitCode {
    match result {
        Ok(0) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(EXIT_INPUT),
        Err(e) => {
            // A closed pipe (e.g. `| head`) is a normal way for a reader to stop.
            if e.kind() == io::ErrorKind::BrokenPipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e}");
            ExitCode::from(EXIT_IO)
        }
    }
}
