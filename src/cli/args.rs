//! Options shared by every command that loads a pipeline.

use std::path::PathBuf;

use clap::Args;

use attnprompt::config::{
    self, Candidates, Lang, Layers, Strategy, DEFAULT_MAX_SEQ, DEFAULT_TOP_K, MODEL_ENV,
    PRECISION_ENV,
};
use attnprompt::lang::{LangSettings, Pipelines};
use attnprompt::model_cache::{self, CACHE_ENV};
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

    /// Language of the texts: auto (per text, from its script: Chinese when Han characters are
    /// at least a quarter of its letters), en or zh. It chooses the candidates, the default
    /// template and the default model (zh: models/multilingual-e5-small-zh-en-int8).
    #[arg(long, default_value = "auto", value_name = "auto|en|zh", value_parser = parse_lang)]
    pub lang: Lang,

    /// Candidate phrases: nounphrase (noun phrases from the POS tagger), stopwords (runs of
    /// content words between stopwords and punctuation; no tagger needed) or jieba (Chinese
    /// noun-like words) [default: nounphrase for English, jieba for Chinese]
    #[arg(short, long, value_parser = parse_candidates)]
    pub candidates: Option<Candidates>,

    /// Directory of the POS tagger (tagger.bin) [default: the shipped models/pos-tagger-ewt]
    #[arg(long, value_name = "DIR")]
    pub tagger: Option<PathBuf>,

    /// Prompt template: `en`, `zh`, or a template text with {keyword}, {keywords}, {text}
    /// [default: the text's language]
    #[arg(short, long, value_name = "NAME|TEMPLATE")]
    pub template: Option<String>,

    /// Model directory holding model.onnx and tokenizer.json [default: the shipped model]
    #[arg(short, long, env = MODEL_ENV, value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Threads for tract's matrix products and its row-wise ops (N in all, this one among them;
    /// the other ops run on one). At seq 128 a second core gave 1.29× (int8) and 1.48× (f32) on
    /// a 2-core AVX-512 x86; short texts gain less (int8 nothing at 32 tokens). Measure with
    /// `bench` before raising it (BENCHMARKS.md, "Threads").
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,

    /// Precision of the matrix products: auto (int8 where it is the faster form: CPUs with int8
    /// dot products, x86 VNNI, AVX-VNNI or AMX and ARM SDOT such as the Pi 5, and AVX2-only x86,
    /// where this crate's own int8 product runs; f32 elsewhere, the Pi 4 among them, where
    /// tract's int8 products are slow), int8 (the shipped weights as they are, 30 MiB less
    /// memory; on AVX2-only x86 the product weights are widened to 16 bits, 9 MiB more), or f32
    /// (int8 weights dequantized at load: 52 MiB of weights instead of 22). `inspect` says what
    /// auto picks and why; `bench --compare` times both.
    #[arg(long, env = PRECISION_ENV, default_value = "auto", value_name = "auto|int8|f32", value_parser = parse_precision)]
    pub precision: Precision,

    /// Peak resident memory the process may reach, e.g. 96MiB: the pipeline (weights,
    /// activations, tokenizer, buffers), the model's load transient and the binary. Checked
    /// against the memory plan before the model is read and before it is parsed; a budget too
    /// small is refused with the plan. Default: no limit.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory_budget: Option<u64>,

    /// Longest sequence the model reads at once, in tokens ([CLS] and [SEP] included), 3 to 512.
    /// A text costs its own tokens; a longer text or document is read whole, in windows of this
    /// many tokens that never cut a word. The memory plan is sized for it.
    #[arg(long, default_value_t = DEFAULT_MAX_SEQ, value_name = "TOKENS")]
    pub max_seq: usize,

    /// Directory of the model cache, or `off`. On its first load a model's form (f32 or int8),
    /// as tract has simplified it, is kept there as NNEF (47 MiB in f32, 20.5 MiB in int8 for
    /// the shipped model); later starts read it and skip decoding the ONNX file and most of
    /// tract's graph passes. Not used under --memory-budget or for an embedded model
    /// [default: $XDG_CACHE_HOME/attnprompt, else ~/.cache/attnprompt]
    #[arg(long, env = CACHE_ENV, value_name = "DIR|off")]
    pub model_cache: Option<PathBuf>,
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

fn parse_lang(s: &str) -> Result<Lang, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

fn parse_layers(s: &str) -> Result<Layers, String> {
    s.parse().map_err(|e: Error| e.to_string())
}

impl PipelineArgs {
    /// The settings every language's pipeline starts from.
    pub fn settings(&self) -> LangSettings {
        let mut cfg = Config::new(PathBuf::new());
        cfg.max_seq = self.max_seq;
        cfg.strategy = self.strategy;
        cfg.layers = self.layers.clone();
        cfg.top_k = self.top_k;
        cfg.candidates = self.candidates.unwrap_or(config::DEFAULT_CANDIDATES);
        cfg.tagger_dir = self.tagger.clone();
        cfg.template = self.template.clone().unwrap_or_else(|| "en".into());
        cfg.threads = self.threads;
        cfg.precision = self.precision;
        cfg.memory_budget = self.memory_budget;
        cfg.model_cache = match &self.model_cache {
            Some(dir) if dir.as_os_str() == model_cache::OFF => None,
            Some(dir) => Some(dir.clone()),
            None => model_cache::default_dir(),
        };
        LangSettings {
            base: cfg,
            model: self.model.clone(),
            template_given: self.template.is_some(),
            candidates_given: self.candidates.is_some(),
        }
    }

    /// The configuration for one language (`auto` is English here: `inspect`, `bench`).
    pub fn config(&self) -> Result<Config, Error> {
        let lang = if self.lang == Lang::Zh {
            Lang::Zh
        } else {
            Lang::En
        };
        self.settings().config(lang)
    }

    pub fn load(&self) -> Result<Pipeline, Error> {
        let cfg = self.config()?;
        log::info!("loading {}", cfg.model_dir.display());
        Pipeline::load(cfg)
    }

    /// Pipelines per language for the texts of a run.
    pub fn pipelines(&self) -> Pipelines {
        Pipelines::new(self.lang, self.settings())
    }
}
