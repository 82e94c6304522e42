//! The pipeline without its model, for arbitrary input: bytes → edge checks → tokens →
//! synthetic token scores → words → candidates → keywords → prompt, and template parsing, each
//! with the invariants every input must keep. One definition of "right" shared by the
//! properties of `cargo test` (`properties.rs`) and the fuzz targets (`fuzz/fuzz_targets/`,
//! which include this file): the fuzzers check exactly what the properties check.
//!
//! Attention is replaced by a deterministic score per token (`synthetic_score`) so that a run
//! costs microseconds; the stages after the model are the library's own (`ranking.rs`), the
//! same calls `Pipeline::run` makes.

use std::path::Path;
use std::sync::Arc;

use attnprompt::candidates::chinese::ChineseCandidates;
use attnprompt::candidates::english::NounPhrases;
use attnprompt::candidates::tagger::Tagger;
use attnprompt::config::{MAX_PHRASE_WORDS, MAX_TEXT_BYTES};
use attnprompt::document::DocumentReader;
use attnprompt::keywords::{CandidateGenerator, Keyword, StopwordNgrams};
use attnprompt::prompt::{Template, PROMPT_CAPACITY, TEMPLATE_CAPACITY};
use attnprompt::ranking::{check_bytes, check_covered};
use attnprompt::tokenize::{TextTokenizer, Tokens};
use attnprompt::Error;

/// Tokens per text: short, so a fuzzer run is fast; the edge cases (a cut text, a word cut at
/// the end) come sooner too.
pub const MAX_SEQ: usize = 48;
pub const TOP_K: usize = 5;
/// The template of every text run: the top keyword between two literals.
pub const TEMPLATE: &str = "what is {keyword}? ({keywords})";

/// The three routes a text can take: English words with noun phrases or stopword n-grams from
/// the English model's tokenizer, Chinese words from jieba with the multilingual tokenizer.
pub const ROUTES: [&str; 3] = ["en-nounphrases", "en-stopwords", "zh-jieba"];

/// A score in [0, 1) per token, from its id and position only.
pub fn synthetic_score(id: u32, position: usize) -> f32 {
    let h = id
        .wrapping_mul(2_654_435_761)
        .wrapping_add((position as u32).wrapping_mul(40_503));
    (h >> 8) as f32 / (1u32 << 24) as f32
}

pub struct TextPath {
    english: TextTokenizer,
    chinese: TextTokenizer,
    generators: [Box<dyn CandidateGenerator + Send>; 3],
    template: Template,
    tokens: Tokens,
    document: DocumentReader,
}

impl TextPath {
    /// Loads the shipped tokenizers, tagger and dictionary from `models/`.
    pub fn load(models: &Path) -> TextPath {
        let tokenizer = |name: &str| {
            TextTokenizer::load(&models.join(name).join("tokenizer.json"), MAX_SEQ)
                .expect("shipped tokenizer")
        };
        let tagger = Tagger::load(&models.join("pos-tagger-ewt")).expect("shipped tagger");
        TextPath {
            english: tokenizer("all-MiniLM-L6-v2-int8"),
            chinese: tokenizer("multilingual-e5-small-zh-en-int8"),
            generators: [
                Box::new(NounPhrases::new(Arc::new(tagger))),
                Box::new(StopwordNgrams {
                    max_words: MAX_PHRASE_WORDS,
                }),
                Box::new(ChineseCandidates::load(&models.join("jieba")).expect("shipped dict")),
            ],
            template: Template::parse(TEMPLATE).expect("template"),
            tokens: Tokens::default(),
            document: DocumentReader::new(MAX_SEQ, TOP_K),
        }
    }

    /// Runs `bytes` by route `route % 3` and checks every invariant (panics on a broken one).
    /// Returns the prompt, or the error the input was refused with.
    pub fn run(&mut self, route: usize, bytes: &[u8]) -> Result<String, Error> {
        let result = self.run_unchecked(route % ROUTES.len(), bytes);
        match &result {
            Ok(prompt) => self.check_output(bytes, prompt),
            Err(e) => check_refusal(bytes, e),
        }
        result
    }

