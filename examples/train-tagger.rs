//! Trains the part-of-speech tagger shipped in `models/pos-tagger-ewt/` on UD English EWT.
//!
//! ```text
//! cargo run --release --example train-tagger -- [--data DIR] [--out DIR] [--tokens bert|ewt]
//!     [--train-only] [--iterations N] [--prune W]
//! ```
//!
//! An example rather than a second binary: it is a maintainer's tool run once per model
//! change, not something a device needs, and it still compiles with every `cargo test`.
//!
//! `--tokens bert` (the default, what ships) re-tokenizes each sentence the way the pipeline
//! does, with the shipped BERT tokenizer's pre-tokenizer words, and gives each word the Penn tag
//! (CoNLL-U column 5) of the EWT token its first byte falls in; `--tokens ewt` trains on EWT's
//! own tokens (for comparison). Accuracy is always reported on the test split in both
//! tokenizations. Weights with |w| below the prune threshold are dropped and the rest quantized to
//! int16.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use attnprompt::config::{DEFAULT_MODEL_NAME, TOKENIZER_FILE};
use attnprompt::tagger::ewt::{read_conllu, to_pipeline_words, Token};
use attnprompt::tagger::{normalize, train, Tagger, TAGGER_FILE};
use attnprompt::tokenize::TextTokenizer;

/// Defaults of what ships (see models/pos-tagger-ewt/README.md for the measured alternatives).
const ITERATIONS: usize = 10;
const PRUNE: f32 = 0.0;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opt = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = opt("--data")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/datasets/ud-english-ewt"));
    let out_dir = opt("--out")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/pos-tagger-ewt"));
    let mode = opt("--tokens").unwrap_or_else(|| "bert".into());
    let iterations: usize =
        opt("--iterations").map_or(ITERATIONS, |s| s.parse().expect("--iterations N"));
    let prune: f32 = opt("--prune").map_or(PRUNE, |s| s.parse().expect("--prune W"));
    let tok = TextTokenizer::load(
        &root
            .join("models")
            .join(DEFAULT_MODEL_NAME)
            .join(TOKENIZER_FILE),
        512,
    )
    .expect("shipped tokenizer");

    let split = |name: &str| {
        let path = data.join(format!("en_ewt-ud-{name}.conllu"));
        read_conllu(&path).unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut train_raw, test_raw) = (split("train"), split("test"));
    // Train + dev by default (nothing is tuned on dev here); `--train-only` for train alone.
    if !args.iter().any(|a| a == "--train-only") {
        train_raw.extend(split("dev"));
    }
    let mut tag_ix: HashMap<String, u8> = HashMap::new();
    let mut tags: Vec<String> = Vec::new();
    let mut convert = |words: Vec<String>, t: Vec<String>| train::Sentence {
        words,
        tags: t
            .into_iter()
            .map(|t| {
                *tag_ix.entry(t.clone()).or_insert_with(|| {
                    tags.push(t);
                    (tags.len() - 1) as u8
                })
            })
            .collect(),
    };
    let ewt_words = |s: &[Token]| {
        (
            s.iter().map(|t| t.form.clone()).collect::<Vec<_>>(),
            s.iter().map(|t| t.tag.clone()).collect::<Vec<_>>(),
        )
    };
    let mut train_set: Vec<train::Sentence> = train_raw
        .iter()
        .filter_map(|s| {
            if mode == "ewt" {
                Some(ewt_words(s))
            } else {
                to_pipeline_words(s, &tok)
            }
        })
        .map(|(w, t)| convert(w, t))
        .collect();
    let test_bert: Vec<train::Sentence> = test_raw
        .iter()
        .filter_map(|s| to_pipeline_words(s, &tok))
        .map(|(w, t)| convert(w, t))
        .collect();
    let test_ewt: Vec<train::Sentence> = test_raw
        .iter()
        .map(|s| ewt_words(s))
        .map(|(w, t)| convert(w, t))
        .collect();
    let n_words: usize = train_set.iter().map(|s| s.words.len()).sum();
    eprintln!(
        "train: {} sentences, {n_words} words ({mode} tokens), {} tags",
        train_set.len(),
        tags.len()
    );

    let train_vocab: std::collections::HashSet<String> = train_set
        .iter()
        .flat_map(|s| s.words.iter().map(|w| normalize(w)))
        .collect();
    let t0 = Instant::now();
    let weights = train::train(tags, &mut train_set, iterations, prune, |it, acc| {
        eprintln!("  iteration {}: train accuracy {:.2}%", it + 1, acc * 100.0)
    });
    let tagger = Tagger::from_weights(weights).expect("valid weights");
    eprintln!("trained in {:.1} s", t0.elapsed().as_secs_f64());

    std::fs::create_dir_all(&out_dir).expect("output directory");
    let file = out_dir.join(TAGGER_FILE);
    tagger.write(&file).expect("write weights");
    let loaded = Tagger::load(&out_dir).expect("reload weights");

    let accuracy = |set: &[train::Sentence]| {
        let (mut right, mut total) = (0usize, 0usize);
        let (mut oov_right, mut oov_total) = (0usize, 0usize);
        let mut out = Vec::new();
        let t0 = Instant::now();
        for s in set {
            let words: Vec<&str> = s.words.iter().map(String::as_str).collect();
            loaded.tag(&words, &mut out);
            right += out.iter().zip(&s.tags).filter(|(a, b)| a == b).count();
            total += words.len();
            for ((w, a), b) in words.iter().zip(&out).zip(&s.tags) {
                if !train_vocab.contains(&normalize(w)) {
                    oov_total += 1;
                    oov_right += usize::from(a == b);
                }
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        (
            right as f64 / total as f64 * 100.0,
            total,
            set.len() as f64 / secs,
            oov_right as f64 / oov_total.max(1) as f64 * 100.0,
            oov_total,
        )
    };
    let (acc_b, n_b, sps, oov_b, n_oov_b) = accuracy(&test_bert);
    let (acc_e, n_e, _, _, _) = accuracy(&test_ewt);
    let (features, entries, bytes) = loaded.size();
    let file_bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    println!(
        "tokens={mode} iterations={iterations} prune={prune} train sentences={}",
        train_set.len()
    );
    println!("test accuracy, pipeline (BERT pre-tokenizer) words: {acc_b:.2}% of {n_b} words");
    println!("  of them unseen in training: {oov_b:.2}% of {n_oov_b} words");
    println!("test accuracy, EWT tokens: {acc_e:.2}% of {n_e} words");
    println!("features {features}, weights {entries}, file {file_bytes} bytes, tables in memory ~{bytes} bytes");
    println!("speed: {sps:.0} sentences/s (this build, 1 thread)");
}
