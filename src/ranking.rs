//! Everything on either side of the model that does not need it: the checks at the edge, and
//! token scores → words → candidates, and keywords → prompt (the phrase table between them, which
//! ranks a whole text or document, is `document.rs`).
//!
//! No tract here. The pipeline calls these between its tokenizer and its encoder and after it;
//! the fuzz targets (`fuzz/`) call the same functions with synthetic token scores, so they build
//! without the model crates and run thousands of texts a second.

use crate::config::{MAX_PHRASE_WORDS, MAX_TEXT_BYTES};
use crate::error::{Error, Result};
use crate::keywords::{self, Candidate, CandidateGenerator, Keyword, Word};
use crate::prompt::{PromptBuf, Template};
use crate::tokenize::{SpecialIds, Tokens};

/// [`check_text`] for raw bytes, valid UTF-8 first. Needs no model, so the command line refuses
/// a bad text before it pays for a load.
pub fn check_bytes(bytes: &[u8]) -> Result<&str> {
    let text = utf8(bytes)?;
    check_text(text)?;
    Ok(text)
}

pub(crate) fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|e| Error::InvalidUtf8 {
        offset: e.valid_up_to(),
    })
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

/// [`Error::NotCovered`] when the tokens hold unknown tokens and no known word: every other
/// token is special or punctuation (no letter or digit in its span of `text`). Checked before
/// the model runs: it would have nothing to read.
pub fn check_covered(tokens: &Tokens, text: &str, special: &SpecialIds) -> Result<()> {
    let Some(unk) = special.unk else {
        return Ok(());
    };
    let mut unknown = 0;
    for (&id, &(start, end)) in tokens.ids.iter().zip(&tokens.offsets) {
        if id == unk {
            unknown += 1;
        } else if !special.contains(id)
            && text
                .get(start..end)
                .is_some_and(|t| t.chars().any(char::is_alphanumeric))
        {
            return Ok(());
        }
    }
    if unknown > 0 {
        Err(Error::NotCovered { unknown })
    } else {
        Ok(())
    }
}

/// Working memory of the stages after the model, reserved at load from `max_seq` and kept
/// between texts.
#[derive(Debug)]
pub struct RankBuffers {
    pub words: Vec<Word>,
    /// Word spans from a segmenter (Chinese), when the candidate generator has one.
    spans: Vec<(usize, usize)>,
    candidates: Vec<Candidate>,
    pub keywords: Vec<Keyword>,
    pub prompt: PromptBuf,
}

impl RankBuffers {
    pub fn new(max_seq: usize, top_k: usize) -> Self {
        // Every word has at least one token, every candidate starts at a word and has at most
        // MAX_PHRASE_WORDS of them.
        let max_candidates = max_seq * MAX_PHRASE_WORDS;
        RankBuffers {
            words: Vec::with_capacity(max_seq),
            spans: Vec::with_capacity(max_seq),
            candidates: Vec::with_capacity(max_candidates),
            keywords: Vec::with_capacity(top_k),
            prompt: PromptBuf::new(),
        }
    }

    pub fn reserved_bytes(&self) -> usize {
        use std::mem::size_of;
        self.words.capacity() * size_of::<Word>()
            + self.spans.capacity() * size_of::<(usize, usize)>()
            + self.candidates.capacity() * size_of::<Candidate>()
            + self.keywords.capacity() * size_of::<Keyword>()
            + size_of::<PromptBuf>()
    }

    /// Token scores → words → candidates, in `self.words` and [`RankBuffers::candidates`].
    pub fn find_candidates(
        &mut self,
        text: &str,
        tokens: &Tokens,
        scores: &[f32],
        special: SpecialIds,
        generator: &dyn CandidateGenerator,
    ) {
        // Only the part the model read is segmented: words past it would score nothing.
        if generator.segment(&text[..tokens.kept_bytes], &mut self.spans) {
            keywords::words_from_spans(
                text,
                tokens,
                scores,
                &self.spans,
                generator,
                &mut self.words,
            );
        } else {
            keywords::words(text, tokens, scores, special, &mut self.words);
        }
        generator.candidates(text, &self.words, &mut self.candidates);
    }

    /// The candidates [`RankBuffers::find_candidates`] found, as word ranges of `self.words`.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }

    /// The keywords → the prompt, in `self.prompt`.
    pub fn render(&mut self, template: &Template, text: &str) -> Result<()> {
        template.render(&self.keywords, text, &mut self.prompt)
    }
}
