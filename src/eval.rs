//! Keyphrase evaluation, the protocol of the keyphrase literature (SAMRank, pke): for each
//! document, the ranked predictions are lowercased, every word stemmed with NLTK's Porter
//! stemmer (src/stem.rs), joined with single spaces, de-duplicated keeping the first, and the top
//! k compared with the set of gold phrases (already stemmed in the data). P@k = tp / min(k,
//! predictions), R@k = tp / |gold|, F1 = 2PR / (P + R); macro = mean over documents, micro =
//! from the summed counts.
//!
//! [`Evaluator`] reads each document as `attnprompt` reads a text or a `--document`: the
//! pipeline's document path ([`crate::document`]), in windows of `max_seq` tokens, each word
//! scored in the window that holds it, a phrase's score summed over its occurrences across
//! windows. A grid of settings costs one model run per window and setting.

use std::collections::HashSet;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;

use crate::candidates::english::NounPhrases;
use crate::config::{Candidates, Config, Layers, Strategy};
use crate::document::DocumentReader;
use crate::encoder::{Encoder, EncoderSpec};
use crate::error::{Error, Result};
use crate::keywords::{Aggregation, CandidateGenerator, StopwordNgrams};
use crate::pipeline::load_tagger;
use crate::ranking::check_text;
use crate::scores;
use crate::stem::stem_phrase;
use crate::tokenize::TextTokenizer;

/// Cut-offs reported by default.
pub const DEFAULT_KS: [usize; 3] = [5, 10, 15];

/// One benchmark document.
#[derive(Debug, Clone)]
pub struct Doc {
    pub name: String,
    pub text: String,
    /// Gold phrases as given (already lowercased and stemmed in the benchmark files).
    pub gold: Vec<String>,
}

/// Reads JSON lines with `text` and `keyphrases` (and optionally `file_name`).
pub fn read_dataset(path: &Path) -> Result<Vec<Doc>> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let mut docs = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| Error::Dataset {
            path: path.to_path_buf(),
            line: i + 1,
            reason,
        };
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
        let text = v["text"]
            .as_str()
            .ok_or_else(|| bad("no string field `text`".into()))?;
        let gold = v["keyphrases"]
            .as_array()
            .ok_or_else(|| bad("no array field `keyphrases`".into()))?
            .iter()
            .map(|k| k.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("`keyphrases` holds a non-string".into()))?;
        docs.push(Doc {
            name: v["file_name"]
                .as_str()
                .map_or_else(|| format!("line {}", i + 1), str::to_string),
            text: text.to_string(),
            gold,
        });
    }
    Ok(docs)
}

/// The scores of one document at each k.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DocScore {
    pub k: Vec<usize>,
    pub tp: Vec<usize>,
    /// min(k, number of distinct predictions)
    pub predicted: Vec<usize>,
    pub gold: usize,
    pub precision: Vec<f64>,
    pub recall: Vec<f64>,
    pub f1: Vec<f64>,
}

/// Normalized, de-duplicated predictions (the protocol's first steps).
pub fn normalize_predictions(predictions: &[String]) -> Vec<String> {
    let mut seen = HashSet::new();
    predictions
        .iter()
        .map(|p| stem_phrase(p))
        .filter(|p| !p.is_empty() && seen.insert(p.clone()))
        .collect()
}

/// Scores ranked `predictions` (raw text) against `gold` (already normalized) at every k.
pub fn score_doc(predictions: &[String], gold: &[String], ks: &[usize]) -> DocScore {
    let preds = normalize_predictions(predictions);
    let gold: HashSet<&str> = gold.iter().map(String::as_str).collect();
    let mut s = DocScore {
        k: ks.to_vec(),
        tp: Vec::new(),
        predicted: Vec::new(),
        gold: gold.len(),
        precision: Vec::new(),
        recall: Vec::new(),
        f1: Vec::new(),
    };
    for &k in ks {
        let top = &preds[..k.min(preds.len())];
        let tp = top.iter().filter(|p| gold.contains(p.as_str())).count();
        let p = if top.is_empty() {
            0.0
        } else {
            tp as f64 / top.len() as f64
        };
        let r = if gold.is_empty() {
            0.0
        } else {
            tp as f64 / gold.len() as f64
        };
        s.tp.push(tp);
        s.predicted.push(top.len());
        s.precision.push(p);
        s.recall.push(r);
        s.f1.push(f1(p, r));
    }
    s
}

fn f1(p: f64, r: f64) -> f64 {
    if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    }
}

