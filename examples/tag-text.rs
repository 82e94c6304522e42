//! Prints the pipeline's words of a text with their POS tags and the noun-phrase candidates:
//! `cargo run --example tag-text -- "TEXT"` (for error analysis of the candidates).

use std::path::Path;
use std::sync::Arc;

use attnprompt::keywords::{self, CandidateGenerator};
use attnprompt::nounphrase::NounPhrases;
use attnprompt::tagger::Tagger;
use attnprompt::tokenize::TextTokenizer;

fn main() {
    let text = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: tag-text TEXT");
        std::process::exit(2)
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let tok = TextTokenizer::load(&root.join("all-MiniLM-L6-v2-int8/tokenizer.json"), 4096)
        .unwrap_or_else(|e| panic!("{e}"));
    let tagger =
        Arc::new(Tagger::load(&root.join("pos-tagger-ewt")).unwrap_or_else(|e| panic!("{e}")));
    let tokens = tok.tokenize(&text).unwrap_or_else(|e| panic!("{e}"));
    let mut words = Vec::new();
    let scores = vec![0.0; tokens.len()];
    keywords::words(&text, &tokens, &scores, tok.special_ids(), &mut words);
    let surfaces: Vec<&str> = words.iter().map(|w| &text[w.start..w.end]).collect();
    let mut tags = Vec::new();
    tagger.tag_text(&surfaces, &mut tags);
    let tagged: Vec<String> = surfaces
        .iter()
        .zip(&tags)
        .map(|(w, t)| format!("{w}/{}", tagger.tag_name(*t)))
        .collect();
    println!("{}", tagged.join(" "));
    let mut cands = Vec::new();
    NounPhrases::new(tagger).candidates(&text, &words, &mut cands);
    for c in cands {
        let (a, b) = (words[c.first].start, words[c.first + c.len - 1].end);
        println!("  {}", &text[a..b]);
    }
}
