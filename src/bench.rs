//! Latency statistics and the setting every benchmark report carries.
//!
//! Samples live in fixed-capacity rings (`heapless::HistoryBuffer`), so a run of any length
//! stays in constant memory; percentiles are exact over the kept window (the last
//! `LATENCY_WINDOW` samples) and the report states the window.

use heapless::HistoryBuffer;

use crate::pipeline::{Latency, Pipeline};

/// Samples kept per stage.
pub const LATENCY_WINDOW: usize = 4096;

/// The stages timed on each run, in report order.
pub const STAGES: [&str; 5] = ["tokenize", "inference", "ranking", "prompt", "total"];

/// The last `LATENCY_WINDOW` latencies of each stage, in microseconds.
pub struct Samples {
    stages: [HistoryBuffer<u32, LATENCY_WINDOW>; 5],
    seen: u64,
}

impl Default for Samples {
    fn default() -> Self {
        Samples {
            stages: std::array::from_fn(|_| HistoryBuffer::new()),
            seen: 0,
        }
    }
}

/// min / p50 / p90 / p99 / max / mean of one stage, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Summary {
    pub min: u32,
    pub p50: u32,
    pub p90: u32,
    pub p99: u32,
    pub max: u32,
    pub mean: f64,
    /// Samples the figures are computed over (at most `LATENCY_WINDOW`).
    pub samples: usize,
}

impl Samples {
    pub fn push(&mut self, l: &Latency) {
        let v = [
            l.tokenize_us,
            l.inference_us,
            l.ranking_us,
            l.prompt_us,
            l.total_us,
        ];
        for (ring, us) in self.stages.iter_mut().zip(v) {
            ring.write(us.min(u32::MAX as u64) as u32);
        }
        self.seen += 1;
    }

    /// Runs recorded in all (may exceed the window).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// The summary of each stage, in `STAGES` order. `scratch` holds a sorted copy of one
    /// window at a time.
    pub fn summaries(&self, scratch: &mut Vec<u32>) -> [Option<Summary>; 5] {
        std::array::from_fn(|i| summarize(&self.stages[i], scratch))
    }
}

fn summarize(ring: &HistoryBuffer<u32, LATENCY_WINDOW>, sorted: &mut Vec<u32>) -> Option<Summary> {
    sorted.clear();
    sorted.extend(ring.oldest_ordered().copied());
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_unstable();
    let n = sorted.len();
    Some(Summary {
        min: sorted[0],
        p50: percentile(sorted, 50.0),
        p90: percentile(sorted, 90.0),
        p99: percentile(sorted, 99.0),
        max: sorted[n - 1],
        mean: sorted.iter().map(|&v| v as f64).sum::<f64>() / n as f64,
        samples: n,
    })
}

/// Nearest-rank percentile of sorted samples: the smallest value with at least p% of the
/// samples at or below it.
pub fn percentile(sorted: &[u32], p: f64) -> u32 {
    let n = sorted.len();
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    sorted[rank.clamp(1, n) - 1]
}

/// Where a figure was measured: model, shape, threads, machine, build.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Setting {
    pub model: String,
    pub model_sha256: String,
    pub quantization: String,
    /// The precision the matrix products run in, why, and the int8 kernel `auto` read.
    pub precision: crate::precision::Choice,
    pub max_seq: usize,
    pub threads: usize,
    pub target: &'static str,
    pub cpu: String,
    pub cpu_features: Vec<&'static str>,
    /// Matrix-product kernels in tract's optimized plan, with how many nodes use each.
    pub kernels: Vec<(String, usize)>,
    pub tract_version: &'static str,
    pub profile: &'static str,
    pub latency_window: usize,
}

