//! Chinese candidates: the text is segmented into words and tagged by jieba (`jieba-rs`, with
//! the dictionary shipped in `models/jieba/dict.txt`), and candidates are runs of noun-like
//! words: `<a|b>*<noun>+` in jieba's tags, where a noun is `n*` (common, person, place,
//! organisation, other proper nouns), `vn` (verbal noun), `an` (adjectival noun), `j`
//! (abbreviation) or `eng` (a Latin-script word, so `BERT模型` is one term). Every sub-run that
//! ends in a noun is a candidate (`大模型` and `人工智能大模型`); the ranker chooses. A text
//! with no noun at all falls back to its content words of two characters or more (`我喜欢阅读`
//! → `喜欢`, `阅读`). Function words, pronouns, numbers and single characters that are not
//! nouns never become keywords; [`CHINESE_STOPWORDS`] are generic nouns that never do either.
//!
//! The model's tokens do not follow jieba's words, so a word's score is the sum of the scores of
//! the tokens it overlaps, each token's score shared out by the characters it has in the word
//! ([`crate::keywords::words_from_spans`]).

use std::path::{Path, PathBuf};

use jieba_rs::Jieba;

use crate::config::MAX_PHRASE_WORDS;
use crate::error::{Error, Result};
use crate::keywords::{is_han, Aggregation, Candidate, CandidateGenerator, Word, WordKind};

/// The dictionary's directory under `models/`, and its file.
pub const DICT_DIR_NAME: &str = "jieba";
pub const DICT_FILE: &str = "dict.txt";

/// Generic nouns (and noun-tagged function words) that never make a keyword on their own or at
/// either end of one, kept here and nowhere else.
pub const CHINESE_STOPWORDS: [&str; 32] = [
    "时候", "东西", "地方", "方面", "情况", "样子", "部分", "之间", "时间", "问题", "事情", "人们",
    "大家", "自己", "我们", "你们", "他们", "这个", "那个", "一个", "其中", "一种", "这种", "本文",
    // the same in traditional characters (jieba's dictionary is simplified)
    "時候", "東西", "問題", "我們", "你們", "他們", "這個", "這種",
];

/// Heap jieba holds per dictionary entry (records, frequencies, the character trie), measured
/// with the counting allocator on the shipped dictionary (349,045 entries: 29.9 MB), x86_64.
pub const JIEBA_BYTES_PER_ENTRY: usize = 86;

/// Whether a jieba tag marks a noun-like word.
fn is_noun(tag: &str) -> bool {
    tag.starts_with('n') || matches!(tag, "vn" | "an" | "j" | "eng")
}

/// Whether a jieba tag marks a modifier that may open a term (adjective, distinguishing word).
fn is_modifier(tag: &str) -> bool {
    matches!(tag, "a" | "b")
}

/// Whether a jieba tag marks a content word for the fallback (verbs, adjectives, idioms).
fn is_content(tag: &str) -> bool {
    is_noun(tag) || matches!(tag, "v" | "a" | "i" | "l" | "vd" | "ad")
}

/// A jieba tag (`n`, `nrfg`, `eng`, …: at most four ASCII letters), kept without allocating.
type TagName = heapless::String<8>;

pub struct ChineseCandidates {
    jieba: Jieba,
    entries: usize,
    /// The spans and tags of the text `segment` last cut, so `candidates` does not run jieba a
    /// second time on the same text.
    last: std::cell::RefCell<Vec<((usize, usize), TagName)>>,
}

impl ChineseCandidates {
    /// Loads `dict.txt` (jieba's `word frequency tag` lines) from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(DICT_FILE);
        let err = |reason: String| Error::DictionaryLoad {
            path: path.clone(),
            reason,
        };
        let bytes = crate::files::read(&path).map_err(|e| err(e.to_string()))?;
        let entries = bytecount_lines(&bytes);
        let mut jieba = Jieba::empty();
        jieba
            .load_dict(&mut &bytes[..])
            .map_err(|e| err(e.to_string()))?;
        if entries == 0 {
            return Err(err("no entries".into()));
        }
        Ok(ChineseCandidates {
            jieba,
            entries,
            last: std::cell::RefCell::new(Vec::new()),
        })
    }

    /// Words of `text` with their byte spans and jieba tags.
    pub fn tag<'a>(&'a self, text: &'a str) -> Vec<jieba_rs::Tag<'a>> {
        self.jieba.tag(text, true)
    }

    /// Cuts and tags `text` into `self.last`.
    fn cut(&self, text: &str) {
        let mut last = self.last.borrow_mut();
        last.clear();
        last.extend(self.jieba.tag(text, true).iter().map(|t| {
            let mut tag = TagName::new();
            // jieba's tags are at most four ASCII letters; a longer one is cut, never lost
            for c in t.tag.chars() {
                if tag.push(c).is_err() {
                    break;
                }
            }
            ((t.byte_start, t.byte_end), tag)
        }));
    }
}

