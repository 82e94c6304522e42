//! Configuration of a pipeline, its defaults and the limits checked at the edge.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, Result};

/// Environment variable that names the model directory (overridden by `--model`).
pub const MODEL_ENV: &str = "ATTNPROMPT_MODEL";
/// Environment variable that sets `--precision` (overridden by the option).
pub const PRECISION_ENV: &str = "ATTNPROMPT_PRECISION";
/// Name of the shipped model's directory under `models/`.
pub const DEFAULT_MODEL_NAME: &str = "all-MiniLM-L6-v2-int8";
/// Name of the shipped Chinese (and English) model's directory under `models/`: what Chinese
/// text runs on unless `--model` is given.
pub const CHINESE_MODEL_NAME: &str = "multilingual-e5-small-zh-en-int8";
/// Files a model directory holds.
pub const MODEL_FILE: &str = "model.onnx";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Default longest sequence (tokens, including [CLS] and [SEP]).
pub const DEFAULT_MAX_SEQ: usize = 128;
/// BERT's position table has 512 rows: no longer sequence is possible.
pub const MAX_SEQ_LIMIT: usize = 512;
/// [CLS], one token, [SEP].
pub const MIN_SEQ: usize = 3;
/// Longest text accepted, in bytes. Longer texts are refused before tokenization so a stray
/// multi-megabyte line cannot make the tokenizer allocate without bound; within this limit,
/// texts longer than `max_seq` tokens are read in windows. A document of any length is
/// `--document`, read a chunk at a time.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Default number of keywords returned.
pub const DEFAULT_TOP_K: usize = 5;
/// Default candidate scheme (chosen on Inspec, see EVALUATION.md).
pub const DEFAULT_CANDIDATES: Candidates = Candidates::NounPhrases;
/// Most keywords one run can return.
pub const MAX_TOP_K: usize = 64;
/// Most threads tract may use.
pub const MAX_THREADS: usize = 64;
/// Longest candidate phrase, in words.
pub const MAX_PHRASE_WORDS: usize = 4;

/// The precision asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// int8 where tract's int8 form is the faster one on this CPU (an ARM dot-product kernel),
    /// f32 elsewhere (`precision.rs`).
    #[default]
    Auto,
    /// The model as it ships: int8 weights, activations quantized at run time.
    Int8,
    /// f32 products: an int8 model's weights are dequantized to f32 constants at load.
    F32,
}

impl Precision {
    pub const NAMES: [&'static str; 3] = ["auto", "int8", "f32"];

    pub fn name(self) -> &'static str {
        match self {
            Precision::Auto => "auto",
            Precision::Int8 => "int8",
            Precision::F32 => "f32",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Precision::Auto),
            "int8" => Ok(Precision::Int8),
            "f32" => Ok(Precision::F32),
            _ => Err(Error::Config(format!(
                "unknown precision `{s}` (expected one of: {})",
                Precision::NAMES.join(", ")
            ))),
        }
    }
}

/// How token scores are read from the attention probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Attention each token receives: column sums over the real (non-pad) query rows.
    Received,
    /// The [CLS] row: how much [CLS] attends to each token.
    Cls,
    /// Attention rollout (Abnar & Zuidema 2020) across the selected layers, [CLS] row.
    Rollout,
}

impl Strategy {
    pub const NAMES: [&'static str; 3] = ["received", "cls", "rollout"];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::Received => "received",
            Strategy::Cls => "cls",
            Strategy::Rollout => "rollout",
        }
    }
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "received" => Ok(Strategy::Received),
            "cls" => Ok(Strategy::Cls),
            "rollout" => Ok(Strategy::Rollout),
            _ => Err(Error::Config(format!(
                "unknown strategy `{s}` (expected one of: {})",
                Strategy::NAMES.join(", ")
            ))),
        }
    }
}

/// Where candidate phrases come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Candidates {
    /// Noun phrases from the POS tagger, `<NN.*|JJ|VBN>*<NN.*>` (src/candidates/english.rs).
    NounPhrases,
    /// Runs of 1–4 content words between stopwords and punctuation; needs no tagger.
    Stopwords,
    /// Chinese: runs of noun-like words from jieba's segmentation and tags
    /// (src/candidates/chinese.rs).
    Jieba,
}

impl Candidates {
    pub const NAMES: [&'static str; 3] = ["nounphrase", "stopwords", "jieba"];

    pub fn name(self) -> &'static str {
        match self {
            Candidates::NounPhrases => "nounphrase",
            Candidates::Stopwords => "stopwords",
            Candidates::Jieba => "jieba",
        }
    }
}

impl FromStr for Candidates {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nounphrase" => Ok(Candidates::NounPhrases),
            "stopwords" => Ok(Candidates::Stopwords),
            "jieba" => Ok(Candidates::Jieba),
            _ => Err(Error::Config(format!(
                "unknown candidate scheme `{s}` (expected one of: {})",
                Candidates::NAMES.join(", ")
            ))),
        }
    }
}