/// Macro and micro P/R/F1 (in percent) at each k over a set of documents.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub docs: usize,
    pub k: Vec<usize>,
    pub macro_precision: Vec<f64>,
    pub macro_recall: Vec<f64>,
    pub macro_f1: Vec<f64>,
    pub micro_precision: Vec<f64>,
    pub micro_recall: Vec<f64>,
    pub micro_f1: Vec<f64>,
}

pub fn summarize(scores: &[DocScore], ks: &[usize]) -> Summary {
    let n = scores.len().max(1) as f64;
    let mean = |f: &dyn Fn(&DocScore) -> f64| 100.0 * scores.iter().map(f).sum::<f64>() / n;
    let mut s = Summary {
        docs: scores.len(),
        k: ks.to_vec(),
        macro_precision: Vec::new(),
        macro_recall: Vec::new(),
        macro_f1: Vec::new(),
        micro_precision: Vec::new(),
        micro_recall: Vec::new(),
        micro_f1: Vec::new(),
    };
    for i in 0..ks.len() {
        s.macro_precision.push(mean(&|d| d.precision[i]));
        s.macro_recall.push(mean(&|d| d.recall[i]));
        s.macro_f1.push(mean(&|d| d.f1[i]));
        let tp: usize = scores.iter().map(|d| d.tp[i]).sum();
        let pred: usize = scores.iter().map(|d| d.predicted[i]).sum();
        let gold: usize = scores.iter().map(|d| d.gold).sum();
        let p = if pred == 0 {
            0.0
        } else {
            tp as f64 / pred as f64
        };
        let r = if gold == 0 {
            0.0
        } else {
            tp as f64 / gold as f64
        };
        s.micro_precision.push(100.0 * p);
        s.micro_recall.push(100.0 * r);
        s.micro_f1.push(100.0 * f1(p, r));
    }
    s
}

/// One way of turning attention into keywords.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    pub strategy: Strategy,
    pub layers: Layers,
    pub candidates: Candidates,
    pub aggregation: Aggregation,
}

impl std::fmt::Display for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--strategy {} --layers {} --candidates {}",
            self.strategy.name(),
            self.layers,
            self.candidates.name()
        )?;
        if self.aggregation != Aggregation::DEFAULT {
            write!(f, " (aggregation {})", self.aggregation.name())?;
        }
        Ok(())
    }
}

/// Model, untruncated tokenizer and candidate generators, for scoring whole documents.
pub struct Evaluator {
    max_seq: usize,
    tokenizer: TextTokenizer,
    encoder: Encoder,
    n_layers: usize,
    nounphrases: Option<NounPhrases>,
    stopwords: StopwordNgrams,
    reader: DocumentReader,
    scratch: Vec<f32>,
    windows: usize,
}

impl Evaluator {
    /// Loads the model of `config` (planned for `config.max_seq`), and the tagger if any
    /// setting will need it.
    pub fn load(config: &Config, need_tagger: bool) -> Result<Self> {
        config.validate()?;
        config.check_model_dir()?;
        // Documents are read in windows by the document path, which tokenizes them whole.
        let tokenizer = TextTokenizer::load(&config.tokenizer_file(), config.max_seq)?;
        // Every layer: the settings scored from one run may read any of them.
        let spec = EncoderSpec {
            threads: config.threads,
            precision: config.precision,
            ..EncoderSpec::new(config.max_seq)
        };
        let encoder = Encoder::load(&config.model_file(), &spec)?;
        let n_layers = encoder.facts().layers;
        let nounphrases = if need_tagger {
            Some(NounPhrases::new(Arc::new(load_tagger(config)?)))
        } else {
            None
        };
        Ok(Evaluator {
            max_seq: config.max_seq,
            tokenizer,
            encoder,
            n_layers,
            nounphrases,
            stopwords: StopwordNgrams {
                max_words: crate::config::MAX_PHRASE_WORDS,
            },
            reader: DocumentReader::new(config.max_seq, 1),
            scratch: Vec::with_capacity(2 * config.max_seq),
            windows: 0,
        })
    }

    /// The position prior's scale in tokens (0: none), [`crate::document::POSITION_SCALE_TOKENS`]
    /// unless set.
    pub fn set_position_scale(&mut self, tokens: f32) {
        self.reader.position_scale = tokens;
    }

    /// Keep every phrase occurrence of the document last predicted ([`Evaluator::occurrences`]).
    pub fn record_occurrences(&mut self) {
        self.reader.occurrences = Some(Vec::new());
    }

    /// The phrase occurrences of the document last predicted (its last setting), when recorded.
    pub fn occurrences(&self) -> &[crate::document::Occurrence] {
        self.reader.occurrences.as_deref().unwrap_or(&[])
    }

