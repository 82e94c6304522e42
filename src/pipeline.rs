//! The whole flow, one straight path: text → tokens → tensors → attention → token scores →
//! word scores → keywords → prompt, timing each stage.

use std::sync::Arc;
use std::time::Instant;

use crate::candidates::chinese::{default_dict_dir, ChineseCandidates, DICT_DIR_NAME, DICT_FILE};
use crate::candidates::english::NounPhrases;
use crate::candidates::tagger::{default_tagger_dir, Tagger, DEFAULT_TAGGER_NAME};
use crate::config::{Candidates, Config, Layers, Strategy, MAX_PHRASE_WORDS, MIN_SEQ};
use crate::document::{self, DocumentReader, CHUNK_BYTES};
use crate::encoder::{Encoder, EncoderSpec, ModelFacts};
use crate::error::{Error, Result};
use crate::keywords::{CandidateGenerator, Keyword, StopwordNgrams};
use crate::memory::{self, format_size, MemoryPart, MemoryPlan, PROCESS_HOW};
use crate::precision::Precision;
use crate::prompt::Template;
use crate::ranking::{check_text, utf8};
use crate::scores;
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
    /// Bytes read: the whole text or document.
    pub bytes: usize,
    /// Real tokens fed to the model, [CLS] and [SEP] included (once per window).
    pub tokens: usize,
    /// Windows of at most `max_seq` tokens the model read (1 for a text).
    pub windows: usize,
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
    memory: MemoryPlan,
    load_seconds: f64,
}

/// Per-text working memory, reserved at load from `max_seq` and kept between runs.
struct Buffers {
    /// A text cut at `max_seq` (`profile_inference`).
    tokens: Tokens,
    scratch: Vec<f32>,
    document: DocumentReader,
}

impl Buffers {
    fn new(max_seq: usize, top_k: usize) -> Self {
        Buffers {
            tokens: Tokens::with_capacity(max_seq),
            scratch: Vec::with_capacity(2 * max_seq),
            document: DocumentReader::new(max_seq, top_k),
        }
    }

    fn reserved_bytes(&self) -> usize {
        use std::mem::size_of;
        self.tokens.reserved_bytes()
            + self.scratch.capacity() * size_of::<f32>()
            + self.document.reserved_bytes()
    }
}

// The three constants below were measured with the counting allocator (`heap.rs`) on the
// shipped model and tokenizer, x86_64, tract 0.23.9, tokenizers 0.22.2; tests/memory.rs checks
// the plan they give against the measured peak at seq 32, 128 and 512.

/// Heap the tokenizer holds per vocabulary entry (token strings in two hash maps, the
/// WordPiece model): 4,733,936 bytes for 30,522 entries (155.1 each).
pub const TOKENIZER_BYTES_PER_VOCAB_ENTRY: u64 = 156;
/// The same for a SentencePiece Unigram vocabulary in flat arrays (`unigram.rs`): 954,659
/// bytes for the 41,505 entries of the shipped multilingual model (23.0 each; `tokenizers`'
/// own Unigram model held 570 each, 23.5 MB).
pub const UNIGRAM_BYTES_PER_VOCAB_ENTRY: u64 = 24;
/// Peak heap the tokenizer uses per byte of input while encoding (a normalized copy with
/// per-byte alignments, the pre-tokenized splits, the encoding): 4.9 MB for 65 kB of text.
pub const TOKENIZER_WORK_BYTES_PER_TEXT_BYTE: u64 = 76;
/// Heap tract holds per node of the optimized graph beyond the weights (nodes, facts, op
/// parameters, the plan and its state): 0.42 MB over 933 nodes.
pub const GRAPH_BYTES_PER_NODE: u64 = 450;

