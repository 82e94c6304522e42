//! Stage 4: token scores → word scores → candidate phrases → ranked keywords.
//!
//! Words are the tokenizer's pre-tokenizer words (WordPiece `##` pieces merged back); a word's
//! score is the sum of its pieces. Candidates come from a [`CandidateGenerator`], so a better
//! generator (e.g. noun phrases from a tagger) can replace the stopword-delimited n-grams.

use crate::stopwords::is_stopword;
use crate::tokenize::{SpecialIds, Tokens};

/// What a word can be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WordKind {
    /// May be part of a keyword.
    Content,
    Stopword,
    /// No letter or digit in it.
    Punctuation,
    /// A special token ([CLS], [SEP], <s>, </s>, [UNK], …): never part of a keyword.
    Special,
}

/// One word of the input: its byte span in the text and its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Word {
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub kind: WordKind,
}

/// Groups tokens into words and sums their scores. `scores[i]` belongs to `tokens.ids[i]`.
pub fn words(
    text: &str,
    tokens: &Tokens,
    scores: &[f32],
    special: SpecialIds,
    out: &mut Vec<Word>,
) {
    out.clear();
    let mut current: Option<u32> = None;
    for (i, &id) in tokens.ids.iter().enumerate() {
        let Some(word_id) = tokens.word_ids[i] else {
            current = None;
            continue;
        };
        let (start, end) = tokens.offsets[i];
        let is_special = special.contains(id);
        match out.last_mut() {
            Some(w) if current == Some(word_id) => {
                w.end = w.end.max(end);
                w.score += scores[i];
                if is_special {
                    w.kind = WordKind::Special;
                }
            }
            _ => out.push(Word {
                start,
                end,
                score: scores[i],
                kind: if is_special {
                    WordKind::Special
                } else {
                    WordKind::Content
                },
            }),
        }
        current = Some(word_id);
    }
    for w in out.iter_mut() {
        // A Metaspace (SentencePiece) token's span includes the space before it.
        let span = &text[w.start..w.end];
        let kept = span.trim();
        w.start += span.len() - span.trim_start().len();
        w.end = w.start + kept.len();
    }
    for w in out.iter_mut().filter(|w| w.kind == WordKind::Content) {
        let surface = &text[w.start..w.end];
        w.kind = if !surface.chars().any(char::is_alphanumeric) {
            WordKind::Punctuation
        } else if is_stopword(&surface.to_lowercase()) {
            WordKind::Stopword
        } else {
            WordKind::Content
        };
    }
}

/// Words from given byte spans (a segmenter's words, see [`CandidateGenerator::segment`]) that
/// lie within the part of the text the model read. A token's score is shared out over the
/// words it overlaps by the characters it has in each, so a word's score is what its
/// characters received whatever the token boundaries. Special tokens have no span and give
/// nothing.
pub fn words_from_spans(
    text: &str,
    tokens: &Tokens,
    scores: &[f32],
    spans: &[(usize, usize)],
    generator: &dyn CandidateGenerator,
    out: &mut Vec<Word>,
) {
    out.clear();
    let read_to = tokens.offsets.iter().map(|o| o.1).max().unwrap_or(0);
    let chars = |a: usize, b: usize| text[a..b].chars().count();
    let mut t = 0; // first token that may overlap the current span
    for &(start, end) in spans.iter().take_while(|s| s.1 <= read_to) {
        let mut score = 0.0;
        while t < tokens.offsets.len() && tokens.offsets[t].1 <= start {
            t += 1;
        }
        let mut k = t;
        while k < tokens.offsets.len() && tokens.offsets[k].0 < end {
            let (a, b) = tokens.offsets[k];
            if a < b {
                let inside = chars(a.max(start), b.min(end));
                score += scores[k] * inside as f32 / chars(a, b) as f32;
            }
            k += 1;
        }
        let surface = &text[start..end];
        let kind = if !surface.chars().any(char::is_alphanumeric) {
            WordKind::Punctuation
        } else if let Some(kind) = generator.word_kind(surface) {
            kind
        } else if surface.is_ascii() && is_stopword(&surface.to_lowercase()) {
            WordKind::Stopword
        } else {
            WordKind::Content
        };
        out.push(Word {
            start,
            end,
            score,
            kind,
        });
    }
}

