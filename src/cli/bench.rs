//! `attnprompt bench`: the whole pipeline, timed per stage, with the setting of the run.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use attnprompt::bench::{percentile, Samples, Setting, Summary, LATENCY_WINDOW, STAGES};
use attnprompt::heap;
use attnprompt::memory::format_size;
use attnprompt::{Error, Pipeline, Precision};

use crate::cli::args::PipelineArgs;

/// Built-in texts of several lengths (about 15, 45, 110 and 200+ tokens: the last is read in two
/// windows at the default --max-seq), so a run covers short prompts and full windows.
pub const SAMPLES: [&str; 4] = [
    "The Raspberry Pi 5 runs BERT inference offline with tract.",
    "Edge devices such as the Jetson Orin Nano run small transformer encoders next to a local \
     language model, so every megabyte and millisecond spent on keyword extraction is taken \
     from the model that answers the question.",
    "Quantized transformer models make on-device language understanding practical: an int8 \
     encoder with six layers and twelve attention heads fits in a few tens of megabytes, starts \
     in well under a second, and answers in milliseconds on a Cortex-A76. Its self-attention \
     already encodes which words carry a sentence, so reading the attention each token receives \
     gives keywords without any training, and those keywords become a prompt for a larger model \
     running elsewhere on the same board.",
    "Benchmarking on shared edge hardware needs care. Thermal throttling lowers the clock after a \
     few seconds of load, other processes compete for the same cores, and memory bandwidth is \
     shared with the GPU on a Jetson. Report medians and high percentiles rather than means, \
     warm the caches before measuring, state the sequence length, thread count, build profile \
     and kernel choices, and compare engines side by side in the same run rather than across \
     days. A keyword extractor that reads attention from a quantized encoder is sensitive to \
     sequence length because attention grows with its square, so always measure at the length \
     you deploy, and remember that padding to a fixed length trades a little compute for a plan \
     made once, allocation patterns that repeat exactly, and latency that does not depend on the \
     input, which is what an embedded deployment wants.",
];

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Texts to run, one per line (default: built-in samples of several lengths).
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Untimed runs before measuring.
    #[arg(long, default_value_t = 3, value_name = "N")]
    pub warmup: usize,

    /// Timed runs (cycling through the texts). Ignored with --duration.
    #[arg(short = 'n', long, default_value_t = 40, value_name = "N")]
    pub iterations: usize,

    /// Run for this many seconds instead of a fixed count.
    #[arg(short, long, value_name = "SECONDS")]
    pub duration: Option<f64>,

    /// Also time every op of tract's plan over the runs and print the ten most expensive op
    /// kinds (the per-node timing is done in separate runs, after the latency runs).
    #[arg(long)]
    pub profile_ops: bool,

    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,

    /// Time both precisions of the model, int8 and f32, in alternating rounds in this one
    /// process (the same texts; --precision is ignored), and print each form's latency, memory
    /// plan and the f32 / int8 ratio: which form to run on this board.
    #[arg(long)]
    pub compare: bool,
}

/// The texts to time: `--input`, or the built-in samples.
fn texts(args: &BenchArgs) -> Result<Vec<String>, Error> {
    let texts: Vec<String> = match &args.input {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect(),
        None => SAMPLES.iter().map(|s| s.to_string()).collect(),
    };
    if texts.is_empty() {
        return Err(Error::EmptyText);
    }
    Ok(texts)
}