    /// Model runs so far (one per window).
    pub fn windows(&self) -> usize {
        self.windows
    }

    /// Every candidate phrase of `text`, ranked, for each setting: the text read in windows
    /// by the pipeline's own document path ([`DocumentReader`]), one model run per window and
    /// setting. All of them, not the top k: the protocol cuts at k after de-duplicating stems
    /// (`model` and `models` are one prediction), so a cut before it would leave fewer than k.
    pub fn predict(&mut self, text: &str, settings: &[Setting]) -> Result<Vec<Vec<String>>> {
        check_text(text)?;
        let mut results = Vec::with_capacity(settings.len());
        for s in settings {
            let layers = s.layers.resolve(self.n_layers)?;
            let generator: &dyn CandidateGenerator = match s.candidates {
                Candidates::Stopwords => &self.stopwords,
                Candidates::NounPhrases => self
                    .nounphrases
                    .as_ref()
                    .ok_or_else(|| Error::Config("noun phrases need the tagger".into()))?,
                Candidates::Jieba => {
                    return Err(Error::Config(
                        "eval covers the English candidates (Inspec, SemEval); jieba \
                         candidates are measured by the Chinese set"
                            .into(),
                    ))
                }
            };
            let (encoder, scratch) = (&mut self.encoder, &mut self.scratch);
            self.reader.set_aggregation(s.aggregation);
            let read = self.reader.read(
                text.as_bytes(),
                &mut self.tokenizer,
                generator,
                self.max_seq,
                |ids, scores| {
                    let out = encoder.run(ids)?;
                    scores::token_scores(&out, ids.len(), s.strategy, &layers, scores, scratch)
                },
            )?;
            self.windows += read.windows;
            let ranked = match self.reader.keywords(&read, usize::MAX) {
                Ok(()) => self
                    .reader
                    .rank
                    .keywords
                    .iter()
                    .map(|k| k.text.clone())
                    .collect(),
                Err(Error::NoKeywords | Error::NotCovered { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            results.push(ranked);
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// Hand-computed: gold {templat zeolit synthesi, materi function, chemic composit}.
    #[test]
    fn protocol_on_a_hand_made_document() {
        let gold = strings(&[
            "templat zeolit synthesi",
            "materi function",
            "chemic composit",
        ]);
        let preds = strings(&[
            "Templated zeolite synthesis",
            "templated  zeolite SYNTHESIS", // same normal form: dropped as a duplicate
            "design",
            "materials function",
            "zeolite",
            "chemical composition",
        ]);
        let s = score_doc(&preds, &gold, &[1, 3, 10]);
        // normalized, deduplicated: [templat zeolit synthesi, design, materi function, zeolit,
        // chemic composit]
        assert_eq!(s.tp, [1, 2, 3]);
        assert_eq!(s.predicted, [1, 3, 5]);
        assert_eq!(s.precision, [1.0, 2.0 / 3.0, 3.0 / 5.0]);
        assert_eq!(s.recall, [1.0 / 3.0, 2.0 / 3.0, 1.0]);
        assert!((s.f1[0] - 0.5).abs() < 1e-12);
        assert!((s.f1[1] - 2.0 / 3.0).abs() < 1e-12);
        assert!((s.f1[2] - 0.75).abs() < 1e-12);
    }

    #[test]
    fn no_predictions_and_no_hits_score_zero() {
        let s = score_doc(&[], &strings(&["a"]), &[5]);
        assert_eq!((s.precision[0], s.recall[0], s.f1[0]), (0.0, 0.0, 0.0));
        let s = score_doc(&strings(&["b"]), &strings(&["a"]), &[5]);
        assert_eq!(s.f1[0], 0.0);
    }

    #[test]
    fn macro_and_micro_differ_as_defined() {
        let gold1 = strings(&["a", "b"]);
        let gold2 = strings(&["c", "d", "e", "f"]);
        let d1 = score_doc(&strings(&["a", "x"]), &gold1, &[2]); // P 1/2 R 1/2 F 1/2
        let d2 = score_doc(&strings(&["c", "d"]), &gold2, &[2]); // P 1 R 1/2 F 2/3
        let s = summarize(&[d1, d2], &[2]);
        assert!((s.macro_f1[0] - 100.0 * (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-9);
        // micro: tp 3, predicted 4, gold 6 → P 3/4, R 1/2, F 0.6
        assert!((s.micro_precision[0] - 75.0).abs() < 1e-9);
        assert!((s.micro_recall[0] - 50.0).abs() < 1e-9);
        assert!((s.micro_f1[0] - 60.0).abs() < 1e-9);
    }
}
