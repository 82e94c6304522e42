//! Options shared by every command that loads a pipeline.

use std::path::PathBuf;

use clap::Args;

use attnprompt::config::{
    self, Candidates, Layers, Strategy, DEFAULT_MAX_SEQ, DEFAULT_TOP_K, MODEL_ENV, PRECISION_ENV,
};
use attnprompt::{Config, Error, Pipeline, Precision};

#[derive(Args, Debug, Clone)]
pub struct PipelineArgs {
    /// Number of keywords to keep.
    #[arg(short = 'k', long, default_value_t = DEFAULT_TOP_K, value_name = "N")]
    pub top_k: usize,

    /// How token scores are read from attention: received (attention each token receives),
    /// cls (the [CLS] row) or rollout (attention rollout across layers).
    #[arg(short, long, default_value = "received", value_parser = parse_strategy)]
    pub strategy: Strategy,

    /// Layers to read: last, all, or zero-based indices such as 0,3,5 [default: last; all for rollout]
    #[arg(short, long, value_parser = parse_layers)]
    pub layers: Option<Layers>,

    /// Candidate phrases: nounphrase (noun phrases from the POS tagger) or stopwords (runs of
    /// content words between stopwords and punctuation; no tagger needed).
    #[arg(short, long, default_value = "nounphrase", value_parser = parse_candidates)]
    pub candidates: Candidates,

    /// Directory of the POS tagger (tagger.bin) [default: the shipped models/pos-tagger-ewt]
    #[arg(long, value_name = "DIR")]
    pub tagger: Option<PathBuf>,

    /// Prompt template: `en`, `zh`, or a template text with {keyword}, {keywords}, {text}.
    #[arg(short, long, default_value = "en", value_name = "NAME|TEMPLATE")]
    pub template: String,

    /// Model directory holding model.onnx and tokenizer.json [default: the shipped model]
    #[arg(short, long, env = MODEL_ENV, value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Threads for tract's matrix products.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Precision of the matrix products: auto (int8 where this CPU has int8 dot-product
    /// instructions: AVX-512 VNNI, AVX-VNNI, AMX, ARM SDOT; f32 elsewhere, where tract's int8
    /// kernels are slower), int8 (the shipped weights as they are), or f32 (int8 weights
    /// dequantized at load: 52 MiB of weights instead of 22). `inspect` says what auto picks.
    #[arg(long, env = PRECISION_ENV, default_value = "auto", value_name = "auto|int8|f32", value_parser = parse_precision)]
    pub precision: Precision,

    /// Memory the pipeline may hold (weights, activations, tokenizer, buffers), e.g. 64MiB;
    /// checked against the memory plan at load. Default: no limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_budget: Option<u64>,

    /// Longest sequence in tokens ([CLS] and [SEP] included), 3 to 512. A text costs its own
    /// tokens; longer texts are cut and the cut is reported. The memory plan is sized for it.
    #[arg(long, default_value_t = DEFAULT_MAX_SEQ, value_name = "TOKENS")]
    pub max_seq: usize,
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_size(s: &str) -> Result<u64, String> {
    attnprompt::memory::parse_size(s).map_err(|e| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_candidates(s: &str) -> Result<Candidates, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_layers(s: &str) -> Result<Layers, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl PipelineArgs {
    pub fn config(&self) -> Result<Config, Error> {
        let model_dir = config::resolve_model_dir(self.model.as_deref())?;
        let mut cfg = Config::new(model_dir);
        cfg.max_seq = self.max_seq;
        cfg.strategy = self.strategy;
        cfg.layers = self.layers.clone();
        cfg.top_k = self.top_k;
        cfg.candidates = self.candidates;
        cfg.tagger_dir = self.tagger.clone();
        cfg.template = self.template.clone();
        cfg.threads = self.threads;
        cfg.precision = self.precision;
        cfg.memory_budget = self.memory_budget;
        Ok(cfg)
    }

    pub fn load(&self) -> Result<Pipeline, Error> {
        let cfg = self.config()?;
        log::info!("loading {}", cfg.model_dir.display());
        Pipeline::load(cfg)
    }
}
