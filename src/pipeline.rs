//! The whole flow, one straight path: text → tokens → tensors → attention → token scores →
//! word scores → keywords → prompt, timing each stage.

use std::sync::Arc;
use std::time::Instant;

use crate::config::{Candidates, Config, Layers, Strategy, MAX_PHRASE_WORDS, MAX_TEXT_BYTES};
use crate::encoder::{Encoder, ModelFacts};
use crate::error::{Error, Result};
use crate::keywords::{self, Candidate, CandidateGenerator, Keyword, StopwordNgrams, Word};
use crate::nounphrase::NounPhrases;
use crate::prompt::{PromptBuf, Template};
use crate::scores;
use crate::tagger::{default_tagger_dir, Tagger, DEFAULT_TAGGER_NAME};
use crate::tokenize::{TextTokenizer, Tokens};

/// Microseconds spent in each stage of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Latency {
    pub tokenize_us: u64,
    pub inference_us: u64,
    pub ranking_us: u64,
    pub prompt_us: u64,
    pub total_us: u64,
}

/// The result of one text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Output {
    pub keywords: Vec<Keyword>,
    pub prompt: String,
    /// The text had more tokens than `max_seq`; only the first `kept_bytes` bytes were read.
    pub truncated: bool,
    pub kept_bytes: usize,
    /// Real tokens fed to the model, [CLS] and [SEP] included.
    pub tokens: usize,
    pub latency: Latency,
}

/// A loaded, planned pipeline. `run` reuses its buffers from one text to the next.
pub struct Pipeline {
    config: Config,
    layers: Vec<usize>,
    tokenizer: TextTokenizer,
    encoder: Encoder,
    template: Template,
    candidates: Box<dyn CandidateGenerator + Send>,
    buffers: Buffers,
}

/// Per-text working memory, kept between runs.
#[derive(Default)]
struct Buffers {
    tokens: Tokens,
    scores: Vec<f32>,
    scratch: Vec<f32>,
    words: Vec<Word>,
    candidates: Vec<Candidate>,
    prompt: PromptBuf,
}

impl Pipeline {
    /// Loads the tokenizer and model of `config.model_dir` and plans the model for
    /// `config.max_seq`. Everything that can be checked without a text is checked here.
    pub fn load(config: Config) -> Result<Self> {
        config.validate()?;
        let template = Template::from_name_or_text(&config.template)?;
        if !config.model_dir.is_dir() {
            return Err(Error::ModelDirMissing {
                path: config.model_dir.clone(),
            });
        }
        let tokenizer = TextTokenizer::load(&config.tokenizer_file(), config.max_seq)?;
        let encoder = Encoder::load(&config.model_file(), config.max_seq, false)?;
        let layers = config.layers_or_default().resolve(encoder.facts().layers)?;
        Ok(Pipeline {
            layers,
            tokenizer,
            encoder,
            template,
            candidates: candidate_generator(&config)?,
            config,
            buffers: Buffers::default(),
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn model_facts(&self) -> &ModelFacts {
        self.encoder.facts()
    }

    /// The layer indices the strategy reads.
    pub fn layers(&self) -> &[usize] {
        &self.layers
    }

    pub fn vocab_size(&self) -> usize {
        self.tokenizer.vocab_size()
    }

    pub fn candidate_generator(&self) -> &'static str {
        self.candidates.name()
    }

    /// Replaces the candidate generator (stopword-delimited n-grams by default).
    pub fn set_candidate_generator(&mut self, generator: Box<dyn CandidateGenerator + Send>) {
        self.candidates = generator;
    }

    /// Finds the keywords of `text` and builds its prompt.
    pub fn run(&mut self, text: &str) -> Result<Output> {
        let t0 = Instant::now();
        check_text(text)?;
        let b = &mut self.buffers;

        self.tokenizer.tokenize_into(text, &mut b.tokens)?;
        if b.tokens.truncated {
            log::warn!(
                "text cut to its first {} tokens ({} of {} bytes read)",
                self.config.max_seq,
                b.tokens.kept_bytes,
                text.len()
            );
        }
        let t1 = Instant::now();

        let special = self.tokenizer.special_ids();
        let output = self.encoder.run(&b.tokens.ids, special.pad)?;
        let t2 = Instant::now();

        let n = b.tokens.len();
        scores::token_scores(
            &output,
            n,
            self.config.strategy,
            &self.layers,
            &mut b.scores,
            &mut b.scratch,
        )?;
        keywords::words(text, &b.tokens, &b.scores, special, &mut b.words);
        self.candidates
            .candidates(text, &b.words, &mut b.candidates);
        let keywords = keywords::rank(text, &b.words, &b.candidates, self.config.top_k);
        if keywords.is_empty() {
            return Err(Error::NoKeywords {
                max_seq: self.config.max_seq,
            });
        }
        let t3 = Instant::now();

        self.template.render(&keywords, text, &mut b.prompt)?;
        let t4 = Instant::now();

        let us = |a: Instant, b: Instant| b.duration_since(a).as_micros() as u64;
        Ok(Output {
            keywords,
            prompt: b.prompt.as_str().to_string(),
            truncated: b.tokens.truncated,
            kept_bytes: b.tokens.kept_bytes,
            tokens: n,
            latency: Latency {
                tokenize_us: us(t0, t1),
                inference_us: us(t1, t2),
                ranking_us: us(t2, t3),
                prompt_us: us(t3, t4),
                total_us: us(t0, t4),
            },
        })
    }

    /// Checks raw bytes (e.g. a line read from a file) and runs them.
    pub fn run_bytes(&mut self, bytes: &[u8]) -> Result<Output> {
        let text = std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        self.run(text)
    }
}

/// The candidate generator `config` asks for; noun phrases load the POS tagger.
pub fn candidate_generator(config: &Config) -> Result<Box<dyn CandidateGenerator + Send>> {
    Ok(match config.candidates {
        Candidates::Stopwords => Box::new(StopwordNgrams {
            max_words: MAX_PHRASE_WORDS,
        }),
        Candidates::NounPhrases => Box::new(NounPhrases::new(Arc::new(load_tagger(config)?))),
    })
}

/// The tagger of `config.tagger_dir`, or the shipped one.
pub fn load_tagger(config: &Config) -> Result<Tagger> {
    let dir = match &config.tagger_dir {
        Some(d) => d.clone(),
        None => default_tagger_dir(&config.model_dir).ok_or_else(|| Error::TaggerLoad {
            path: config
                .model_dir
                .parent()
                .unwrap_or(&config.model_dir)
                .join(DEFAULT_TAGGER_NAME),
            reason: "not found beside the model directory nor in the source tree; pass \
                     --candidates stopwords to run without a tagger"
                .into(),
        })?,
    };
    Tagger::load(&dir)
}

/// The checks at the edge, before any work: non-empty and within the byte limit.
pub fn check_text(text: &str) -> Result<()> {
    if text.trim().is_empty() {
        return Err(Error::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(Error::TextTooLong {
            len: text.len(),
            max: MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

impl Config {
    /// The configured layers, or the strategy's default: the last layer for `received` and
    /// `cls`, all layers for `rollout` (a rollout through one layer is just that layer).
    pub fn layers_or_default(&self) -> Layers {
        match (&self.layers, self.strategy) {
            (Some(l), _) => l.clone(),
            (None, Strategy::Rollout) => Layers::All,
            (None, _) => Layers::Last,
        }
    }
}