fn bytecount_lines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The dictionary directory beside the model directory (`models/jieba`), or in the source tree.
pub fn default_dict_dir(model_dir: &Path) -> Option<PathBuf> {
    let beside = model_dir.parent().map(|p| p.join(DICT_DIR_NAME));
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(DICT_DIR_NAME);
    beside
        .into_iter()
        .chain([source])
        .find(|d| crate::files::is_file(&d.join(DICT_FILE)))
}

impl CandidateGenerator for ChineseCandidates {
    /// A single jieba word keeps its mean: with half its sum, as English takes, F1@5 on the
    /// Chinese set stayed 54.5 and the first keyword, the one the prompt asks about, was a gold
    /// one in 13 texts of 20 instead of 15 (EVALUATION.md, "Single words: half their sum").
    fn aggregation(&self) -> Aggregation {
        Aggregation::SumMultiword
    }

    fn segment(&self, text: &str, out: &mut Vec<(usize, usize)>) -> bool {
        self.cut(text);
        out.clear();
        out.extend(self.last.borrow().iter().map(|(span, _)| *span));
        true
    }

    fn word_kind(&self, surface: &str) -> Option<WordKind> {
        CHINESE_STOPWORDS
            .contains(&surface)
            .then_some(WordKind::Stopword)
    }

    fn candidates(&self, text: &str, words: &[Word], out: &mut Vec<Candidate>) {
        out.clear();
        // `words` are this text's jieba words in order, cut where the model's tokens stopped:
        // the ones `segment` just made, unless the caller made them otherwise.
        let same = {
            let last = self.last.borrow();
            last.len() >= words.len()
                && words
                    .iter()
                    .zip(last.iter())
                    .all(|(w, (span, _))| (w.start, w.end) == *span)
        };
        if !same {
            self.cut(text);
        }
        let last = self.last.borrow();
        let n = words.len().min(last.len());
        let tag_of = |i: usize| last[i].1.as_str();
        let surface = |i: usize| &text[words[i].start..words[i].end];
        let han_chars = |i: usize| surface(i).chars().filter(|&c| is_han(c)).count();
        let adjacent = |i: usize| i > 0 && words[i - 1].end == words[i].start;
        // A word jieba does not know (tag `x`: e.g. traditional characters, which its
        // simplified dictionary lacks) of two Han characters or more may be a term.
        let noun = |i: usize| is_noun(tag_of(i)) || (tag_of(i) == "x" && han_chars(i) >= 2);
        // A single-character noun right after a word is a suffix that makes a compound with it
        // (提示 + 词 → 提示词, 处理 + 器), never a keyword alone.
        let suffix = |i: usize| {
            adjacent(i)
                && han_chars(i) == 1
                && surface(i).chars().count() == 1
                && tag_of(i).starts_with('n')
                && han_chars(i - 1) >= 1
        };
        let usable = |i: usize| words[i].kind == WordKind::Content;
        let in_run = |i: usize| {
            usable(i) && (noun(i) || is_modifier(tag_of(i)) || (i + 1 < n && suffix(i + 1)))
        };
        let mut i = 0;
        while i < n {
            // a run of modifiers and nouns, adjacent in the text
            let start = i;
            while i < n && in_run(i) && (i == start || adjacent(i)) {
                i += 1;
            }
            for last in start..i {
                if !noun(last) {
                    continue;
                }
                let from = last.saturating_sub(MAX_PHRASE_WORDS - 1).max(start);
                for first in from..=last {
                    // a phrase does not start inside a compound, nor with a lone character that
                    // jieba does not know as a noun
                    if suffix(first) {
                        continue;
                    }
                    let one_char = surface(first).chars().count() == 1 && han_chars(first) == 1;
                    if first == last && one_char && !tag_of(first).starts_with('n') {
                        continue;
                    }
                    if last + 1 < n && suffix(last + 1) && last + 1 < i {
                        continue; // the compound continues: 提示 alone is not 提示词
                    }
                    out.push(Candidate {
                        first,
                        len: last + 1 - first,
                    });
                }
            }
            if i == start {
                i += 1;
            }
        }
        if out.is_empty() {
            for i in 0..n {
                let chars = surface(i).chars().count();
                if usable(i) && (is_content(tag_of(i)) || noun(i)) && chars >= 2 {
                    out.push(Candidate { first: i, len: 1 });
                }
            }
        }
        out.sort_unstable_by_key(|c| (c.first, c.len));
    }

    fn name(&self) -> &'static str {
        "jieba-nouns"
    }

    fn memory_bytes(&self, max_seq: usize) -> usize {
        // the dictionary, and per text jieba's tags: its own result and the spans and tags kept
        self.entries * JIEBA_BYTES_PER_ENTRY + 2 * max_seq * std::mem::size_of::<jieba_rs::Tag>()
    }
}