/// The language of a text: it chooses the candidates, the default template and the default
/// model (src/lang.rs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Decided per text from its script.
    Auto,
    En,
    Zh,
}

impl Lang {
    pub const NAMES: [&'static str; 3] = ["auto", "en", "zh"];

    pub fn name(self) -> &'static str {
        Lang::NAMES[self as usize]
    }
}

impl FromStr for Lang {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Lang::Auto),
            "en" => Ok(Lang::En),
            "zh" => Ok(Lang::Zh),
            _ => Err(Error::Config(format!(
                "unknown language `{s}` (expected one of: {})",
                Lang::NAMES.join(", ")
            ))),
        }
    }
}

/// Which layers' attention is averaged (or, for rollout, multiplied through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layers {
    Last,
    All,
    /// Zero-based layer indices, in increasing order, without repeats.
    List(Vec<usize>),
}

impl Layers {
    /// The concrete layer indices for a model with `n_layers` attention layers.
    pub fn resolve(&self, n_layers: usize) -> Result<Vec<usize>> {
        match self {
            Layers::Last => Ok(vec![n_layers - 1]),
            Layers::All => Ok((0..n_layers).collect()),
            Layers::List(list) => {
                if let Some(&bad) = list.iter().find(|&&l| l >= n_layers) {
                    return Err(Error::Layers {
                        spec: self.to_string(),
                        reason: format!(
                            "layer {bad} does not exist: the model has layers 0..={}",
                            n_layers - 1
                        ),
                    });
                }
                Ok(list.clone())
            }
        }
    }
}

impl std::fmt::Display for Layers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Layers::Last => f.write_str("last"),
            Layers::All => f.write_str("all"),
            Layers::List(l) => {
                let parts: Vec<String> = l.iter().map(|i| i.to_string()).collect();
                f.write_str(&parts.join(","))
            }
        }
    }
}

impl FromStr for Layers {
    type Err = Error;
    /// `last`, `all`, or a comma-separated list of zero-based indices such as `0,3,5`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::Layers {
            spec: s.to_string(),
            reason: reason.to_string(),
        };
        match s.trim() {
            "last" => Ok(Layers::Last),
            "all" => Ok(Layers::All),
            "" => Err(bad(
                "empty (expected `last`, `all` or a list such as `0,3,5`)",
            )),
            list => {
                let mut layers = Vec::new();
                for part in list.split(',') {
                    let layer: usize = part.trim().parse().map_err(|_| {
                        bad("expected `last`, `all` or zero-based layer numbers such as `0,3,5`")
                    })?;
                    layers.push(layer);
                }
                layers.sort_unstable();
                layers.dedup();
                Ok(Layers::List(layers))
            }
        }
    }
}

/// Everything a pipeline needs, chosen once at load.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding `model.onnx` and `tokenizer.json`.
    pub model_dir: PathBuf,
    /// Longest sequence the model is planned for (a text runs on its own tokens, up to this).
    pub max_seq: usize,
    pub strategy: Strategy,
    /// Layers to read; `None` means the strategy's default (see `layers_or_default`).
    pub layers: Option<Layers>,
    pub top_k: usize,
    pub candidates: Candidates,
    /// Directory of the POS tagger (`tagger.bin`) for noun-phrase candidates; `None`: the
    /// shipped one, found beside the model directory or in the source tree.
    pub tagger_dir: Option<PathBuf>,
    /// Directory of jieba's dictionary (`dict.txt`) for Chinese candidates; `None`: the shipped
    /// one, `models/jieba`.
    pub dict_dir: Option<PathBuf>,
    /// Prompt template: a built-in name (`en`, `zh`) or the template text itself.
    pub template: String,
    /// Threads for tract's matrix products and row-wise ops, the calling one among them (1:
    /// everything on the calling thread).
    pub threads: usize,
    /// int8 or f32 matrix products; `Auto` picks per CPU (src/precision.rs).
    pub precision: Precision,
    /// Memory the pipeline may hold, in bytes; `None`: no limit. Checked at load against the
    /// memory plan.
    pub memory_budget: Option<u64>,
    /// Directory of the model cache (`model_cache.rs`); `None`: no cache (the library's
    /// default; the command line's is `model_cache::default_dir`).
    pub model_cache: Option<PathBuf>,
}