/// A candidate phrase occurrence: `len` consecutive words starting at word `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub first: usize,
    pub len: usize,
}

/// Produces candidate phrase occurrences from the words of a text.
pub trait CandidateGenerator {
    fn candidates(&self, text: &str, words: &[Word], out: &mut Vec<Candidate>);
    /// Short name for reports.
    fn name(&self) -> &'static str;
    /// For a language written without spaces: the byte spans of the words of `text`, in order,
    /// covering it; returns false (the default) to use the tokenizer's words instead.
    fn segment(&self, _text: &str, _out: &mut Vec<(usize, usize)>) -> bool {
        false
    }
    /// The kind of a word this generator knows better than the English lists (e.g. its own
    /// stopwords); None: decided as usual.
    fn word_kind(&self, _surface: &str) -> Option<WordKind> {
        None
    }
    /// Heap the generator holds, plus what it uses per text of up to `max_seq` tokens.
    fn memory_bytes(&self, _max_seq: usize) -> usize {
        0
    }
    /// How the occurrences of this generator's phrases combine into a score.
    fn aggregation(&self) -> Aggregation {
        Aggregation::DEFAULT
    }
}

/// Every run of up to `max_words` consecutive content words (no stopword, no punctuation, no
/// special or unknown token inside).
#[derive(Debug, Clone, Copy)]
pub struct StopwordNgrams {
    pub max_words: usize,
}

impl CandidateGenerator for StopwordNgrams {
    fn candidates(&self, _text: &str, words: &[Word], out: &mut Vec<Candidate>) {
        out.clear();
        let mut run_start = 0;
        for i in 0..=words.len() {
            let content = i < words.len() && words[i].kind == WordKind::Content;
            if content {
                // every phrase ending at word i inside the current run
                let longest = (i + 1 - run_start).min(self.max_words);
                for len in 1..=longest {
                    out.push(Candidate {
                        first: i + 1 - len,
                        len,
                    });
                }
            } else {
                run_start = i + 1;
            }
        }
        // order by position of the first word, then length: the order phrases are met in text
        out.sort_unstable_by_key(|c| (c.first, c.len));
    }

    fn name(&self) -> &'static str {
        "stopword-ngrams"
    }
}

/// A ranked keyword: its surface as written (first occurrence), byte span and score.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Keyword {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub score: f32,
}

/// A merged phrase: its first occurrence and its summed score.
#[derive(Debug, Clone, Copy)]
struct Phrase {
    start: usize,
    end: usize,
    score: f32,
}

/// How a phrase's occurrences combine into its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// Sum over occurrences; a single word scores [`single_word_score`] (half its sum, its
    /// occurrences counted up to [`SINGLE_WORD_OCCURRENCES_COUNTED`]; the default,
    /// [`Aggregation::DEFAULT`]).
    SumSingleHalf,
    /// Sum over occurrences; a single word's sum is divided by its count (its mean: the default
    /// before 2026-12-06).
    SumMultiword,
    /// Sum over occurrences for every phrase.
    Sum,
    /// The best single occurrence.
    Max,
}

/// The share of its summed occurrences a single word scores under [`Aggregation::SumSingleHalf`].
/// A phrase's occurrence already scores the sum of its words, so a word alone would outweigh a
/// phrase met as often; its mean (the rule before) gave it no credit for frequency at all. Half
/// the sum is better at F1@10 on both Inspec and SemEval-2010 dev, int8 and f32 (EVALUATION.md,
/// "Single words: half their sum").
pub const SINGLE_WORD_SHARE: f32 = 0.5;

