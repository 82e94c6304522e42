//! The default command: texts in, prompts (or JSON) out, one output line per input line.

use std::ffi::OsStr;
use std::io::{self, BufRead, Write};

use serde_json::json;

use attnprompt::config::MAX_TEXT_BYTES;
use attnprompt::heap;
use attnprompt::lang::Pipelines;
use attnprompt::ranking::check_bytes;
use attnprompt::{Error, Lang, Output};

use super::interrupt;

/// One text from the command line. Returns the number of failed texts (0 or 1).
pub fn run_single(pipelines: &mut Pipelines, text: &OsStr, json: bool) -> io::Result<usize> {
    let bytes = text.as_encoded_bytes();
    let (lang, result) = pipelines.run_bytes(bytes);
    let mut out = io::stdout().lock();
    report(&mut out, pipelines, lang, None, bytes, &result, json)?;
    Ok(usize::from(result.is_err()))
}

/// One document of any length (`--document`). Returns the number of failures (0 or 1).
pub fn run_document(
    pipelines: &mut Pipelines,
    lang: Lang,
    head: &[u8],
    reader: impl io::Read,
    name: &str,
    json: bool,
) -> io::Result<usize> {
    let result = pipelines.run_document(lang, head, reader);
    let lang = Some(lang);
    let mut out = io::stdout().lock();
    match (&result, json) {
        (Ok(o), false) => writeln!(out, "{}", o.prompt)?,
        (Ok(o), true) => {
            let mut v = report_json(pipelines, lang, o);
            v["document"] = json!(name);
            v["bytes"] = json!(o.bytes);
            writeln!(out, "{v}")?
        }
        (Err(e), _) => {
            eprintln!("error: {name}: {e}");
            if json {
                writeln!(
                    out,
                    "{}",
                    json!({ "error": e.to_string(), "document": name })
                )?;
            }
        }
    }
    Ok(usize::from(result.is_err()))
}

/// The checks on one command-line text that need no model (UTF-8, empty, too long), so a bad
/// text is refused at once instead of after a model load. Reports the error as [`run_single`]
/// would; returns whether the text passed.
pub fn precheck_single(text: &OsStr, json: bool) -> io::Result<bool> {
    let bytes = text.as_encoded_bytes();
    match check_bytes(bytes) {
        Ok(_) => Ok(true),
        Err(e) => {
            report_error(&mut io::stdout().lock(), None, bytes, &e, json)?;
            Ok(false)
        }
    }
}

/// One text per line. Every line gets exactly one output line. Returns the number of failed lines.
/// On Ctrl-C or SIGTERM the line in hand is finished and the run stops (`interrupt`): the
/// caller finds the signal in `interrupt::received()`.
pub fn run_batch(
    pipelines: &mut Pipelines,
    mut reader: impl BufRead,
    json: bool,
) -> io::Result<usize> {
    interrupt::install();
    let mut out = io::stdout().lock();
    let mut line = Vec::with_capacity(4096);
    let mut failed = 0;
    let mut number = 0;
    loop {
        if interrupt::received().is_some() {
            break;
        }
        let next = match read_line_bounded(&mut reader, &mut line, MAX_TEXT_BYTES) {
            // A signal while waiting for input: the line being read is dropped unanswered.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => None,
            other => other?,
        };
        let Some(too_long) = next else {
            break;
        };
        interrupt::start_line();
        number += 1;
        let (lang, result) = if let Some(len) = too_long {
            (
                None,
                Err(Error::TextTooLong {
                    len,
                    max: MAX_TEXT_BYTES,
                }),
            )
        } else {
            pipelines.run_bytes(&line)
        };
        failed += usize::from(result.is_err());
        report(
            &mut out,
            pipelines,
            lang,
            Some(number),
            &line,
            &result,
            json,
        )?;
        // Flush per line so a consumer reading a pipe sees each result as it is ready.
        out.flush()?;
        interrupt::line_answered();
    }
    if let Some(signal) = interrupt::received() {
        interrupt::report(signal);
    }
    Ok(failed)
}