impl Config {
    /// Defaults with the given model directory.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Config {
            model_dir: model_dir.into(),
            max_seq: DEFAULT_MAX_SEQ,
            strategy: Strategy::Received,
            layers: None,
            top_k: DEFAULT_TOP_K,
            candidates: DEFAULT_CANDIDATES,
            tagger_dir: None,
            dict_dir: None,
            template: "en".to_string(),
            threads: 1,
            precision: Precision::Auto,
            memory_budget: None,
            model_cache: None,
        }
    }

    /// Checks the limits that do not need the model.
    pub fn validate(&self) -> Result<()> {
        if !(MIN_SEQ..=MAX_SEQ_LIMIT).contains(&self.max_seq) {
            return Err(Error::Config(format!(
                "max sequence length {} is outside {MIN_SEQ}..={MAX_SEQ_LIMIT} tokens",
                self.max_seq
            )));
        }
        if !(1..=MAX_TOP_K).contains(&self.top_k) {
            return Err(Error::Config(format!(
                "top-k {} is outside 1..={MAX_TOP_K}",
                self.top_k
            )));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(Error::Config(format!(
                "threads {} is outside 1..={MAX_THREADS}",
                self.threads
            )));
        }
        Ok(())
    }

    /// Checks that the model directory exists (its files are checked when loaded).
    pub fn check_model_dir(&self) -> Result<()> {
        if crate::files::is_dir(&self.model_dir) {
            Ok(())
        } else {
            Err(Error::ModelDirMissing {
                path: self.model_dir.clone(),
            })
        }
    }

    pub fn model_file(&self) -> PathBuf {
        self.model_dir.join(MODEL_FILE)
    }

    pub fn tokenizer_file(&self) -> PathBuf {
        self.model_dir.join(TOKENIZER_FILE)
    }
}

/// The model directory built into the binary (feature `embed-model`), if any.
pub fn embedded_model_dir() -> Option<PathBuf> {
    crate::files::has_embedded_files()
        .then(|| Path::new(crate::files::EMBEDDED_DIR).join(DEFAULT_MODEL_NAME))
}

/// Where the shipped model is looked for, in order: `models/<name>` next to the binary, one and
/// two levels above it (an unpacked release, `target/<profile>/` in a checkout), then the source
/// tree this crate was built from.
pub fn default_model_candidates() -> Vec<PathBuf> {
    default_candidates_named(DEFAULT_MODEL_NAME)
}

/// [`default_model_candidates`] for the model directory `name`.
pub fn default_candidates_named(name: &str) -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(Path::to_path_buf);
        for _ in 0..3 {
            let Some(d) = dir else { break };
            candidates.push(d.join("models").join(name));
            dir = d.parent().map(Path::to_path_buf);
        }
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(name),
    );
    candidates
}

/// The model directory to use: the explicit one if given (it must exist), else the model built
/// into the binary (feature `embed-model`), else the first default candidate that holds a model
/// file.
pub fn resolve_model_dir(explicit: Option<&Path>) -> Result<PathBuf> {
    resolve_model_dir_for(explicit, Lang::En)
}

/// [`resolve_model_dir`] for a language: Chinese text runs on [`CHINESE_MODEL_NAME`] unless a
/// model is given (it is not built into the binary).
pub fn resolve_model_dir_for(explicit: Option<&Path>, lang: Lang) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return if dir.is_dir() {
            Ok(dir.to_path_buf())
        } else {
            Err(Error::ModelDirMissing {
                path: dir.to_path_buf(),
            })
        };
    }
    let name = if lang == Lang::Zh {
        CHINESE_MODEL_NAME
    } else {
        if let Some(dir) = embedded_model_dir() {
            return Ok(dir);
        }
        DEFAULT_MODEL_NAME
    };
    let candidates = default_candidates_named(name);
    candidates
        .iter()
        .find(|c| c.join(MODEL_FILE).is_file())
        .cloned()
        .ok_or_else(|| Error::NoDefaultModel {
            looked_in: candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `error.rs` depends on nothing, so its messages spell the variable out: the same one.
    #[test]
    fn model_errors_name_the_model_variable() {
        let e = Error::ModelDirMissing {
            path: PathBuf::from("x"),
        };
        assert!(e.to_string().contains(MODEL_ENV));
        let e = Error::NoDefaultModel {
            looked_in: String::new(),
        };
        assert!(e.to_string().contains(MODEL_ENV));
    }

    #[test]
    fn layers_parse() {
        assert_eq!("last".parse::<Layers>().unwrap(), Layers::Last);
        assert_eq!("all".parse::<Layers>().unwrap(), Layers::All);
        assert_eq!(
            "5, 0,3,3".parse::<Layers>().unwrap(),
            Layers::List(vec![0, 3, 5])
        );
        assert!("".parse::<Layers>().is_err());
        assert!("1,x".parse::<Layers>().is_err());
        assert!("-1".parse::<Layers>().is_err());
    }

    #[test]
    fn layers_resolve_checks_range() {
        assert_eq!(Layers::Last.resolve(6).unwrap(), vec![5]);
        assert_eq!(Layers::All.resolve(3).unwrap(), vec![0, 1, 2]);
        let err = Layers::List(vec![2, 6]).resolve(6).unwrap_err();
        assert!(err.to_string().contains("layer 6 does not exist"), "{err}");
    }

    #[test]
    fn validate_limits() {
        let mut c = Config::new("x");
        assert!(c.validate().is_ok());
        c.max_seq = 513;
        assert!(c.validate().is_err());
        c.max_seq = 2;
        assert!(c.validate().is_err());
        c.max_seq = 128;
        c.top_k = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn strategy_names_round_trip() {
        for name in Strategy::NAMES {
            assert_eq!(name.parse::<Strategy>().unwrap().name(), name);
        }
        assert!("mean".parse::<Strategy>().is_err());
    }
}
