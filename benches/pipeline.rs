//! criterion benchmarks: the whole pipeline at seq 32 and 128, and each cheap stage alone
//! (tokenizer, ranking from stored attention, prompt rendering). `cargo bench` runs them;
//! CI only builds them (`cargo bench --no-run`) so they keep compiling.

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};

use attnprompt::config::{Strategy, MAX_PHRASE_WORDS};
use attnprompt::encoder::{Encoder, EncoderSpec};
use attnprompt::keywords::{self, CandidateGenerator, Ranker, StopwordNgrams};
use attnprompt::prompt::{PromptBuf, Template};
use attnprompt::scores;
use attnprompt::tokenize::TextTokenizer;
use attnprompt::{Config, Pipeline};

const TEXT: &str = "Edge devices such as the Jetson Orin Nano run small transformer encoders next \
to a local language model, so every megabyte and millisecond spent on keyword extraction is \
taken from the model that answers the question.";

fn model_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/all-MiniLM-L6-v2-int8")
}

fn pipeline(c: &mut Criterion) {
    for max_seq in [32, 128] {
        let mut cfg = Config::new(model_dir());
        cfg.max_seq = max_seq;
        let mut p = Pipeline::load(cfg).unwrap();
        c.bench_function(&format!("pipeline/seq{max_seq}"), |b| {
            b.iter(|| p.run(TEXT).unwrap())
        });
    }
}

fn tokenizer(c: &mut Criterion) {
    let tok = TextTokenizer::load(&model_dir().join("tokenizer.json"), 128).unwrap();
    let mut out = Default::default();
    c.bench_function("tokenize", |b| {
        b.iter(|| tok.tokenize_into(TEXT, &mut out).unwrap())
    });
}

/// Token scores, words, candidates and ranking from attention computed once.
fn ranking(c: &mut Criterion) {
    let tok = TextTokenizer::load(&model_dir().join("tokenizer.json"), 128).unwrap();
    let tokens = tok.tokenize(TEXT).unwrap();
    let mut enc = Encoder::load(&model_dir().join("model.onnx"), &EncoderSpec::new(128)).unwrap();
    let attention = enc.run(&tokens.ids).unwrap();
    let n = tokens.len();
    let generator = StopwordNgrams {
        max_words: MAX_PHRASE_WORDS,
    };
    let (mut s, mut scratch, mut words, mut cands, mut kws) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut ranker = Ranker::with_capacity(128 * MAX_PHRASE_WORDS);
    for (name, strategy, layers) in [
        ("received-last", Strategy::Received, vec![5]),
        ("rollout-all", Strategy::Rollout, (0..6).collect()),
    ] {
        c.bench_function(&format!("ranking/{name}"), |b| {
            b.iter(|| {
                scores::token_scores(&attention, n, strategy, &layers, &mut s, &mut scratch)
                    .unwrap();
                keywords::words(TEXT, &tokens, &s, tok.special_ids(), &mut words);
                generator.candidates(TEXT, &words, &mut cands);
                ranker.rank(TEXT, &words, &cands, 5, &mut kws);
            })
        });
    }
}

fn prompt(c: &mut Criterion) {
    let template =
        Template::from_name_or_text("Explain {keywords}; start with {keyword}.").unwrap();
    let keyword = |text: &str, start: usize, score: f32| attnprompt::Keyword {
        text: text.into(),
        start,
        end: start + text.len(),
        score,
    };
    let kws = vec![
        keyword("edge inference", 0, 2.0),
        keyword("quantized attention", 15, 1.5),
        keyword("keyword extraction", 35, 1.0),
    ];
    let mut out = PromptBuf::new();
    c.bench_function("prompt", |b| {
        b.iter(|| template.render(&kws, TEXT, &mut out).unwrap())
    });
}

criterion_group!(benches, pipeline, tokenizer, ranking, prompt);
criterion_main!(benches);