/// Occurrences of a single word that earn it credit; past this many, its mean counts as if it
/// had been met this often. Markup and boilerplate repeat (`rs` of every `.rs` file name in a
/// code document, 95 times in ARCHITECTURE.md, came second among its keywords uncapped); a
/// word a text is about rarely needs more (EVALUATION.md: the same figures within noise).
pub const SINGLE_WORD_OCCURRENCES_COUNTED: u32 = 12;

/// A single word's score under [`Aggregation::SumSingleHalf`], from the sum of its `occurrences`
/// occurrences' scores.
pub fn single_word_score(sum: f32, occurrences: u32) -> f32 {
    if occurrences <= SINGLE_WORD_OCCURRENCES_COUNTED {
        sum * SINGLE_WORD_SHARE
    } else {
        sum * (SINGLE_WORD_SHARE * SINGLE_WORD_OCCURRENCES_COUNTED as f32 / occurrences as f32)
    }
}

impl Aggregation {
    /// The ranking's default.
    pub const DEFAULT: Aggregation = Aggregation::SumSingleHalf;

    /// A phrase's score from its occurrences' `sum`, best one (`max`) and count; `single_word`:
    /// the phrase is one word. The one rule of both [`Ranker`] and the document's phrase table.
    pub fn score(self, single_word: bool, sum: f32, max: f32, occurrences: u32) -> f32 {
        match self {
            Aggregation::SumSingleHalf if single_word => single_word_score(sum, occurrences),
            Aggregation::SumMultiword if single_word => sum / occurrences as f32,
            Aggregation::SumSingleHalf | Aggregation::SumMultiword | Aggregation::Sum => sum,
            Aggregation::Max => max,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Aggregation::SumSingleHalf => "sum-single-half",
            Aggregation::SumMultiword => "sum-multiword",
            Aggregation::Sum => "sum",
            Aggregation::Max => "max",
        }
    }
}

/// Ranks candidates into keywords with working memory reserved once, at load: nothing on
/// this path allocates except the returned keywords' text.
#[derive(Debug, Default)]
pub struct Ranker {
    order: Vec<u32>,
    phrases: Vec<Phrase>,
}

impl Ranker {
    /// Room for `max_candidates` candidate occurrences.
    pub fn with_capacity(max_candidates: usize) -> Self {
        Ranker {
            order: Vec::with_capacity(max_candidates),
            phrases: Vec::with_capacity(max_candidates),
        }
    }

    /// Bytes reserved.
    pub fn reserved_bytes(&self) -> usize {
        self.order.capacity() * std::mem::size_of::<u32>()
            + self.phrases.capacity() * std::mem::size_of::<Phrase>()
    }

    /// Merges candidate occurrences by lowercased form and writes the `top_k` best to `out`.
    ///
    /// A phrase's score is the sum over its occurrences of the sum of its words' scores; a
    /// single word scores half its sum ([`single_word_score`]). Ties go to the phrase met
    /// first. A single word that is a word of a keyword ranked above it is left out.
    pub fn rank(
        &mut self,
        text: &str,
        words: &[Word],
        candidates: &[Candidate],
        top_k: usize,
        out: &mut Vec<Keyword>,
    ) {
        self.rank_with(text, words, candidates, top_k, Aggregation::DEFAULT, out)
    }