impl Setting {
    pub fn of(pipeline: &Pipeline) -> Setting {
        let facts = pipeline.model_facts();
        Setting {
            model: facts.path.display().to_string(),
            model_sha256: sha256_file(&facts.path).unwrap_or_else(|e| format!("unreadable: {e}")),
            quantization: facts.quantization(),
            precision: facts.precision.clone(),
            max_seq: facts.max_seq,
            threads: facts.threads,
            target: env!("ATTNPROMPT_TARGET"),
            cpu: cpu_model(),
            cpu_features: cpu_features(),
            kernels: facts.kernels.clone(),
            tract_version: env!("ATTNPROMPT_TRACT_VERSION"),
            profile: env!("ATTNPROMPT_PROFILE"),
            latency_window: LATENCY_WINDOW,
        }
    }
}

fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    // Streamed from disk: reading the whole model would show up in the peak heap reported.
    match crate::files::embedded(path) {
        Some(bytes) => hasher.update(bytes),
        None => {
            std::io::copy(&mut std::fs::File::open(path)?, &mut hasher)?;
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The CPU's model name from /proc/cpuinfo (`model name`, or on ARM `Model`/`CPU part`).
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
    };
    field("model name")
        .or_else(|| field("Model"))
        .or_else(|| field("CPU part").map(|p| format!("ARM CPU part {p}")))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The instruction-set features that matter for tract's kernels, detected at run time.
pub fn cpu_features() -> Vec<&'static str> {
    #[allow(unused_mut)]
    let mut f = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! x86 {
            ($($name:tt),*) => {$(
                if std::arch::is_x86_feature_detected!($name) { f.push($name); }
            )*};
        }
        x86!(
            "sse4.1",
            "avx",
            "avx2",
            "fma",
            "f16c",
            "avx512f",
            "avx512bw",
            "avx512vnni",
            "avxvnni"
        );
        // AMX's detection is not stable in std: the kernel's flags say it.
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
        if flags.split_whitespace().any(|x| x == "amx_int8") {
            f.push("amx-int8");
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        macro_rules! arm64 {
            ($($name:tt),*) => {$(
                if std::arch::is_aarch64_feature_detected!($name) { f.push($name); }
            )*};
        }
        arm64!("neon", "fp16", "dotprod", "i8mm", "bf16", "sve", "sve2");
    }
    #[cfg(target_arch = "arm")]
    {
        let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let has = |w: &str| {
            info.lines()
                .filter(|l| l.starts_with("Features"))
                .any(|l| l.split_whitespace().any(|x| x == w))
        };
        for name in ["neon", "vfpv4", "asimddp"] {
            if has(name) {
                f.push(name);
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), 50);
        assert_eq!(percentile(&v, 90.0), 90);
        assert_eq!(percentile(&v, 99.0), 99);
        assert_eq!(percentile(&v, 100.0), 100);
        assert_eq!(percentile(&[7], 50.0), 7);
        assert_eq!(percentile(&[1, 2], 50.0), 1);
        assert_eq!(percentile(&[1, 2], 90.0), 2);
    }

    #[test]
    fn window_keeps_the_last_samples() {
        let mut s = Samples::default();
        for i in 0..(LATENCY_WINDOW as u64 + 10) {
            s.push(&Latency {
                tokenize_us: i,
                inference_us: 1000 + i,
                ranking_us: 0,
                prompt_us: 0,
                total_us: 2000,
            });
        }
        assert_eq!(s.seen(), LATENCY_WINDOW as u64 + 10);
        let mut scratch = Vec::new();
        let [tok, inf, _, _, total] = s.summaries(&mut scratch);
        let tok = tok.unwrap();
        assert_eq!(tok.samples, LATENCY_WINDOW);
        assert_eq!(tok.min, 10, "the 10 oldest samples left the window");
        assert_eq!(tok.max, LATENCY_WINDOW as u32 + 9);
        assert_eq!(inf.unwrap().min, 1010);
        let total = total.unwrap();
        assert_eq!((total.min, total.p50, total.max), (2000, 2000, 2000));
        assert_eq!(total.mean, 2000.0);
    }

    #[test]
    fn empty_window_has_no_summary() {
        let s = Samples::default();
        assert!(s.summaries(&mut Vec::new())[0].is_none());
    }
}
