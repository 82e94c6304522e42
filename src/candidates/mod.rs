//! Candidate phrases, one module per language: what may become a keyword. The generators
//! implement [`crate::keywords::CandidateGenerator`]; the ranking is shared (`keywords.rs`).
//!
//! - `english`: noun phrases from the POS tagger (`tagger`), `<NN.*|JJ|VBN>*<NN.*>`;
//! - `chinese`: runs of noun-like words from jieba's segmentation and tags.
//!
//! The language-free fallback, stopword-delimited n-grams, lives beside the ranker
//! (`keywords::StopwordNgrams`).

pub mod chinese;
pub mod english;
pub mod tagger;