    /// [`Ranker::rank`] with a chosen [`Aggregation`].
    pub fn rank_with(
        &mut self,
        text: &str,
        words: &[Word],
        candidates: &[Candidate],
        top_k: usize,
        aggregation: Aggregation,
        out: &mut Vec<Keyword>,
    ) {
        // Group equal keys by sorting occurrence indices by (key, position); keys are compared
        // as lowercased character streams, never materialized.
        self.order.clear();
        self.order.extend(0..candidates.len() as u32);
        let key = |c: &Candidate| phrase_key(text, &words[c.first..c.first + c.len]);
        self.order.sort_unstable_by(|&a, &b| {
            let (ca, cb) = (&candidates[a as usize], &candidates[b as usize]);
            key(ca).cmp(key(cb)).then(ca.first.cmp(&cb.first))
        });
        let occurrence_score = |c: &Candidate| occurrence_score(&words[c.first..c.first + c.len]);
        self.phrases.clear();
        let mut i = 0;
        while i < self.order.len() {
            let first = &candidates[self.order[i] as usize];
            let (mut sum, mut max, mut occurrences) = (0.0f32, f32::NEG_INFINITY, 0u32);
            let mut j = i;
            while j < self.order.len() {
                let c = &candidates[self.order[j] as usize];
                if j > i && key(c).ne(key(first)) {
                    break;
                }
                let s = occurrence_score(c);
                sum += s;
                max = max.max(s);
                occurrences += 1;
                j += 1;
            }
            let score = aggregation.score(first.len == 1, sum, max, occurrences);
            self.phrases.push(Phrase {
                start: words[first.first].start,
                end: words[first.first + first.len - 1].end,
                score,
            });
            i = j;
        }
        self.phrases.sort_unstable_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.start.cmp(&b.start))
                .then(a.end.cmp(&b.end))
        });
        out.clear();
        for p in &self.phrases {
            if out.len() == top_k {
                break;
            }
            push_unless_inside(out, &text[p.start..p.end], p.start, p.end, p.score);
        }
    }
}

/// Appends a phrase to the keywords ranked so far, unless it is already inside one of them: it
/// would add nothing to a prompt. In English that is a single word (or hyphenated compound)
/// among a keyword's words (`zeolite` after `zeolite synthesis`; on Inspec, leaving it out
/// gains 0.27 F1@10, EVALUATION.md). Chinese is written without spaces, so where either holds
/// Han characters, a phrase inside a keyword's text (`大模型` after `人工智能大模型`, `BERT`
/// after `BERT模型`) is left out too (on the Chinese keyword set, F1@5 51.7 -> 54.5, README).
pub fn push_unless_inside(
    out: &mut Vec<Keyword>,
    surface: &str,
    start: usize,
    end: usize,
    score: f32,
) {
    let single_word = !surface.contains(char::is_whitespace);
    let surface_han = surface.contains(is_han);
    let inside = |k: &Keyword| {
        (single_word
            && k.text
                .split_whitespace()
                .any(|w| same_lowercase(w, surface)))
            || ((surface_han || k.text.contains(is_han)) && contains_lowercase(&k.text, surface))
    };
    if out.iter().any(inside) {
        return;
    }
    out.push(Keyword {
        text: surface.to_string(),
        start,
        end,
        score,
    });
}

/// Whether a character is a Han (Chinese) ideograph.
pub fn is_han(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0xF900..=0xFAFF | 0x20000..=0x2FFFF)
}

/// Whether `needle` occurs in `haystack` once both are lowercased (without allocating: this
/// runs in the ranking loop).
fn contains_lowercase(haystack: &str, needle: &str) -> bool {
    haystack.char_indices().any(|(i, _)| {
        let mut rest = haystack[i..].chars().flat_map(char::to_lowercase);
        needle
            .chars()
            .flat_map(char::to_lowercase)
            .all(|c| rest.next() == Some(c))
    })
}