impl Pipeline {
    /// Loads the tokenizer and model of `config.model_dir` and plans the model for
    /// `config.max_seq`. Everything that can be checked without a text is checked here.
    pub fn load(config: Config) -> Result<Self> {
        config.validate()?;
        let template = Template::from_name_or_text(&config.template)?;
        config.check_model_dir()?;
        let started = Instant::now();
        let lap = |what: &str, since: Instant| {
            log::debug!("load: {what} {:.1} ms", since.elapsed().as_secs_f64() * 1e3);
        };
        // Without a memory budget the model loads on a second thread, beside the tokenizer and
        // the candidate generator (on 2 cores a cold start is about 30 ms shorter). Under a
        // budget the parts load one after the other, the model last, each checked against what
        // the parts before it left; and a bad tagger is refused before a model load is paid for.
        let beside = config.memory_budget.is_none();
        let (tokenizer, candidates, loaded_beside) = std::thread::scope(|scope| {
            let model = beside.then(|| {
                scope.spawn(|| Encoder::load(&config.model_file(), &encoder_spec(&config)))
            });
            let tokenizer = TextTokenizer::load(&config.tokenizer_file(), config.max_seq);
            lap("tokenizer", started);
            let t = Instant::now();
            let candidates = candidate_generator(&config);
            lap("candidates", t);
            let encoder = model.map(|m| m.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
            (tokenizer, candidates, encoder)
        });
        // The errors in the order a load one part after the other meets them.
        let tokenizer = tokenizer?;
        let candidates = candidates?;
        let loaded_beside = loaded_beside.transpose()?;
        let buffers = Buffers::new(config.max_seq, config.top_k);
        let before_model = parts_before_model(&config, &tokenizer, &*candidates, &buffers);
        let held_before: u64 = before_model.iter().map(|p| p.bytes).sum();
        // What the budget leaves for the model's load: checked by the encoder before it reads
        // the file and before tract parses it, so the process never goes over the budget.
        let load_budget = config
            .memory_budget
            .map(|b| b.saturating_sub(memory::PROCESS_RESIDENT_BYTES + held_before));
        let load = |spec: EncoderSpec| match Encoder::load(&config.model_file(), &spec) {
            Err(Error::ModelOverBudget { load_peak, .. }) => Err(load_over_budget(
                &config,
                &before_model,
                held_before + load_peak,
            )),
            other => other,
        };
        let vocab_size = Some(tokenizer.vocab_size());
        let mut encoder = match loaded_beside {
            Some(encoder) => {
                // What the encoder checks before parsing when it is given the vocabulary.
                let facts = encoder.facts();
                match facts.embedding_rows {
                    Some(rows) if tokenizer.vocab_size() > rows => {
                        return Err(Error::VocabularyMismatch {
                            path: facts.path.clone(),
                            tokenizer_vocab: tokenizer.vocab_size(),
                            model_rows: rows,
                        })
                    }
                    _ => encoder,
                }
            }
            None => load(EncoderSpec {
                load_budget,
                vocab_size,
                ..encoder_spec(&config)
            })?,
        };
        let mut memory = memory_plan(&config, &encoder, &before_model);
        if let Some(budget) = config.memory_budget {
            let facts = encoder.facts();
            if memory.needed() > budget
                && config.precision == Precision::Auto
                && !facts.precision.is_int8()
                && facts.int8_ops > 0
            {
                // The f32 form loaded within the budget but does not fit running (its
                // activations); `auto` chose it for speed: the int8 form holds a third of the
                // weights. Slower on this CPU, so say so.
                let reason = format!(
                    "auto: the f32 form needs {}, over the memory budget of {}; the int8 form \
                     fits, slower on this CPU (its int8 kernel: {})",
                    format_size(memory.needed()),
                    format_size(budget),
                    facts.precision.int8_kernel
                );
                drop(encoder);
                encoder = load(EncoderSpec {
                    precision: Precision::Int8,
                    precision_reason: Some(reason),
                    load_budget,
                    vocab_size,
                    ..encoder_spec(&config)
                })?;
                memory = memory_plan(&config, &encoder, &before_model);
            }
            if memory.needed() > budget {
                // Everything loaded so far is dropped on return: nothing stays half-loaded.
                return Err(over_budget(&config, budget, &memory));
            }
            let choice = &encoder.facts().precision;
            if choice.for_memory {
                log::warn!("{}", choice.reason);
            }
        }
        let layers = encoder.facts().read_layers.clone();
        Ok(Pipeline {
            layers,
            tokenizer,
            encoder,
            template,
            candidates,
            config,
            buffers,
            memory,
            load_seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The memory plan computed at load.
    pub fn memory_plan(&self) -> &MemoryPlan {
        &self.memory
    }

    /// Seconds `load` took: tokenizer, model parsing, optimization and planning (cold start).
    pub fn load_seconds(&self) -> f64 {
        self.load_seconds
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

    /// Finds the keywords of `text` and builds its prompt. A text longer than `max_seq` tokens
    /// is read whole, in windows, as [`Pipeline::run_document`] reads a document.
    pub fn run(&mut self, text: &str) -> Result<Output> {
        let t0 = Instant::now();
        check_text(text)?;
        let read = self.read_document(text.as_bytes())?;
        self.finish(read, text, t0)
    }

    /// Reads a whole document from `reader`, streamed: a chunk of [`CHUNK_BYTES`] at a time,
    /// each cut into windows of at most `max_seq` tokens (no word cut), the model run on each,
    /// and every window's candidate phrases summed in a table of
    /// [`document::PHRASE_TABLE_CAPACITY`] phrases. Memory does not grow with the document. Keyword offsets are byte offsets in
    /// the document. A template with `{text}` is refused: the document is not kept.
    pub fn run_document(&mut self, reader: impl std::io::Read) -> Result<Output> {
        if self.template.uses_text() {
            return Err(Error::Template(
                "{text} needs the whole text, and a document is read in chunks, not kept: use a \
                 template without {text} for --document"
                    .into(),
            ));
        }
        let t0 = Instant::now();
        let read = self.read_document(reader)?;
        self.finish(read, "", t0)
    }

    /// The keywords of what [`Pipeline::read_document`] read, and the prompt.
    fn finish(&mut self, read: document::Read, text: &str, t0: Instant) -> Result<Output> {
        let d = &mut self.buffers.document;
        let t = Instant::now();
        d.keywords(&read, self.config.top_k)?;
        let ranking_us = read.ranking_us + t.elapsed().as_micros() as u64;
        let t = Instant::now();
        d.render(&self.template, text)?;
        let prompt_us = t.elapsed().as_micros() as u64;
        Ok(Output {
            keywords: d.rank.keywords.clone(),
            prompt: d.rank.prompt.as_str().to_string(),
            bytes: read.bytes,
            tokens: read.tokens,
            windows: read.windows,
            latency: Latency {
                tokenize_us: read.tokenize_us,
                inference_us: read.inference_us,
                ranking_us,
                prompt_us,
                total_us: t0.elapsed().as_micros() as u64,
            },
        })
    }

    /// Reads a document into the phrase table, the model scoring each window.
    fn read_document(&mut self, reader: impl std::io::Read) -> Result<document::Read> {
        let Pipeline {
            config,
            layers,
            tokenizer,
            encoder,
            candidates,
            buffers: b,
            ..
        } = self;
        let scratch = &mut b.scratch;
        b.document.read(
            reader,
            tokenizer,
            &**candidates,
            config.max_seq,
            |ids, scores| {
                let output = encoder.run(ids)?;
                scores::token_scores(&output, ids.len(), config.strategy, layers, scores, scratch)
            },
        )
    }

    /// Tokenizes `text` and runs the model with per-node timing, adding into `acc` (see
    /// [`Encoder::profile`]).
    pub fn profile_inference(
        &mut self,
        text: &str,
        acc: &mut Vec<crate::encoder::OpTime>,
    ) -> Result<()> {
        check_text(text)?;
        self.tokenizer
            .tokenize_into(text, &mut self.buffers.tokens)?;
        self.encoder.profile(&self.buffers.tokens.ids, acc)
    }

    /// Checks raw bytes (e.g. a line read from a file) and runs them.
    pub fn run_bytes(&mut self, bytes: &[u8]) -> Result<Output> {
        // `run` does the other checks.
        self.run(utf8(bytes)?)
    }
}

/// The parts of the plan that are loaded before the model: their heap is held through the
/// model's load.
fn parts_before_model(
    config: &Config,
    tokenizer: &TextTokenizer,
    candidates: &dyn CandidateGenerator,
    buffers: &Buffers,
) -> Vec<MemoryPart> {
    let vocab = tokenizer.vocab_size() as u64;
    vec![
        MemoryPart {
            name: "tokenizer",
            bytes: if tokenizer.is_unigram() {
                UNIGRAM_BYTES_PER_VOCAB_ENTRY
            } else {
                TOKENIZER_BYTES_PER_VOCAB_ENTRY
            } * vocab
                + TOKENIZER_WORK_BYTES_PER_TEXT_BYTE * CHUNK_BYTES as u64,
            how: "per vocabulary entry, plus encoding one chunk of a text",
        },
        MemoryPart {
            name: "candidates",
            bytes: candidates.memory_bytes(config.max_seq) as u64,
            how: match config.candidates {
                Candidates::NounPhrases => "the POS tagger's tables for noun phrases",
                Candidates::Jieba => "jieba's dictionary and tags for Chinese words",
                Candidates::Stopwords => "none beyond the stopword list",
            },
        },
        MemoryPart {
            name: "buffers",
            bytes: buffers.reserved_bytes() as u64,
            how: "reserved at load from max_seq",
        },
    ]
}

fn memory_plan(config: &Config, encoder: &Encoder, before_model: &[MemoryPart]) -> MemoryPlan {
    let facts = encoder.facts();
    let held_before: u64 = before_model.iter().map(|p| p.bytes).sum();
    let mut parts = vec![
        MemoryPart {
            name: "weights",
            bytes: facts.weight_bytes,
            how: if facts.dequantized_matmuls > 0 {
                "the ONNX initializers, int8 weights dequantized to f32"
            } else {
                "the ONNX initializers as tract repacks them"
            },
        },
        MemoryPart {
            name: "activations",
            bytes: facts.activations_bytes,
            how: "peak of the tensors alive at once along tract's plan",
        },
        MemoryPart {
            name: "model graph",
            bytes: GRAPH_BYTES_PER_NODE * facts.nodes as u64,
            how: "per node of the optimized graph",
        },
    ];
    parts.extend_from_slice(before_model);
    MemoryPlan {
        max_seq: config.max_seq,
        threads: config.threads,
        parts,
        load_peak: held_before + facts.load_peak_bytes,
        process: memory::PROCESS_RESIDENT_BYTES,
    }
}

/// The error for a plan over budget: every part, and the longest sequence that would fit.
fn over_budget(config: &Config, budget: u64, plan: &MemoryPlan) -> Error {
    let activations = plan.part("activations").unwrap_or(0);
    let fixed = plan.process + plan.total() - activations;
    let loading = plan.process + plan.load_peak;
    // Activations grow as a·s + b·s² with the sequence s (attention is s × s), so for a
    // shorter sequence they shrink at least in proportion: scaling linearly bounds them above.
    // The load peak does not depend on the sequence.
    let fits = |s: usize| {
        fixed as f64 + activations as f64 * s as f64 / config.max_seq as f64 <= budget as f64
    };
    let suggestion = if loading > budget {
        format!(
            "no sequence length fits: loading the model already needs {} (the process, and the \
             model's weights held twice while tract parses them)",
            format_size(loading)
        )
    } else if fixed > budget {
        format!(
            "no sequence length fits: everything but the activations already needs {}",
            format_size(fixed)
        )
    } else {
        match (MIN_SEQ..config.max_seq).rev().find(|&s| fits(s)) {
            Some(s) => format!("--max-seq {s} or less should fit"),
            None => "no sequence length fits".to_string(),
        }
    };
    Error::OverBudget {
        budget: format_size(budget),
        needed: format_size(plan.needed()),
        plan: plan.to_string(),
        suggestion,
    }
}

/// The error for a model whose load would go over the budget, found before its file is read or
/// parsed: the parts loaded so far and the load's peak.
fn load_over_budget(config: &Config, before_model: &[MemoryPart], load_peak: u64) -> Error {
    let budget = config.memory_budget.unwrap_or(0);
    let needed = memory::PROCESS_RESIDENT_BYTES + load_peak;
    let mut plan = String::new();
    for p in before_model {
        plan += &memory::plan_line(p.name, p.bytes, p.how);
        plan += "\n";
    }
    plan += &memory::plan_line(
        "load peak",
        load_peak,
        "heap while loading: the parts above, the model file and its weights held twice",
    );
    plan += "\n";
    plan += &memory::plan_line("process", memory::PROCESS_RESIDENT_BYTES, PROCESS_HOW);
    plan += "\n";
    plan += &format!("  {:<18} {:>10}", "needed", format_size(needed));
    Error::OverBudget {
        budget: format_size(budget),
        needed: format_size(needed),
        plan,
        suggestion: format!(
            "no sequence length fits: loading the model ({}) needs {} before its activations \
             are counted",
            config.model_file().display(),
            format_size(needed)
        ),
    }
}

/// What the encoder is loaded with: `config`'s sequence length, threads and precision, and only
/// the layers its strategy reads.
pub fn encoder_spec(config: &Config) -> EncoderSpec {
    EncoderSpec {
        max_seq: config.max_seq,
        threads: config.threads,
        precision: config.precision,
        layers: Some(config.layers_or_default()),
        keep_model_outputs: false,
        precision_reason: None,
        load_budget: None,
        vocab_size: None,
        cache_dir: config.model_cache.clone(),
        int8_products: None,
    }
}

/// The candidate generator `config` asks for; noun phrases load the POS tagger.
pub fn candidate_generator(config: &Config) -> Result<Box<dyn CandidateGenerator + Send>> {
    Ok(match config.candidates {
        Candidates::Stopwords => Box::new(StopwordNgrams {
            max_words: MAX_PHRASE_WORDS,
        }),
        Candidates::NounPhrases => Box::new(NounPhrases::new(Arc::new(load_tagger(config)?))),
        Candidates::Jieba => {
            let dir = match &config.dict_dir {
                Some(d) => d.clone(),
                None => {
                    default_dict_dir(&config.model_dir).ok_or_else(|| Error::DictionaryLoad {
                        path: config
                            .model_dir
                            .parent()
                            .unwrap_or(&config.model_dir)
                            .join(DICT_DIR_NAME)
                            .join(DICT_FILE),
                        reason: "not found beside the model directory nor in the source tree"
                            .into(),
                    })?
                }
            };
            Box::new(ChineseCandidates::load(&dir)?)
        }
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

/// The embedded files (`files.rs`) are the ones the loaders ask for.
#[cfg(all(test, feature = "embed-model"))]
mod embedded_tests {
    use std::path::Path;

    use crate::candidates::tagger::{DEFAULT_TAGGER_NAME, TAGGER_FILE};
    use crate::config::{embedded_model_dir, MODEL_FILE, TOKENIZER_FILE};
    use crate::files::{is_dir, is_file, read, EMBEDDED_DIR};

    /// The embedded names are the ones the loaders ask for, and the bytes are the shipped files.
    #[test]
    fn embedded_files_are_the_shipped_ones() {
        let dir = embedded_model_dir().unwrap();
        let tagger = Path::new(EMBEDDED_DIR)
            .join(DEFAULT_TAGGER_NAME)
            .join(TAGGER_FILE);
        for (path, shipped) in [
            (dir.join(MODEL_FILE), "all-MiniLM-L6-v2-int8/model.onnx"),
            (
                dir.join(TOKENIZER_FILE),
                "all-MiniLM-L6-v2-int8/tokenizer.json",
            ),
            (tagger, "pos-tagger-ewt/tagger.bin"),
        ] {
            let on_disk = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("models")
                    .join(shipped),
            )
            .unwrap();
            assert_eq!(&*read(&path).unwrap(), &on_disk[..], "{}", path.display());
        }
        assert!(is_dir(&dir));
        assert!(!is_file(&dir.join("other.onnx")));
    }
}
