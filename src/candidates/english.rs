//! Noun-phrase candidates: the words are POS-tagged (src/candidates/tagger.rs) sentence by sentence and
//! chunked with [`GRAMMAR`], `<NN.*|JJ|VBN>*<NN.*>`: each maximal run of nouns, adjectives and
//! past participles, cut after its last noun. A chunk longer than `max_words` words, or whose
//! first word is a stopword, is dropped. Leading generic modifiers ([`GENERIC_MODIFIERS`]:
//! `several`, `new`, `proposed`) are left out of a chunk's candidate.
//!
//! The grammar is EmbedRank's and SAMRank's `<NN.*|JJ>*<NN.*>` with past participles admitted
//! as modifiers (`linearized models`, `networked information systems`): measured on Inspec,
//! +0.2 macro F1@10; gerunds (VBG) were tried too and lost more than they gained
//! (`algorithm using filters`), see EVALUATION.md.
//!
//! Hyphenated compounds (`multi-round`, `Carlo-like`: word, `-`, word with no space between) are
//! one word here, as in the gold phrases of the benchmarks; the compound takes the tag of its
//! last part, except that a compound ending in a verb form (`computer-based`, `self-organizing`)
//! is an adjective, as the Penn guidelines tag it. A text with no noun phrase at all falls back
//! to the stopword-delimited runs.

use std::sync::Arc;

use crate::candidates::tagger::Tagger;
use crate::config::MAX_PHRASE_WORDS;
use crate::keywords::{Candidate, CandidateGenerator, StopwordNgrams, Word, WordKind};
use crate::stopwords::is_stopword;

/// Longest noun phrase kept, in words (a hyphenated compound is one word).
pub const MAX_NOUN_PHRASE_WORDS: usize = 5;

/// The chunk grammar, in NLTK `RegexpParser` notation (the fixture of tests/it/nounphrase.rs was
/// made with it).
pub const GRAMMAR: &str = "NP: {<NN.*|JJ|VBN>*<NN.*>}";

/// Modifiers that point at a thing or count it rather than say what kind of thing it is
/// (deictic and quantifying adjectives: `several`, `given`, `previous`), and the markers of a
/// text's own contribution (`new`, `novel`, `proposed`). They never make a term, so a chunk's
/// leading words from this list are left out of its candidate: `several new methods` →
/// `methods`, `a novel image compression scheme` → `image compression scheme`. Not in it,
/// though deictic in some uses, are words that also start terms: `current` (`current
/// density`), `present` (`present value`), `potential` (`potential energy`), `specific`
/// (`specific heat`). Measured on Inspec in EVALUATION.md (step 5), with its caveat.
pub const GENERIC_MODIFIERS: [&str; 23] = [
    "several",
    "many",
    "numerous",
    "multiple",
    "various",
    "additional",
    "different",
    "certain",
    "particular",
    "given",
    "respective",
    "corresponding",
    "following",
    "previous",
    "recent",
    "aforementioned",
    "so-called",
    "usual",
    "typical",
    "possible",
    "new",
    "novel",
    "proposed",
];

/// Whether `word` is one of [`GENERIC_MODIFIERS`], in any case.
pub fn is_generic_modifier(word: &str) -> bool {
    GENERIC_MODIFIERS
        .iter()
        .any(|g| g.eq_ignore_ascii_case(word))
}

pub struct NounPhrases {
    pub tagger: Arc<Tagger>,
    pub max_words: usize,
}

/// A unit for chunking: words `first..=last` (several for a hyphenated compound).
#[derive(Debug, Clone, Copy)]
struct Unit {
    first: usize,
    last: usize,
    /// Noun (NN, NNS, NNP, NNPS), modifier (JJ, VBN), or neither.
    class: Class,
}

/// What the grammar sees of a word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Noun,
    /// An adjective or a past participle: may precede a noun in a chunk, never end one.
    Modifier,
    Other,
}

impl NounPhrases {
    pub fn new(tagger: Arc<Tagger>) -> Self {
        NounPhrases {
            tagger,
            max_words: MAX_NOUN_PHRASE_WORDS,
        }
    }