/// Reads one line (without its `\n` or `\r\n`) into `buf`, keeping at most `max` bytes so a huge
/// line cannot make us allocate without bound. Returns None at end of input, Some(None) for a
/// line that fit, Some(Some(len)) for a line of `len` bytes that did not (only its start is kept).
fn read_line_bounded(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Option<usize>>> {
    buf.clear();
    let mut len = 0usize;
    let mut seen_any = false;
    loop {
        let chunk = match reader.fill_buf() {
            // Only our own handler interrupts a read (the signal it stores ends the run);
            // anything else is retried.
            Err(e) if e.kind() == io::ErrorKind::Interrupted && interrupt::received().is_none() => {
                continue
            }
            other => other?,
        };
        if chunk.is_empty() {
            break;
        }
        seen_any = true;
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&part[..part.len().min(room)]);
        len += part.len();
        let consumed = done.unwrap_or(part.len());
        reader.consume(consumed);
        if done.is_some() {
            break;
        }
    }
    if !seen_any {
        return Ok(None);
    }
    if buf.last() == Some(&b'\r') && len <= max + 1 {
        buf.pop();
        len -= 1;
    }
    if len > max {
        buf.truncate(max);
        return Ok(Some(Some(len)));
    }
    Ok(Some(None))
}

fn report(
    out: &mut impl Write,
    pipelines: &Pipelines,
    lang: Option<Lang>,
    line: Option<usize>,
    input: &[u8],
    result: &Result<Output, Error>,
    json: bool,
) -> io::Result<()> {
    match (result, json) {
        (Ok(o), false) => writeln!(out, "{}", o.prompt),
        (Ok(o), true) => {
            let mut v = report_json(pipelines, lang, o);
            v["text"] = json!(String::from_utf8_lossy(input));
            if let Some(n) = line {
                v["line"] = json!(n);
            }
            writeln!(out, "{v}")
        }
        (Err(e), json) => report_error(out, line, input, e, json),
    }
}

/// The JSON report of a text or document that ran: keywords, prompt, what was read, the
/// setting, the process's peaks and the latency per stage.
fn report_json(pipelines: &Pipelines, lang: Option<Lang>, o: &Output) -> serde_json::Value {
    let lang = lang.expect("a text that ran has a language");
    let pipeline = pipelines
        .loaded(lang)
        .expect("the pipeline that ran is loaded");
    json!({
        "lang": lang,
        "keywords": o.keywords,
        "prompt": o.prompt,
        "tokens": o.tokens,
        "windows": o.windows,
        "max_seq": pipeline.config().max_seq,
        "precision": pipeline.model_facts().precision.precision,
        "strategy": pipeline.config().strategy.name(),
        "layers": pipeline.layers(),
        "peak_heap_bytes": heap::is_counting().then(heap::peak_bytes),
        "peak_rss_bytes": heap::peak_rss_bytes(),
        "latency_us": {
            "tokenize": o.latency.tokenize_us,
            "inference": o.latency.inference_us,
            "ranking": o.latency.ranking_us,
            "prompt": o.latency.prompt_us,
            "total": o.latency.total_us,
        },
    })
}

fn report_error(
    out: &mut impl Write,
    line: Option<usize>,
    input: &[u8],
    e: &Error,
    json: bool,
) -> io::Result<()> {
    match line {
        Some(n) => eprintln!("line {n}: error: {e}"),
        None => eprintln!("error: {e}"),
    }
    if json {
        let mut v = json!({ "error": e.to_string(), "text": String::from_utf8_lossy(input) });
        if let Some(n) = line {
            v["line"] = json!(n);
        }
        writeln!(out, "{v}")
    } else if line.is_some() {
        // Keep the one-line-per-input alignment: a failed line is an empty output line.
        writeln!(out)
    } else {
        Ok(())
    }
}
