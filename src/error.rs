//! Typed errors of the library. The binary maps them to messages and exit codes.

use std::path::PathBuf;

/// Everything that can go wrong while loading or running the pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // ---- load time: model, tokenizer, configuration ----
    #[error("model directory not found: {path} (pass --model DIR or set ATTNPROMPT_MODEL)")]
    ModelDirMissing { path: PathBuf },

    #[error("no model given and none found next to the binary or in the source tree (looked in: {looked_in}); pass --model DIR or set ATTNPROMPT_MODEL")]
    NoDefaultModel { looked_in: String },

    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot load the ONNX model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },

    #[error("the model {path} has no attention outputs: no Softmax node produces a [batch, heads, seq, seq] tensor, so there is no self-attention to read")]
    NoAttention { path: PathBuf },

    #[error("the model {path} lacks the input `{name}` that a BERT-family encoder needs")]
    MissingInput { path: PathBuf, name: &'static str },

    #[error("the tokenizer and the model {path} come from different vocabularies: the tokenizer has {tokenizer_vocab} tokens, the model's embedding table {model_rows} rows (ids past it would index outside the table)")]
    VocabularyMismatch {
        path: PathBuf,
        tokenizer_vocab: usize,
        model_rows: usize,
    },

    #[error("cannot load the tokenizer {path}: {reason}")]
    TokenizerLoad { path: PathBuf, reason: String },

    #[error("cannot load the part-of-speech tagger {path}: {reason}")]
    TaggerLoad { path: PathBuf, reason: String },

    #[error("cannot load the Chinese dictionary {path}: {reason}")]
    DictionaryLoad { path: PathBuf, reason: String },

    /// A language's pipeline, loaded when a text first needed it, could not be (the reason is
    /// kept and given to every text of that language).
    #[error("{0}")]
    LanguagePipeline(String),

    #[error("{path} line {line}: {reason}")]
    Dataset {
        path: PathBuf,
        line: usize,
        reason: String,
    },

    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("invalid layer selection `{spec}`: {reason}")]
    Layers { spec: String, reason: String },

    #[error("the pipeline needs {needed} but the memory budget is {budget}; {suggestion}.\nMemory plan:\n{plan}")]
    OverBudget {
        budget: String,
        needed: String,
        plan: String,
        suggestion: String,
    },

    #[error("template error: {0}")]
    Template(String),

    // ---- per text ----
    #[error("empty text: nothing to find keywords in")]
    EmptyText,

    #[error("text is {len} bytes, over the limit of {max} bytes per text")]
    TextTooLong { len: usize, max: usize },

    #[error("text is not valid UTF-8 (first invalid byte at offset {offset})")]
    InvalidUtf8 { offset: usize },

    #[error("cannot read the document: {0}")]
    ReadDocument(String),

    #[error("tokenizer failed: {0}")]
    Tokenize(String),

    #[error("inference failed: {0}")]
    Inference(String),

    #[error("no keyword candidates: the text has only stopwords, punctuation or unknown tokens")]
    NoKeywords,

    /// From [`crate::encoder::Encoder::load`]; `Pipeline::load` reports it as [`Error::OverBudget`]
    /// with the whole plan.
    #[error("loading the model peaks at {load_peak} bytes of heap, over the {left} bytes the memory budget leaves for it")]
    ModelOverBudget { load_peak: u64, left: u64 },

    #[error("the model's vocabulary does not cover this text: no word of it is known to the model (tokens unknown to it: {unknown}; a script or symbols it was not trained on)")]
    NotCovered { unknown: usize },

    #[error("the prompt needs {needed} bytes but the prompt buffer holds {capacity} bytes; use a shorter template or text")]
    PromptTooLong { needed: usize, capacity: usize },
}

impl Error {
    /// True for errors caused by one input text (the pipeline itself is fine and can go on).
    pub fn is_input_error(&self) -> bool {
        matches!(
            self,
            Error::EmptyText
                | Error::TextTooLong { .. }
                | Error::InvalidUtf8 { .. }
                | Error::Tokenize(_)
                | Error::NoKeywords
                | Error::NotCovered { .. }
                | Error::PromptTooLong { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, Error>;
