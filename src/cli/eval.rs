//! `attnprompt eval`: keyphrase quality on a benchmark file (JSON lines with `text` and gold
//! `keyphrases`), with the protocol of src/eval.rs.

use std::fs::File;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::Args;
use serde_json::json;

use attnprompt::config::{Candidates, Layers, Strategy};
use attnprompt::eval::{self, DocScore, Evaluator, Setting, Summary};
use attnprompt::keywords::Aggregation;
use attnprompt::stem::stem_phrase;
use attnprompt::{Config, Error};

use super::args::PipelineArgs;

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// JSON lines with `text` and gold `keyphrases` (stemmed), e.g. ../shared/datasets/inspec.jsonl
    #[arg(long, value_name = "FILE.jsonl")]
    pub dataset: PathBuf,

    /// Cut-offs k for P@k, R@k, F1@k.
    #[arg(
        long = "k",
        value_name = "K,K,…",
        default_value = "5,10,15",
        value_delimiter = ','
    )]
    pub ks: Vec<usize>,

    /// Write each document's ranked predictions (every candidate), their stemmed forms, gold and F1
    /// as JSON lines to FILE.
    #[arg(long, value_name = "FILE")]
    pub per_doc: Option<PathBuf>,

    /// With --per-doc: also write every phrase occurrence of each document (window, tokens
    /// before it, key, stem, text, offsets, score before the position prior), to replay ranking
    /// variants without the model (bench/rank_replay.py).
    #[arg(long, requires = "per_doc")]
    pub occurrences: bool,

    /// Only the first N documents.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Score every strategy × layers × candidates setting from the same model runs (the grid of
    /// EVALUATION.md); ignores --strategy, --layers, --candidates.
    #[arg(long, hide = true)]
    pub grid: bool,

    /// The position prior's scale in tokens, as the pipeline applies it (0: none; for the
    /// ablation in EVALUATION.md)
    #[arg(long, value_name = "TOKENS", default_value_t = attnprompt::document::POSITION_SCALE_TOKENS)]
    pub position_scale: f32,

    #[command(flatten)]
    pub pipeline: PipelineArgs,
}

/// The settings of the grid in EVALUATION.md.
fn grid_settings() -> Vec<Setting> {
    let mut out = Vec::new();
    let layer_choices = [
        "last", "all", "0", "1", "2", "3", "4", "0,1", "0,1,2", "1,2,3", "3,4,5", "4,5",
    ];
    for candidates in [Candidates::NounPhrases, Candidates::Stopwords] {
        for strategy in [Strategy::Received, Strategy::Cls, Strategy::Rollout] {
            for l in layer_choices {
                if strategy == Strategy::Rollout && !matches!(l, "all" | "0,1" | "0,1,2" | "3,4,5")
                {
                    continue;
                }
                for aggregation in [
                    Aggregation::DEFAULT,
                    Aggregation::SumMultiword,
                    Aggregation::Sum,
                    Aggregation::Max,
                ] {
                    // the other aggregations only for the layer choices that lead
                    if aggregation != Aggregation::DEFAULT && !matches!(l, "last" | "all" | "4,5") {
                        continue;
                    }
                    out.push(Setting {
                        strategy,
                        layers: l.parse::<Layers>().unwrap_or(Layers::All),
                        candidates,
                        aggregation,
                    });
                }
            }
        }
    }
    out
}