pub fn bench(pipeline: &mut Pipeline, args: &BenchArgs, as_json: bool) -> Result<(), Error> {
    let texts = texts(args)?;
    // Refuse bad texts before timing anything.
    for t in &texts {
        pipeline.run(t)?;
    }
    for i in 0..args.warmup {
        pipeline.run(&texts[i % texts.len()])?;
    }

    let mut samples = Samples::default();
    let mut tokens = 0u64;
    // Runs of a text longer than max_seq tokens, read in several windows.
    let mut multi_window = 0u64;
    let mut progress = Progress::new(args.quiet, args.duration, args.iterations);
    let started = Instant::now();
    let mut i = 0usize;
    loop {
        let done = match args.duration {
            Some(secs) => started.elapsed() >= Duration::from_secs_f64(secs),
            None => i >= args.iterations,
        };
        if done {
            break;
        }
        let out = pipeline.run(&texts[i % texts.len()])?;
        samples.push(&out.latency);
        tokens += out.tokens as u64;
        multi_window += u64::from(out.windows > 1);
        i += 1;
        progress.update(i, started.elapsed());
    }
    progress.finish();
    let wall = started.elapsed().as_secs_f64();

    let setting = Setting::of(pipeline);
    let mut scratch = Vec::with_capacity(LATENCY_WINDOW);
    let summaries = samples.summaries(&mut scratch);
    let peak_heap = heap::is_counting().then(heap::peak_bytes);
    let peak_rss = heap::peak_rss_bytes();
    let load_ms = pipeline.load_seconds() * 1e3;
    let plan_total = pipeline.memory_plan().total();

    let mut ops = Vec::new();
    if args.profile_ops {
        for i in 0..samples.seen().max(1) as usize {
            pipeline.profile_inference(&texts[i % texts.len()], &mut ops)?;
        }
        ops.sort_by(|a, b| b.total_us.total_cmp(&a.total_us));
    }
    let ops_total: f64 = ops.iter().map(|o| o.total_us).sum();
    let profiled_runs = samples.seen().max(1) as f64;

    if as_json {
        let stages: serde_json::Map<String, serde_json::Value> = STAGES
            .iter()
            .zip(&summaries)
            .map(|(name, s)| (name.to_string(), json!(s)))
            .collect();
        outln!(
            "{}",
            json!({
                "setting": setting,
                "runs": samples.seen(),
                "texts": texts.len(),
                "mean_tokens": tokens as f64 / samples.seen().max(1) as f64,
                "multi_window_runs": multi_window,
                "wall_seconds": wall,
                "latency_us": stages,
                "load_ms": load_ms,
                "from_model_cache": pipeline.model_facts().from_cache,
                "memory_plan_bytes": plan_total,
                "peak_heap_bytes": peak_heap,
                "peak_rss_bytes": peak_rss,
                "ops": ops.iter().map(|o| json!({
                    "op": o.op,
                    "nodes": o.nodes as f64 / profiled_runs,
                    "us_per_run": o.total_us / profiled_runs,
                    "share": o.total_us / ops_total,
                })).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    outln!("attnprompt bench");
    outln!(
        "  model      {} (sha256 {})",
        setting.model,
        setting.model_sha256
    );
    outln!("  quantization {}", setting.quantization);
    outln!(
        "  precision  {} ({})",
        setting.precision.precision,
        setting.precision.reason
    );
    outln!(
        "  max_seq {}, threads {}, target {}, {}",
        setting.max_seq,
        setting.threads,
        setting.target,
        setting.profile
    );
    outln!(
        "  cpu        {} [{}]",
        setting.cpu,
        setting.cpu_features.join(" ")
    );
    let kernels: Vec<String> = setting
        .kernels
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    outln!("  kernels    {}", kernels.join(", "));
    outln!("  tract      {}", setting.tract_version);
    outln!(
        "  runs       {} over {} texts (mean {:.0} tokens, {} in several windows), {:.1} s; window {} samples",
        samples.seen(),
        texts.len(),
        tokens as f64 / samples.seen().max(1) as f64,
        multi_window,
        wall,
        LATENCY_WINDOW
    );
    outln!();
    outln!(
        "{:<10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "stage (µs)",
        "min",
        "p50",
        "p90",
        "p99",
        "max",
        "mean"
    );
    for (name, s) in STAGES.iter().zip(&summaries) {
        if let Some(Summary {
            min,
            p50,
            p90,
            p99,
            max,
            mean,
            ..
        }) = s
        {
            outln!("{name:<10} {min:>10} {p50:>10} {p90:>10} {p99:>10} {max:>10} {mean:>10.0}");
        }
    }
    outln!();
    outln!(
        "cold start (load + optimize + plan) {load_ms:.0} ms{}",
        if pipeline.model_facts().from_cache {
            ", graph read from the model cache"
        } else {
            ""
        }
    );
    if !ops.is_empty() {
        outln!();
        outln!(
            "{:<28} {:>6} {:>12} {:>7}",
            "op (top 10)",
            "nodes",
            "µs per run",
            "share"
        );
        for o in ops.iter().take(10) {
            outln!(
                "{:<28} {:>6.0} {:>12.0} {:>6.1}%",
                o.op,
                o.nodes as f64 / profiled_runs,
                o.total_us / profiled_runs,
                100.0 * o.total_us / ops_total
            );
        }
    }
    outln!(
        "memory: plan {}, peak heap {}, peak RSS {}",
        format_size(plan_total),
        peak_heap.map_or("n/a (heap-stats off)".into(), |b| format_size(b as u64)),
        peak_rss.map_or("n/a".into(), format_size)
    );
    Ok(())
}

/// A progress bar on stderr, only for runs longer than a second on a terminal.
struct Progress {
    enabled: bool,
    duration: Option<f64>,
    iterations: usize,
    last_draw: Option<Instant>,
}

impl Progress {
    fn new(quiet: bool, duration: Option<f64>, iterations: usize) -> Self {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            duration,
            iterations,
            last_draw: None,
        }
    }

    fn update(&mut self, done: usize, elapsed: Duration) {
        if !self.enabled || elapsed < Duration::from_secs(1) {
            return;
        }
        if self
            .last_draw
            .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last_draw = Some(Instant::now());
        let fraction = match self.duration {
            Some(secs) => elapsed.as_secs_f64() / secs,
            None => done as f64 / self.iterations.max(1) as f64,
        }
        .min(1.0);
        let width = 30;
        let filled = (fraction * width as f64) as usize;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r[{}{}] {:3.0}% {done} runs",
            "#".repeat(filled),
            " ".repeat(width - filled),
            fraction * 100.0
        );
        let _ = err.flush();
    }

    fn finish(&self) {
        if self.enabled && self.last_draw.is_some() {
            eprintln!();
        }
    }
}

/// Rounds of `bench --compare`: the forms alternate round by round, so a machine whose speed
/// drifts (thermal throttling, other jobs) moves both alike; the ratio is the median of the
/// rounds' ratios.
const COMPARE_ROUNDS: usize = 5;

/// `bench --compare`: int8 and f32 side by side.
pub fn compare(pipeline_args: &PipelineArgs, args: &BenchArgs, as_json: bool) -> Result<(), Error> {
    let texts = texts(args)?;
    let mut forms = Vec::new();
    for precision in [Precision::Int8, Precision::F32] {
        let mut a = pipeline_args.clone();
        a.precision = precision;
        forms.push(a.load()?);
    }
    let log_level = log::max_level();
    log::set_max_level(log::LevelFilter::Error.min(log_level));
    for p in forms.iter_mut() {
        for t in &texts {
            p.run(t)?;
        }
        for i in 0..args.warmup {
            p.run(&texts[i % texts.len()])?;
        }
    }
    let per_round = args.iterations.div_ceil(COMPARE_ROUNDS).max(1);
    let mut inference: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::with_capacity(COMPARE_ROUNDS);
    for _ in 0..COMPARE_ROUNDS {
        let mut round_p50 = [0u32; 2];
        for (f, p) in forms.iter_mut().enumerate() {
            let mut round = Vec::with_capacity(per_round);
            for i in 0..per_round {
                let out = p.run(&texts[i % texts.len()])?;
                round.push(out.latency.inference_us.min(u32::MAX as u64) as u32);
            }
            round.sort_unstable();
            round_p50[f] = percentile(&round, 50.0);
            inference[f].extend(round);
        }
        ratios.push(round_p50[1] as f64 / round_p50[0].max(1) as f64);
    }
    log::set_max_level(log_level);
    ratios.sort_by(f64::total_cmp);
    let ratio = ratios[ratios.len() / 2];
    let settings: Vec<Setting> = forms.iter().map(Setting::of).collect();
    let rows: Vec<serde_json::Value> = forms
        .iter()
        .zip(&mut inference)
        .zip(&settings)
        .map(|((p, samples), setting)| {
            samples.sort_unstable();
            json!({
                "precision": setting.precision.precision,
                "kernels": setting.kernels,
                "inference_us": {
                    "p50": percentile(samples, 50.0),
                    "p90": percentile(samples, 90.0),
                    "samples": samples.len(),
                },
                "load_ms": p.load_seconds() * 1e3,
                "memory_plan_bytes": p.memory_plan().total(),
            })
        })
        .collect();
    let auto = &settings[0].precision;
    let auto_picks = attnprompt::precision::choose(Precision::Auto, true)?;
    if as_json {
        outln!(
            "{}",
            json!({
                "forms": rows,
                "f32_over_int8": ratio,
                "rounds": COMPARE_ROUNDS,
                "runs_per_round": per_round,
                "auto": {"precision": auto_picks.precision, "reason": auto_picks.reason},
                "int8_kernel": auto.int8_kernel,
                "setting": {
                    "model": settings[0].model,
                    "max_seq": settings[0].max_seq,
                    "threads": settings[0].threads,
                    "target": settings[0].target,
                    "cpu": settings[0].cpu,
                    "cpu_features": settings[0].cpu_features,
                    "tract_version": settings[0].tract_version,
                    "profile": settings[0].profile,
                },
            })
        );
        return Ok(());
    }
    let s = &settings[0];
    outln!("attnprompt bench --compare");
    outln!("  model      {}", s.model);
    outln!(
        "  max_seq {}, threads {}, target {}, {}, tract {}",
        s.max_seq,
        s.threads,
        s.target,
        s.profile,
        s.tract_version
    );
    outln!("  cpu        {} [{}]", s.cpu, s.cpu_features.join(" "));
    outln!(
        "  runs       {COMPARE_ROUNDS} rounds × {per_round} per form, alternating, over {} texts",
        texts.len()
    );
    outln!();
    outln!(
        "{:<6} {:>16} {:>16} {:>10} {:>12}  kernels",
        "form",
        "inference p50 µs",
        "inference p90 µs",
        "load ms",
        "memory plan"
    );
    for row in &rows {
        let kernels: Vec<String> = row["kernels"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|k| format!("{} ×{}", k[0].as_str().unwrap_or(""), k[1]))
            .collect();
        outln!(
            "{:<6} {:>16} {:>16} {:>10.0} {:>12}  {}",
            row["precision"].as_str().unwrap_or(""),
            row["inference_us"]["p50"].as_u64().unwrap_or(0),
            row["inference_us"]["p90"].as_u64().unwrap_or(0),
            row["load_ms"].as_f64().unwrap_or(0.0),
            format_size(row["memory_plan_bytes"].as_u64().unwrap_or(0)),
            kernels.join(", ")
        );
    }
    outln!();
    let faster = if ratio <= 1.0 {
        format!("f32 is {:.1}× faster", 1.0 / ratio)
    } else {
        format!("int8 is {ratio:.1}× faster")
    };
    outln!("f32 / int8 inference time: {ratio:.3} (median of {COMPARE_ROUNDS} rounds): {faster}");
    outln!(
        "auto picks {} here ({})",
        auto_picks.precision,
        auto_picks.reason
    );
    Ok(())
}