    fn run_unchecked(&mut self, route: usize, bytes: &[u8]) -> Result<String, Error> {
        let text = check_bytes(bytes)?;
        let tokenizer = if route == 2 {
            &mut self.chinese
        } else {
            &mut self.english
        };
        // The first window as the tokenizer cuts it, checked on its own.
        tokenizer.tokenize_into(text, &mut self.tokens)?;
        check_tokens(text, &self.tokens, tokenizer.vocab_size());
        let (vocab, special) = (tokenizer.vocab_size(), tokenizer.special_ids());
        // The whole text, window by window, as `Pipeline::run` reads it.
        let read = self.document.read(
            text.as_bytes(),
            tokenizer,
            &*self.generators[route],
            MAX_SEQ,
            |ids, scores| {
                check_window(ids, vocab, special);
                scores.clear();
                scores.extend(
                    ids.iter()
                        .enumerate()
                        .map(|(i, &id)| synthetic_score(id, i)),
                );
                Ok(())
            },
        )?;
        assert_eq!(read.bytes, text.len());
        assert!(read.tokens <= read.windows * MAX_SEQ);
        if read.windows == 0 && read.unknown > 0 {
            // Every window was refused for unknown tokens: so is the first as the tokenizer
            // cuts it.
            assert!(check_covered(&self.tokens, text, &special).is_err());
        }
        self.document.keywords(&read, TOP_K)?;
        self.document.render(&self.template, text)?;
        Ok(self.document.rank.prompt.to_string())
    }

    fn check_output(&self, bytes: &[u8], prompt: &str) {
        let text = std::str::from_utf8(bytes).expect("an accepted text is UTF-8");
        let keywords = &self.document.rank.keywords;
        assert!(
            (1..=TOP_K).contains(&keywords.len()),
            "{} keywords",
            keywords.len()
        );
        for k in keywords {
            assert_eq!(
                text.get(k.start..k.end),
                Some(k.text.as_str()),
                "keyword {k:?} is not its span of the text"
            );
            assert!(k.score.is_finite(), "score of {k:?}");
            assert!(
                k.text.chars().any(char::is_alphanumeric),
                "keyword {k:?} has no letter or digit"
            );
        }
        for pair in keywords.windows(2) {
            assert!(
                pair[0].score >= pair[1].score,
                "not ranked: {:?} before {:?}",
                pair[0],
                pair[1]
            );
        }
        for (i, a) in keywords.iter().enumerate() {
            for b in &keywords[i + 1..] {
                assert_ne!(
                    a.text.to_lowercase(),
                    b.text.to_lowercase(),
                    "the same phrase twice"
                );
            }
        }
        assert_eq!(prompt, expected_prompt(keywords));
        assert!(prompt.len() <= PROMPT_CAPACITY);
    }
}

/// A window as the model gets it: the start and end tokens around at most `MAX_SEQ - 2` others,
/// every id inside the vocabulary.
fn check_window(ids: &[u32], vocab: usize, special: attnprompt::tokenize::SpecialIds) {
    assert!((3..=MAX_SEQ).contains(&ids.len()), "{} tokens", ids.len());
    assert_eq!(ids[0], special.start);
    assert_eq!(ids[ids.len() - 1], special.end);
    assert!(ids.iter().all(|&id| (id as usize) < vocab));
}

/// TEMPLATE rendered by hand, each keyword's words joined by single spaces.
fn expected_prompt(keywords: &[Keyword]) -> String {
    let one_line = |k: &Keyword| k.text.split_whitespace().collect::<Vec<_>>().join(" ");
    let all: Vec<String> = keywords.iter().map(one_line).collect();
    format!("what is {}? ({})", all[0], all.join(", "))
}