/// Returns Ok(false) when some document failed.
pub fn eval(args: &EvalArgs, json_out: bool) -> Result<bool, Error> {
    let config: Config = args.pipeline.config()?;
    if args.ks.is_empty()
        || args
            .ks
            .iter()
            .any(|&k| k == 0 || k > attnprompt::config::MAX_TOP_K)
    {
        return Err(Error::Config(format!(
            "--k must list cut-offs in 1..={}",
            attnprompt::config::MAX_TOP_K
        )));
    }
    let mut docs = eval::read_dataset(&args.dataset)?;
    if let Some(n) = args.limit {
        docs.truncate(n);
    }
    let settings = if args.grid {
        grid_settings()
    } else {
        vec![Setting {
            strategy: config.strategy,
            layers: config.layers_or_default(),
            candidates: config.candidates,
            aggregation: Aggregation::DEFAULT,
        }]
    };
    let need_tagger = settings
        .iter()
        .any(|s| s.candidates == Candidates::NounPhrases);
    let mut evaluator = Evaluator::load(&config, need_tagger)?;
    evaluator.set_position_scale(args.position_scale);
    if args.occurrences {
        if args.grid {
            return Err(Error::Config(
                "--occurrences records one setting: not with --grid".into(),
            ));
        }
        evaluator.record_occurrences();
    }
    let mut per_doc = match &args.per_doc {
        Some(p) => Some(io::BufWriter::new(File::create(p).map_err(|source| {
            Error::Io {
                path: p.clone(),
                source,
            }
        })?)),
        None => None,
    };
    let progress = io::stderr().is_terminal();
    let mut scores: Vec<Vec<DocScore>> = vec![Vec::new(); settings.len()];
    let mut failed = 0;
    let t0 = Instant::now();
    for (i, doc) in docs.iter().enumerate() {
        match evaluator.predict(&doc.text, &settings) {
            Ok(preds) => {
                for (s, p) in scores.iter_mut().zip(&preds) {
                    s.push(eval::score_doc(p, &doc.gold, &args.ks));
                }
                if let Some(w) = per_doc.as_mut() {
                    let s = &scores[0][scores[0].len() - 1];
                    let mut line = json!({
                        "file_name": doc.name,
                        "predicted": preds[0],
                        "predicted_stemmed": eval::normalize_predictions(&preds[0]),
                        "gold": doc.gold,
                        "k": s.k,
                        "tp": s.tp,
                        "f1": s.f1,
                    });
                    if args.occurrences {
                        let o: Vec<_> = evaluator
                            .occurrences()
                            .iter()
                            .map(|o| json!({"stem": stem_phrase(&o.surface), "o": o}))
                            .collect();
                        line["occurrences"] = o.into();
                    }
                    writeln!(w, "{line}").map_err(|source| Error::Io {
                        path: args.per_doc.clone().unwrap_or_default(),
                        source,
                    })?;
                }
            }
            Err(e) => {
                failed += 1;
                eprintln!("{}: error: {e}", doc.name);
            }
        }
        if progress {
            let done = i + 1;
            let rate = done as f64 / t0.elapsed().as_secs_f64().max(1e-9);
            eprint!("\r{done}/{} documents, {rate:.1} docs/s ", docs.len());
        }
    }
    if progress {
        eprintln!();
    }
    let secs = t0.elapsed().as_secs_f64();
    let docs_per_s = docs.len() as f64 / secs.max(1e-9);
    let model = config.model_dir.display().to_string();
    for (setting, sc) in settings.iter().zip(&scores) {
        let summary = eval::summarize(sc, &args.ks);
        if json_out {
            let v = json!({
                "dataset": args.dataset,
                "model": model,
                "strategy": setting.strategy.name(),
                "layers": setting.layers.to_string(),
                "candidates": setting.candidates.name(),
                "max_seq": config.max_seq,
                "windows": evaluator.windows(),
                "failed": failed,
                "seconds": secs,
                "docs_per_s": docs_per_s,
                "summary": summary,
            });
            outln!("{v}");
        } else if args.grid {
            print_grid_row(setting, &summary);
        } else {
            print_report(
                &args.dataset,
                &model,
                &config,
                setting,
                &summary,
                evaluator.windows(),
                docs_per_s,
            );
        }
    }
    if args.grid && !json_out {
        outln!(
            "# {} docs, {} windows, {docs_per_s:.2} docs/s for the whole grid",
            docs.len(),
            evaluator.windows()
        );
    }
    if let Some(mut w) = per_doc {
        w.flush().map_err(|source| Error::Io {
            path: args.per_doc.clone().unwrap_or_default(),
            source,
        })?;
    }
    Ok(failed == 0)
}

fn print_grid_row(s: &Setting, sum: &Summary) {
    let f: Vec<String> = sum.macro_f1.iter().map(|x| format!("{x:.2}")).collect();
    outln!("| `{s}` | {} |", f.join(" | "));
}

fn print_report(
    dataset: &Path,
    model: &str,
    config: &Config,
    s: &Setting,
    sum: &Summary,
    windows: usize,
    docs_per_s: f64,
) {
    outln!("dataset     {} ({} documents)", dataset.display(), sum.docs);
    outln!("model       {model}");
    outln!(
        "setting     strategy {}, layers {}, candidates {}, max_seq {}",
        s.strategy.name(),
        s.layers,
        s.candidates.name(),
        config.max_seq
    );
    outln!(
        "speed       {docs_per_s:.2} docs/s ({windows} windows of ≤ {} tokens)",
        config.max_seq
    );
    for (title, p, r, f) in [
        (
            "macro",
            &sum.macro_precision,
            &sum.macro_recall,
            &sum.macro_f1,
        ),
        (
            "micro",
            &sum.micro_precision,
            &sum.micro_recall,
            &sum.micro_f1,
        ),
    ] {
        outln!();
        outln!("{title:6} {:>8} {:>8} {:>8}", "P", "R", "F1");
        for (i, k) in sum.k.iter().enumerate() {
            outln!("@{k:<5} {:>8.2} {:>8.2} {:>8.2}", p[i], r[i], f[i]);
        }
    }
}