    /// Tags `words` and groups them into units (hyphenated compounds are one unit).
    fn units(&self, text: &str, words: &[Word]) -> Vec<Unit> {
        let surfaces: Vec<&str> = words.iter().map(|w| &text[w.start..w.end]).collect();
        let mut tags = Vec::with_capacity(words.len());
        self.tagger.tag_text(&surfaces, &mut tags);
        let touching = |a: usize, b: usize| words[a].end == words[b].start;
        let joinable =
            |i: usize| words[i].kind != WordKind::Special && words[i].kind != WordKind::Punctuation;
        let mut units = Vec::with_capacity(words.len());
        let mut i = 0;
        while i < words.len() {
            let mut last = i;
            while joinable(last)
                && last + 2 < words.len()
                && surfaces[last + 1] == "-"
                && touching(last, last + 1)
                && touching(last + 1, last + 2)
                && joinable(last + 2)
            {
                last += 2;
            }
            let class = if words[i].kind == WordKind::Special
                || words[last].kind == WordKind::Special
                || words[last].kind == WordKind::Punctuation
            {
                Class::Other
            } else {
                let tag = self.tagger.tag_name(tags[last]);
                // The participle of `computer-based` alone would end the chunk before the noun
                // the compound modifies.
                if last > i && tag.starts_with("VB") {
                    Class::Modifier
                } else {
                    class_of(tag)
                }
            };
            units.push(Unit {
                first: i,
                last,
                class,
            });
            i = last + 1;
        }
        units
    }
}

/// [`GRAMMAR`] over a sequence of word classes, as NLTK's `RegexpParser` applies it (leftmost,
/// longest, non-overlapping): each maximal run of nouns and modifiers,
/// cut after its last noun. Chunks of more than `max_words` units or whose first unit is a
/// stopword are dropped. Returns (first unit, number of units).
pub fn chunk(
    classes: &[Class],
    starts_with_stopword: impl Fn(usize) -> bool,
    max_words: usize,
) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < classes.len() {
        if classes[i] == Class::Other {
            i += 1;
            continue;
        }
        let run_start = i;
        let mut last_noun = None;
        while i < classes.len() && classes[i] != Class::Other {
            if classes[i] == Class::Noun {
                last_noun = Some(i);
            }
            i += 1;
        }
        // Modifiers after the last noun start no chunk: they cannot end one.
        let Some(end) = last_noun else { continue };
        let n = end + 1 - run_start;
        if n <= max_words && !starts_with_stopword(run_start) {
            out.push((run_start, n));
        }
    }
    out
}

/// The class of a Penn tag for the grammar.
pub fn class_of(tag: &str) -> Class {
    if tag.starts_with("NN") {
        Class::Noun
    } else if tag == "JJ" || tag == "VBN" {
        Class::Modifier
    } else {
        Class::Other
    }
}

impl CandidateGenerator for NounPhrases {
    fn candidates(&self, text: &str, words: &[Word], out: &mut Vec<Candidate>) {
        out.clear();
        let units = self.units(text, words);
        let classes: Vec<Class> = units.iter().map(|u| u.class).collect();
        let stop = |u: usize| {
            let w = &words[units[u].first];
            is_stopword(&text[w.start..w.end].to_lowercase())
        };
        let unit_text = |u: &Unit| &text[words[u.first].start..words[u.last].end];
        // The length limit applies to the chunk, before its generic modifiers are left out
        // (applying it after: 36.57 / 41.58 macro F1@5/10 on Inspec against 36.62 / 41.60).
        for (start, len) in chunk(&classes, stop, self.max_words) {
            // `several new methods` → `methods`: generic modifiers make no term, whatever their
            // tag (EWT's tagger takes `novel` for the noun, a book). The head noun stays.
            let lead = (start..start + len - 1)
                .take_while(|&u| is_generic_modifier(unit_text(&units[u])))
                .count();
            let (first, n) = (start + lead, len - lead);
            // what remains follows the grammar's rule for a chunk's first word (`chunk` has
            // checked it when nothing was left out)
            if lead > 0 && stop(first) {
                continue;
            }
            let a = units[first].first;
            out.push(Candidate {
                first: a,
                len: units[first + n - 1].last + 1 - a,
            });
        }
        // A text without any noun phrase ("run it fast") still gets keywords: fall back to the
        // stopword-delimited runs rather than failing.
        if out.is_empty() {
            StopwordNgrams {
                max_words: MAX_PHRASE_WORDS,
            }
            .candidates(text, words, out);
        }
    }

    fn name(&self) -> &'static str {
        "noun-phrases"
    }

    fn memory_bytes(&self, max_seq: usize) -> usize {
        // the tagger's tables, and per text: surfaces, tags, units and classes per word
        let per_word = std::mem::size_of::<&str>() + 1 + std::mem::size_of::<Unit>() + 1;
        self.tagger.size().2 + per_word * max_seq
    }
}