/// Every token maps back into the text; the model would never see an id past the vocabulary.
fn check_tokens(text: &str, tokens: &Tokens, vocab: usize) {
    assert!(tokens.len() <= MAX_SEQ, "{} tokens", tokens.len());
    assert_eq!(tokens.ids.len(), tokens.offsets.len());
    assert_eq!(tokens.ids.len(), tokens.word_ids.len());
    assert!(tokens.kept_bytes <= text.len());
    assert!(text.is_char_boundary(tokens.kept_bytes));
    if !tokens.truncated {
        assert_eq!(tokens.kept_bytes, text.len());
    }
    for (&id, &(start, end)) in tokens.ids.iter().zip(&tokens.offsets) {
        assert!(
            (id as usize) < vocab,
            "id {id} past the vocabulary of {vocab}"
        );
        assert!(
            start <= end && text.get(start..end).is_some(),
            "offsets {start}..{end} not a span of the text"
        );
    }
}

/// A refusal is one of the per-text errors, and the edge checks agree with the bytes.
fn check_refusal(bytes: &[u8], e: &Error) {
    assert!(e.is_input_error(), "not an input error: {e}");
    let text = std::str::from_utf8(bytes);
    match e {
        Error::InvalidUtf8 { offset } => {
            let valid = text.expect_err("refused as invalid UTF-8").valid_up_to();
            assert_eq!(*offset, valid);
        }
        Error::EmptyText => assert!(text.expect("UTF-8").trim().is_empty()),
        Error::TextTooLong { len, max } => {
            assert_eq!((*len, *max), (bytes.len(), MAX_TEXT_BYTES));
        }
        _ => {
            let text = text.expect("a refused text past the edge checks is UTF-8");
            assert!(!text.trim().is_empty() && text.len() <= MAX_TEXT_BYTES);
        }
    }
}

/// Parses `source` as a template and renders it; checks the outcome against `reference_render`,
/// an independent reading of the template syntax.
pub fn check_template(source: &str) {
    let keywords = [keyword("Raspberry Pi"), keyword("BERT")];
    let text = "The Raspberry Pi runs BERT.";
    let expected = reference_render(source, &keywords, text);
    let parsed = Template::parse(source);
    match (parsed, expected) {
        (Ok(t), Some(want)) => {
            let mut out = attnprompt::prompt::PromptBuf::new();
            match t.render(&keywords, text, &mut out) {
                Ok(()) => assert_eq!(out.as_str(), want, "template {source:?}"),
                Err(Error::PromptTooLong { needed, .. }) => {
                    assert_eq!(needed, want.len());
                    assert!(needed > PROMPT_CAPACITY);
                }
                Err(e) => panic!("template {source:?}: render failed: {e}"),
            }
            assert_eq!(t.source(), source);
        }
        (Err(Error::Template(_)), None) => {}
        (Err(Error::Template(m)), Some(_)) => {
            // The limits the reference does not model: the template's capacity and its parts.
            assert!(
                source.len() > TEMPLATE_CAPACITY || m.contains("more than 64 parts"),
                "template {source:?} refused ({m}) but valid"
            );
        }
        (Err(e), _) => panic!("template {source:?}: not a template error: {e}"),
        (Ok(_), None) => panic!("template {source:?} accepted but invalid"),
    }
}

fn keyword(text: &str) -> Keyword {
    Keyword {
        text: text.into(),
        start: 0,
        end: text.len(),
        score: 1.0,
    }
}

/// The template syntax read character by character: `{{` and `}}` are braces, `{name}` is a
/// placeholder (keyword, keywords, text), any other brace is an error (None).
fn reference_render(source: &str, keywords: &[Keyword], text: &str) -> Option<String> {
    if source.trim().is_empty() {
        return None;
    }
    let mut out = String::new();
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return None,
                    }
                }
                match name.as_str() {
                    "keyword" => out.push_str(&keywords[0].text),
                    "keywords" => {
                        let all: Vec<&str> = keywords.iter().map(|k| k.text.as_str()).collect();
                        out.push_str(&all.join(", "));
                    }
                    "text" => out.push_str(text),
                    _ => return None,
                }
            }
            '}' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