/// Whether `a` and `b` are equal once lowercased.
fn same_lowercase(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// [`phrase_key`] written into `out`.
pub fn phrase_key_into(text: &str, words: &[Word], out: &mut String) {
    out.clear();
    out.extend(phrase_key(text, words));
}

/// The score of one occurrence of a phrase: its words' scores summed, punctuation inside it (the
/// `-` of a hyphenated compound) left out.
pub fn occurrence_score(words: &[Word]) -> f32 {
    words
        .iter()
        .filter(|w| w.kind != WordKind::Punctuation)
        .map(|w| w.score)
        .sum()
}

/// The lowercased words of a phrase joined by single spaces, as a character stream.
fn phrase_key<'a>(text: &'a str, words: &'a [Word]) -> impl Iterator<Item = char> + 'a {
    words.iter().enumerate().flat_map(move |(k, w)| {
        (k > 0)
            .then_some(' ')
            .into_iter()
            .chain(text[w.start..w.end].chars().flat_map(char::to_lowercase))
    })
}

/// One-off ranking with fresh working memory (see [`Ranker::rank`]).
pub fn rank(text: &str, words: &[Word], candidates: &[Candidate], top_k: usize) -> Vec<Keyword> {
    rank_with(text, words, candidates, top_k, Aggregation::DEFAULT)
}

/// One-off [`Ranker::rank_with`].
pub fn rank_with(
    text: &str,
    words: &[Word],
    candidates: &[Candidate],
    top_k: usize,
    aggregation: Aggregation,
) -> Vec<Keyword> {
    let mut out = Vec::new();
    Ranker::with_capacity(candidates.len()).rank_with(
        text,
        words,
        candidates,
        top_k,
        aggregation,
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn special() -> SpecialIds {
        SpecialIds::new(101, 102, &[0, 100]).unwrap()
    }

    /// Builds tokens by hand: (id, start, end, word id).
    fn tokens(spec: &[(u32, usize, usize, Option<u32>)]) -> Tokens {
        Tokens {
            ids: spec.iter().map(|t| t.0).collect(),
            offsets: spec.iter().map(|t| (t.1, t.2)).collect(),
            word_ids: spec.iter().map(|t| t.3).collect(),
            truncated: false,
            kept_bytes: 0,
        }
    }

    #[test]
    fn pieces_merge_into_words_with_summed_scores() {
        // "the tokenizer works" → [CLS] the token ##izer works [SEP]
        let text = "the tokenizer works";
        let t = tokens(&[
            (101, 0, 0, None),
            (1996, 0, 3, Some(0)),
            (19204, 4, 9, Some(1)),
            (17629, 9, 13, Some(1)),
            (2573, 14, 19, Some(2)),
            (102, 0, 0, None),
        ]);
        let scores = [9.0, 1.0, 2.0, 0.5, 3.0, 9.0];
        let mut w = Vec::new();
        words(text, &t, &scores, special(), &mut w);
        assert_eq!(w.len(), 3);
        assert_eq!((w[1].start, w[1].end, w[1].score), (4, 13, 2.5));
        assert_eq!(&text[w[1].start..w[1].end], "tokenizer");
        assert_eq!(w[0].kind, WordKind::Stopword);
        assert_eq!(w[1].kind, WordKind::Content);
    }

    #[test]
    fn metaspace_spans_lose_the_space_before_them() {
        // XLM-R Unigram: "the tokenizer  works" → <s> ▁the ▁token izer ▁ ▁works </s>; a
        // Metaspace token's offsets cover the space before it, and a lone ▁ only a space.
        let text = "the tokenizer  works";
        let t = tokens(&[
            (0, 0, 0, None),
            (70, 0, 3, Some(0)),
            (47, 3, 9, Some(1)),
            (48, 9, 13, Some(1)),
            (6, 13, 14, Some(2)),
            (49, 14, 20, Some(3)),
            (2, 0, 0, None),
        ]);
        let mut w = Vec::new();
        let xlmr = SpecialIds::new(0, 2, &[1, 3]).unwrap();
        words(text, &t, &[0.0; 7], xlmr, &mut w);
        let spans: Vec<_> = w.iter().map(|w| &text[w.start..w.end]).collect();
        assert_eq!(spans, ["the", "tokenizer", "", "works"]);
        assert_eq!(w[2].kind, WordKind::Punctuation);
        assert_eq!(w[3].kind, WordKind::Content);
    }

    #[test]
    fn punctuation_unknown_and_stopwords_are_not_content() {
        let text = "The 🤖, ok";
        let t = tokens(&[
            (101, 0, 0, None),
            (1996, 0, 3, Some(0)),
            (100, 4, 8, Some(1)),
            (1010, 8, 9, Some(2)),
            (7929, 10, 12, Some(3)),
            (102, 0, 0, None),
        ]);
        let mut w = Vec::new();
        words(text, &t, &[0.0; 6], special(), &mut w);
        let kinds: Vec<_> = w.iter().map(|w| w.kind).collect();
        assert_eq!(
            kinds,
            [
                WordKind::Stopword,
                WordKind::Special,
                WordKind::Punctuation,
                WordKind::Content
            ]
        );
    }

    fn word(start: usize, end: usize, score: f32, kind: WordKind) -> Word {
        Word {
            start,
            end,
            score,
            kind,
        }
    }

    #[test]
    fn ngrams_stay_inside_runs_and_stop_at_four_words() {
        use WordKind::*;
        let kinds = [
            Content, Content, Stopword, Content, Content, Content, Content, Content,
        ];
        let w: Vec<Word> = kinds.iter().map(|&k| word(0, 0, 0.0, k)).collect();
        let mut c = Vec::new();
        StopwordNgrams { max_words: 4 }.candidates("", &w, &mut c);
        // run [0,1]: 3 candidates; run [3..=7] (5 words): 5+4+3+2 = 14
        assert_eq!(c.len(), 17);
        assert!(c.iter().all(|c| c.len <= 4));
        assert!(!c.iter().any(|c| c.first <= 2 && c.first + c.len > 2));
        assert!(c.contains(&Candidate { first: 3, len: 4 }));
        assert!(c.contains(&Candidate { first: 4, len: 4 }));
        assert!(!c.contains(&Candidate { first: 3, len: 5 }));
    }

    #[test]
    fn ranking_merges_case_halves_single_words_and_breaks_ties_by_position() {
        use WordKind::*;
        // "Pi pi cat dog": a single word scores half its sum: "pi" (1 + 3) / 2 = 2, cat 4 / 2,
        // dog 4 / 2
        let text = "Pi pi cat dog";
        let w = vec![
            word(0, 2, 1.0, Content),
            word(3, 5, 3.0, Content),
            word(6, 9, 4.0, Content),
            word(10, 13, 4.0, Content),
        ];
        let c: Vec<Candidate> = (0..4).map(|i| Candidate { first: i, len: 1 }).collect();
        let k = rank(text, &w, &c, 10);
        let got: Vec<(&str, f32)> = k.iter().map(|k| (k.text.as_str(), k.score)).collect();
        // ties (2.0) broken by first position: Pi (0), cat (6), dog (10)
        assert_eq!(got, [("Pi", 2.0), ("cat", 2.0), ("dog", 2.0)]);
        assert_eq!((k[0].start, k[0].end), (0, 2));

        // a two-word phrase seen twice sums both occurrences (no division)
        let text = "big cat big cat";
        let w = vec![
            word(0, 3, 1.0, Content),
            word(4, 7, 2.0, Content),
            word(8, 11, 1.0, Content),
            word(12, 15, 2.0, Content),
        ];
        let c = vec![
            Candidate { first: 0, len: 2 },
            Candidate { first: 2, len: 2 },
        ];
        let k = rank(text, &w, &c, 1);
        assert_eq!(k[0].text, "big cat");
        assert_eq!(k[0].score, 6.0);

        // frequency counts for single words too: "edge" twice at 1.0 (1.0) over "pi" once at
        // 1.5 (0.75); by their means (the rule before) "pi" would lead
        let text = "edge pi edge";
        let w = vec![
            word(0, 4, 1.0, Content),
            word(5, 7, 1.5, Content),
            word(8, 12, 1.0, Content),
        ];
        let c: Vec<Candidate> = (0..3).map(|i| Candidate { first: i, len: 1 }).collect();
        let got: Vec<(String, f32)> = rank(text, &w, &c, 2)
            .into_iter()
            .map(|k| (k.text, k.score))
            .collect();
        assert_eq!(got, [("edge".to_string(), 1.0), ("pi".to_string(), 0.75)]);
        let got: Vec<String> = rank_with(text, &w, &c, 2, Aggregation::SumMultiword)
            .into_iter()
            .map(|k| k.text)
            .collect();
        assert_eq!(got, ["pi", "edge"]);

        // past 12 occurrences a single word's mean counts as if met 12 times: "yak" 16 times
        // at 1.0 scores 6, not 8, below "big cat" twice at 3.5 (7)
        let mut text = "yak ".repeat(16);
        text.push_str("big cat big cat");
        let mut w: Vec<Word> = (0..16)
            .map(|i| word(4 * i, 4 * i + 3, 1.0, Content))
            .collect();
        w.extend([
            word(64, 67, 1.5, Content),
            word(68, 71, 2.0, Content),
            word(72, 75, 1.5, Content),
            word(76, 79, 2.0, Content),
        ]);
        let mut c: Vec<Candidate> = (0..16).map(|i| Candidate { first: i, len: 1 }).collect();
        c.extend([
            Candidate { first: 16, len: 2 },
            Candidate { first: 18, len: 2 },
        ]);
        let got: Vec<(String, f32)> = rank(&text, &w, &c, 2)
            .into_iter()
            .map(|k| (k.text, k.score))
            .collect();
        assert_eq!(
            got,
            [("big cat".to_string(), 7.0), ("yak".to_string(), 6.0)]
        );
    }

    #[test]
    fn a_word_inside_a_better_keyword_is_left_out() {
        use WordKind::*;
        let text = "Zeolite synthesis of zeolite and synthesis-free cats";
        let w = vec![
            word(0, 7, 2.0, Content),    // Zeolite
            word(8, 17, 2.0, Content),   // synthesis
            word(18, 20, 0.0, Stopword), // of
            word(21, 28, 3.0, Content),  // zeolite
            word(29, 32, 0.0, Stopword), // and
            word(33, 42, 1.0, Content),  // synthesis
            word(42, 43, 0.0, Punctuation),
            word(43, 47, 1.0, Content), // free
            word(48, 52, 0.5, Content), // cats
        ];
        let c = vec![
            Candidate { first: 0, len: 2 }, // zeolite synthesis: 4
            Candidate { first: 3, len: 1 }, // zeolite: (3) alone → 3
            Candidate { first: 5, len: 3 }, // synthesis-free: one compound word, 2
            Candidate { first: 8, len: 1 }, // cats: 0.5
        ];
        let k = rank(text, &w, &c, 3);
        let got: Vec<&str> = k.iter().map(|k| k.text.as_str()).collect();
        // `zeolite` is a word of `Zeolite synthesis`, whatever its case; `synthesis-free` is a
        // word of its own, not `synthesis`
        assert_eq!(got, ["Zeolite synthesis", "synthesis-free", "cats"]);
    }

    #[test]
    fn a_phrase_inside_a_better_chinese_keyword_is_left_out() {
        let mut out = Vec::new();
        for phrase in [
            "人工智能大模型",
            "大模型",   // inside the first: left out
            "提示词",   // kept
            "bert模型", // kept (not inside)
            "BERT",     // inside `bert模型`, whatever its case: left out
            "模型体积", // kept: `模型` is inside, but this is not inside any
            "model",    // English, inside no keyword's words: kept
            "models",   // English beside English: word equality only, kept
            "Model",    // a word equal to `model`: left out
        ] {
            push_unless_inside(&mut out, phrase, 0, phrase.len(), 1.0);
        }
        let got: Vec<&str> = out.iter().map(|k| k.text.as_str()).collect();
        assert_eq!(
            got,
            [
                "人工智能大模型",
                "提示词",
                "bert模型",
                "模型体积",
                "model",
                "models"
            ]
        );
        assert!(contains_lowercase("BERT模型", "bert"));
        assert!(!contains_lowercase("模型", "大模型"));
    }

    #[test]
    fn rank_respects_top_k() {
        let w: Vec<Word> = (0..5)
            .map(|i| word(i * 2, i * 2 + 1, i as f32, WordKind::Content))
            .collect();
        let c: Vec<Candidate> = (0..5).map(|i| Candidate { first: i, len: 1 }).collect();
        let k = rank("a b c d e", &w, &c, 2);
        assert_eq!(
            k.iter().map(|k| k.text.as_str()).collect::<Vec<_>>(),
            ["e", "d"]
        );
    }
}
