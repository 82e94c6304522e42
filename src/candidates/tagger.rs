//! A part-of-speech tagger for the noun-phrase candidates: an averaged perceptron in the classic
//! design of Honnibal's "A good POS tagger in about 200 lines" (the one NLTK and TextBlob ship),
//! with Penn Treebank tags, trained on UD English EWT by `examples/train-tagger.rs`.
//!
//! It tags the pipeline's own words (the BERT pre-tokenizer's words: punctuation split off, so
//! `don't` is `don ' t`); the training data is re-tokenized the same way so the tagger never sees
//! a word shape it was not trained on.
//!
//! Weights: for each feature (a 64-bit FNV-1a hash of its template and strings), a sparse list of
//! (tag, int16 weight); the features sorted by hash so lookup is a binary search over one flat
//! array. Frequent unambiguous words skip the model through a tag dictionary.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// File name of the weights inside a tagger directory.
pub const TAGGER_FILE: &str = "tagger.bin";
/// Name of the shipped tagger's directory under `models/`.
pub const DEFAULT_TAGGER_NAME: &str = "pos-tagger-ewt";
/// First bytes of a weights file (format version 1).
const MAGIC: &[u8; 8] = b"APTAGGR1";
/// Most tags a model may have: tags are stored as one byte.
pub const MAX_TAGS: usize = 255;
/// Largest weights file accepted, so a wrong path cannot make the loader allocate without bound.
pub const MAX_TAGGER_BYTES: u64 = 64 * 1024 * 1024;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Incremental FNV-1a over a feature's template id and its string parts.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new(template: u8) -> Self {
        Fnv(FNV_OFFSET).byte(template)
    }
    fn byte(self, b: u8) -> Self {
        Fnv((self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME))
    }
    fn str(mut self, s: &str) -> Self {
        for &b in s.as_bytes() {
            self = self.byte(b);
        }
        // separator: parts cannot run into each other
        self.byte(0xff)
    }
}

/// Last `n` characters of `s`.
fn suffix(s: &str, n: usize) -> &str {
    let start = s
        .char_indices()
        .rev()
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or(0);
    &s[start..]
}

/// First `n` characters of `s`.
fn prefix(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map(|(i, _)| &s[..i]).unwrap_or(s)
}

fn first_char(s: &str) -> &str {
    s.char_indices().nth(1).map(|(i, _)| &s[..i]).unwrap_or(s)
}

/// Honnibal's normalization: four-digit numbers and numbers become placeholders, the rest is
/// lowercased.
pub fn normalize(word: &str) -> String {
    let mut chars = word.chars();
    let first = chars.next();
    if word.len() == 4 && word.bytes().all(|b| b.is_ascii_digit()) {
        "!YEAR".to_string()
    } else if first.is_some_and(|c| c.is_ascii_digit()) {
        "!DIGITS".to_string()
    } else {
        word.to_lowercase()
    }
}

const START: [&str; 2] = ["-START-", "-START2-"];
const END: [&str; 2] = ["-END-", "-END2-"];

/// A sentence prepared for feature extraction: raw words and normalized context with padding.
pub struct Context<'a> {
    words: &'a [&'a str],
    /// START, START2, normalized words…, END, END2
    norm: Vec<String>,
}

impl<'a> Context<'a> {
    pub fn new(words: &'a [&'a str]) -> Self {
        let mut norm = Vec::with_capacity(words.len() + 4);
        norm.extend(START.iter().map(|s| s.to_string()));
        norm.extend(words.iter().map(|w| normalize(w)));
        norm.extend(END.iter().map(|s| s.to_string()));
        Context { words, norm }
    }

    /// Calls `f` with the hash of every feature of word `i`, given the two previous tags.
    pub fn features(&self, i: usize, prev: &str, prev2: &str, mut f: impl FnMut(u64)) {
        let word = self.words[i];
        let c = |k: isize| self.norm[(i as isize + 2 + k) as usize].as_str();
        f(Fnv::new(0).0);
        f(Fnv::new(1).str(suffix(word, 3)).0);
        f(Fnv::new(2).str(first_char(word)).0);
        f(Fnv::new(3).str(prev).0);
        f(Fnv::new(4).str(prev2).0);
        f(Fnv::new(5).str(prev).str(prev2).0);
        f(Fnv::new(6).str(c(0)).0);
        f(Fnv::new(7).str(prev).str(c(0)).0);
        f(Fnv::new(8).str(c(-1)).0);
        f(Fnv::new(9).str(suffix(c(-1), 3)).0);
        f(Fnv::new(10).str(c(-2)).0);
        f(Fnv::new(11).str(c(1)).0);
        f(Fnv::new(12).str(suffix(c(1), 3)).0);
        f(Fnv::new(13).str(c(2)).0);
        // Additions to the classic set, for the technical vocabulary of abstracts: a longer
        // suffix, and the word's shape (capitalized, all caps, has a digit).
        f(Fnv::new(14).str(suffix(word, 4)).0);
        f(Fnv::new(15).str(shape(word)).0);
        f(Fnv::new(16).str(suffix(c(0), 2)).0);
        f(Fnv::new(17).str(prefix(c(0), 3)).0);
        f(Fnv::new(18).str(c(-1)).str(c(0)).0);
        f(Fnv::new(19).str(c(0)).str(c(1)).0);
    }
}

fn shape(word: &str) -> &'static str {
    let upper = word.chars().filter(|c| c.is_uppercase()).count();
    let digit = word.chars().any(|c| c.is_ascii_digit());
    let first_upper = word.chars().next().is_some_and(char::is_uppercase);
    match (digit, upper, first_upper) {
        (true, _, _) => "d",
        (false, 0, _) => "x",
        (false, u, true) if u == word.chars().count() && u > 1 => "XX",
        (false, 1, true) => "Xx",
        _ => "mixed",
    }
}

/// Where the sentences of a text end (exclusive word indices; the last is `words.len()`): after
/// `.`, `!` or `?` when the next word does not start with a lowercase letter, so that the
/// pieces of `e.g. the` (`e . g . the`) stay in one sentence.
pub fn sentence_ends<'a>(words: &'a [&'a str]) -> impl Iterator<Item = usize> + 'a {
    (1..=words.len()).filter(move |&end| {
        end == words.len()
            || (matches!(words[end - 1], "." | "!" | "?")
                && !words[end].chars().next().is_some_and(char::is_lowercase))
    })
}

/// A loaded tagger.
pub struct Tagger {
    tags: Vec<String>,
    tagdict: HashMap<String, u8>,
    /// Sorted feature hashes; feature k's weights are entries offsets[k]..offsets[k+1].
    hashes: Vec<u64>,
    offsets: Vec<u32>,
    entry_tags: Vec<u8>,
    entry_weights: Vec<i16>,
    /// Weight = entry_weight · scale.
    scale: f32,
}

/// Everything the training program produces, before it is written to disk.
pub struct Weights {
    pub tags: Vec<String>,
    pub tagdict: Vec<(String, u8)>,
    /// (feature hash, tag, weight), any order.
    pub entries: Vec<(u64, u8, f32)>,
}

impl Tagger {
    /// Quantizes `w` to int16 (one scale for all) and builds the lookup tables.
    pub fn from_weights(w: Weights) -> Result<Self> {
        if w.tags.is_empty() || w.tags.len() > MAX_TAGS {
            return Err(Error::Config(format!(
                "a tagger needs 1..={MAX_TAGS} tags, got {}",
                w.tags.len()
            )));
        }
        let max = w
            .entries
            .iter()
            .map(|e| e.2.abs())
            .fold(0.0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let scale = max / f32::from(i16::MAX);
        let mut entries = w.entries;
        entries.sort_unstable_by_key(|e| (e.0, e.1));
        let mut t = Tagger {
            tags: w.tags,
            tagdict: w.tagdict.into_iter().collect(),
            hashes: Vec::new(),
            offsets: Vec::new(),
            entry_tags: Vec::with_capacity(entries.len()),
            entry_weights: Vec::with_capacity(entries.len()),
            scale,
        };
        for (h, tag, weight) in entries {
            let q = (weight / scale).round() as i16;
            if q == 0 {
                continue;
            }
            if t.hashes.last() != Some(&h) {
                t.hashes.push(h);
                t.offsets.push(t.entry_tags.len() as u32);
            }
            t.entry_tags.push(tag);
            t.entry_weights.push(q);
        }
        t.offsets.push(t.entry_tags.len() as u32);
        Ok(t)
    }

    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    pub fn tag_name(&self, tag: u8) -> &str {
        &self.tags[usize::from(tag)]
    }

    /// Number of features and weights, and the bytes the loaded tables take.
    pub fn size(&self) -> (usize, usize, usize) {
        let dict: usize = self.tagdict.keys().map(|k| k.len() + 24 + 1 + 8).sum();
        let bytes = self.hashes.len() * 8
            + self.offsets.len() * 4
            + self.entry_tags.len()
            + self.entry_weights.len() * 2
            + dict;
        (self.hashes.len(), self.entry_tags.len(), bytes)
    }

    /// Tags a text of several sentences, one sentence at a time. The tagger was trained on
    /// single sentences: tagged as one sequence, a full stop followed by the next sentence's
    /// words is a context it never saw (it tagged `efficiency . The` as `NN NN DT`, and the
    /// wrong tag then misleads the words after it).
    pub fn tag_text(&self, words: &[&str], out: &mut Vec<u8>) {
        out.clear();
        let mut start = 0;
        for end in sentence_ends(words) {
            self.push_sentence(&words[start..end], out);
            start = end;
        }
    }

    /// Tags one sentence.
    pub fn tag(&self, words: &[&str], out: &mut Vec<u8>) {
        out.clear();
        self.push_sentence(words, out);
    }

    /// Appends the tags of one sentence to `out`.
    fn push_sentence(&self, words: &[&str], out: &mut Vec<u8>) {
        let base = out.len();
        let ctx = Context::new(words);
        let mut scores = vec![0i32; self.tags.len()];
        for (i, w) in words.iter().enumerate() {
            let tag = match self.tagdict.get(*w) {
                Some(&t) => t,
                None => {
                    let prev = self.prev_tag(&out[base..], i, 1);
                    let prev2 = self.prev_tag(&out[base..], i, 2);
                    scores.fill(0);
                    ctx.features(i, prev, prev2, |h| self.add_feature(h, &mut scores));
                    argmax(&scores)
                }
            };
            out.push(tag);
        }
    }

    fn prev_tag(&self, out: &[u8], i: usize, back: usize) -> &str {
        if i >= back {
            self.tag_name(out[i - back])
        } else {
            START[back - 1]
        }
    }

    fn add_feature(&self, h: u64, scores: &mut [i32]) {
        if let Ok(k) = self.hashes.binary_search(&h) {
            let (a, b) = (self.offsets[k] as usize, self.offsets[k + 1] as usize);
            for (t, w) in self.entry_tags[a..b].iter().zip(&self.entry_weights[a..b]) {
                scores[usize::from(*t)] += i32::from(*w);
            }
        }
    }

    /// Writes the weights file.
    pub fn write(&self, path: &Path) -> Result<()> {
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.scale.to_le_bytes());
        put_u32(&mut b, self.tags.len());
        for t in &self.tags {
            put_str(&mut b, t);
        }
        let mut dict: Vec<_> = self.tagdict.iter().collect();
        dict.sort();
        put_u32(&mut b, dict.len());
        for (w, &t) in dict {
            put_str(&mut b, w);
            b.push(t);
        }
        put_u32(&mut b, self.hashes.len());
        put_u32(&mut b, self.entry_tags.len());
        for h in &self.hashes {
            b.extend_from_slice(&h.to_le_bytes());
        }
        for o in &self.offsets {
            b.extend_from_slice(&o.to_le_bytes());
        }
        b.extend_from_slice(&self.entry_tags);
        for w in &self.entry_weights {
            b.extend_from_slice(&w.to_le_bytes());
        }
        std::fs::write(path, b).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Loads `dir/tagger.bin`, checking every length and index.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join(TAGGER_FILE);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        let len = crate::files::len(&path).map_err(io)?;
        if len > MAX_TAGGER_BYTES {
            return Err(bad(&path, format!("{len} bytes, over {MAX_TAGGER_BYTES}")));
        }
        let bytes = crate::files::read(&path).map_err(io)?;
        Self::parse(&bytes).map_err(|reason| bad(&path, reason))
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let mut r = Reader { b: bytes, at: 0 };
        if r.take(8)? != MAGIC {
            return Err("not a tagger weights file (bad magic)".into());
        }
        let scale = f32::from_le_bytes(r.take(4)?.try_into().unwrap_or_default());
        let n_tags = r.u32()?;
        if n_tags == 0 || n_tags > MAX_TAGS {
            return Err(format!("{n_tags} tags"));
        }
        let tags = (0..n_tags)
            .map(|_| r.str())
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let n_dict = r.u32()?;
        let mut tagdict = HashMap::with_capacity(n_dict);
        for _ in 0..n_dict {
            let w = r.str()?;
            let t = r.take(1)?[0];
            if usize::from(t) >= n_tags {
                return Err(format!("tag dictionary entry `{w}` has tag {t}"));
            }
            tagdict.insert(w, t);
        }
        let n_feat = r.u32()?;
        let n_entries = r.u32()?;
        let hashes: Vec<u64> = r
            .take(n_feat.checked_mul(8).ok_or("size overflow")?)?
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let offsets: Vec<u32> = r
            .take((n_feat + 1).checked_mul(4).ok_or("size overflow")?)?
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().unwrap_or_default()))
            .collect();
        let entry_tags = r.take(n_entries)?.to_vec();
        let entry_weights: Vec<i16> = r
            .take(n_entries.checked_mul(2).ok_or("size overflow")?)?
            .chunks_exact(2)
            .map(|c| i16::from_le_bytes([c[0], c[1]]))
            .collect();
        if r.at != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - r.at));
        }
        if !hashes.windows(2).all(|w| w[0] < w[1]) {
            return Err("feature table not sorted".into());
        }
        if offsets.first() != Some(&0)
            || offsets.last().map(|&o| o as usize) != Some(n_entries)
            || !offsets.windows(2).all(|w| w[0] <= w[1])
        {
            return Err("bad feature offsets".into());
        }
        if entry_tags.iter().any(|&t| usize::from(t) >= n_tags) {
            return Err("weight for a tag that does not exist".into());
        }
        Ok(Tagger {
            tags,
            tagdict,
            hashes,
            offsets,
            entry_tags,
            entry_weights,
            scale,
        })
    }

    pub fn scale(&self) -> f32 {
        self.scale
    }
}

fn argmax(scores: &[i32]) -> u8 {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as u8
}

fn bad(path: &Path, reason: String) -> Error {
    Error::TaggerLoad {
        path: path.to_path_buf(),
        reason,
    }
}

fn put_u32(b: &mut Vec<u8>, n: usize) {
    b.extend_from_slice(&(n as u32).to_le_bytes());
}

fn put_str(b: &mut Vec<u8>, s: &str) {
    put_u32(b, s.len());
    b.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> std::result::Result<usize, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()) as usize)
    }
    fn str(&mut self) -> std::result::Result<String, String> {
        let n = self.u32()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "string is not UTF-8".into())
    }
}

/// Where the shipped tagger is looked for: beside the model directory (`models/`), then the
/// source tree.
pub fn default_tagger_dir(model_dir: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(models) = model_dir.parent() {
        candidates.push(models.join(DEFAULT_TAGGER_NAME));
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models")
            .join(DEFAULT_TAGGER_NAME),
    );
    candidates
        .into_iter()
        .find(|d| crate::files::is_file(&d.join(TAGGER_FILE)))
}

/// UD English EWT in CoNLL-U, re-tokenized into the pipeline's words (training and tests).
pub mod ewt {
    use std::path::Path;

    use crate::error::{Error, Result};
    use crate::tokenize::TextTokenizer;

    pub struct Token {
        pub form: String,
        /// Penn Treebank tag (XPOS, column 5).
        pub tag: String,
        pub space_after: bool,
    }

    /// Sentences of a CoNLL-U file as (form, XPOS, space after) lists; multiword-token ranges give
    /// the spacing of their words, empty nodes are skipped.
    pub fn read_conllu(path: &Path) -> Result<Vec<Vec<Token>>> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |line: usize, reason: &str| Error::Dataset {
            path: path.to_path_buf(),
            line,
            reason: reason.to_string(),
        };
        let mut out = Vec::new();
        let mut sent: Vec<Token> = Vec::new();
        let mut range_end = 0usize;
        let mut range_space = true;
        for (ln, line) in text.lines().enumerate() {
            if line.is_empty() {
                if !sent.is_empty() {
                    out.push(std::mem::take(&mut sent));
                }
                range_end = 0;
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() != 10 {
                return Err(bad(ln + 1, "not 10 tab-separated columns"));
            }
            let id = cols[0];
            let no_space = cols[9].split('|').any(|m| m == "SpaceAfter=No");
            if let Some((_, b)) = id.split_once('-') {
                range_end = b.parse().map_err(|_| bad(ln + 1, "bad token range"))?;
                range_space = !no_space;
                continue;
            }
            if id.contains('.') {
                continue;
            }
            let n: usize = id.parse().map_err(|_| bad(ln + 1, "bad token id"))?;
            let space_after = if n < range_end {
                false
            } else if n == range_end {
                range_space
            } else {
                !no_space
            };
            sent.push(Token {
                form: cols[1].to_string(),
                tag: cols[4].to_string(),
                space_after,
            });
        }
        if !sent.is_empty() {
            out.push(sent);
        }
        Ok(out)
    }

    /// EWT tokens → the pipeline's words: rebuild the sentence text, tokenize it with the BERT
    /// tokenizer, and tag each word by the token its first byte is in.
    pub fn to_pipeline_words(
        sent: &[Token],
        tok: &TextTokenizer,
    ) -> Option<(Vec<String>, Vec<String>)> {
        let mut text = String::new();
        let mut owner = Vec::new(); // token index of each byte
        for (i, t) in sent.iter().enumerate() {
            text.push_str(&t.form);
            owner.resize(text.len(), i);
            if t.space_after {
                text.push(' ');
                owner.push(i);
            }
        }
        let tokens = tok.tokenize(&text).ok()?;
        if tokens.truncated {
            return None;
        }
        let mut words: Vec<(usize, usize)> = Vec::new();
        let mut tags = Vec::new();
        let mut last = None;
        for (k, wid) in tokens.word_ids.iter().enumerate() {
            let Some(wid) = wid else { continue };
            let (s, e) = tokens.offsets[k];
            if last == Some(*wid) {
                if let Some(w) = words.last_mut() {
                    w.1 = e;
                }
                continue;
            }
            last = Some(*wid);
            words.push((s, e));
            tags.push(sent[owner[s]].tag.clone());
        }
        let words = words.iter().map(|&(s, e)| text[s..e].to_string()).collect();
        Some((words, tags))
    }
}

/// Averaged-perceptron training (used by `examples/train-tagger.rs`; in the library so its
/// feature extraction is the very code that tags).
pub mod train {
    use super::*;

    /// One training sentence: words and their tag indices.
    pub struct Sentence {
        pub words: Vec<String>,
        pub tags: Vec<u8>,
    }

    #[derive(Default, Clone, Copy)]
    struct Param {
        w: f32,
        total: f64,
        stamp: u32,
    }

    /// Tag dictionary: words seen at least `min_count` times with one tag at least
    /// `min_share` of the time.
    pub fn tagdict(sentences: &[Sentence], min_count: u32, min_share: f64) -> Vec<(String, u8)> {
        let mut counts: HashMap<&str, HashMap<u8, u32>> = HashMap::new();
        for s in sentences {
            for (w, &t) in s.words.iter().zip(&s.tags) {
                *counts.entry(w).or_default().entry(t).or_default() += 1;
            }
        }
        let mut out: Vec<(String, u8)> = counts
            .into_iter()
            .filter_map(|(w, tags)| {
                let n: u32 = tags.values().sum();
                let (&t, &best) = tags
                    .iter()
                    .max_by_key(|(t, c)| (**c, std::cmp::Reverse(**t)))?;
                (n >= min_count && f64::from(best) / f64::from(n) >= min_share)
                    .then(|| (w.to_string(), t))
            })
            .collect();
        out.sort();
        out
    }

    /// Trains for `iterations` passes over `sentences` (shuffled each pass with a fixed seed)
    /// and returns the averaged weights, keeping those with |w| ≥ `prune`.
    pub fn train(
        tags: Vec<String>,
        sentences: &mut [Sentence],
        iterations: usize,
        prune: f32,
        mut log: impl FnMut(usize, f64),
    ) -> Weights {
        let dict = tagdict(sentences, 20, 0.97);
        let dict_map: HashMap<String, u8> = dict.iter().cloned().collect();
        let n_tags = tags.len();
        let mut params: HashMap<(u64, u8), Param> = HashMap::new();
        let mut step: u32 = 0;
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut feats = Vec::with_capacity(32);
        let mut scores = vec![0f32; n_tags];
        // Weights by feature for fast scoring during training.
        let mut by_feat: HashMap<u64, Vec<f32>> = HashMap::new();
        for it in 0..iterations {
            let (mut right, mut total) = (0usize, 0usize);
            for s in sentences.iter() {
                let words: Vec<&str> = s.words.iter().map(String::as_str).collect();
                let ctx = Context::new(&words);
                let mut guesses: Vec<u8> = Vec::with_capacity(words.len());
                for (i, (word, &gold)) in words.iter().zip(&s.tags).enumerate() {
                    let guess = if let Some(&t) = dict_map.get(*word) {
                        t
                    } else {
                        let prev = prev_name(&tags, &guesses, i, 1);
                        let prev2 = prev_name(&tags, &guesses, i, 2);
                        feats.clear();
                        ctx.features(i, prev, prev2, |h| feats.push(h));
                        scores.fill(0.0);
                        for h in &feats {
                            if let Some(ws) = by_feat.get(h) {
                                for (s, w) in scores.iter_mut().zip(ws) {
                                    *s += w;
                                }
                            }
                        }
                        let mut best = 0;
                        for t in 1..n_tags {
                            if scores[t] > scores[best] {
                                best = t;
                            }
                        }
                        let guess = best as u8;
                        step += 1;
                        if guess != gold {
                            for &h in &feats {
                                for (t, delta) in [(gold, 1.0f32), (guess, -1.0)] {
                                    let p = params.entry((h, t)).or_default();
                                    p.total += f64::from(step - p.stamp) * f64::from(p.w);
                                    p.stamp = step;
                                    p.w += delta;
                                    by_feat.entry(h).or_insert_with(|| vec![0.0; n_tags])
                                        [usize::from(t)] = p.w;
                                }
                            }
                        }
                        guess
                    };
                    right += usize::from(guess == gold);
                    total += 1;
                    guesses.push(guess);
                }
            }
            log(it, right as f64 / total.max(1) as f64);
            // shuffle (Fisher–Yates, xorshift)
            for i in (1..sentences.len()).rev() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                sentences.swap(i, (rng % (i as u64 + 1)) as usize);
            }
        }
        let entries = params
            .into_iter()
            .filter_map(|((h, t), p)| {
                let total = p.total + f64::from(step - p.stamp) * f64::from(p.w);
                let avg = (total / f64::from(step.max(1))) as f32;
                (avg.abs() >= prune).then_some((h, t, avg))
            })
            .collect();
        Weights {
            tags,
            tagdict: dict,
            entries,
        }
    }

    fn prev_name<'a>(tags: &'a [String], guesses: &[u8], i: usize, back: usize) -> &'a str {
        if i >= back {
            &tags[usize::from(guesses[i - back])]
        } else {
            START[back - 1]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_and_suffixes() {
        assert_eq!(normalize("1984"), "!YEAR");
        assert_eq!(normalize("3rd"), "!DIGITS");
        assert_eq!(normalize("Zeolite"), "zeolite");
        assert_eq!(suffix("über", 3), "ber");
        assert_eq!(suffix("ab", 3), "ab");
        assert_eq!(first_char("Ölk"), "Ö");
    }

    #[test]
    fn sentences_end_at_a_stop_before_a_capital_or_the_end() {
        let ends = |t: &str| {
            let w: Vec<&str> = t.split(' ').collect();
            sentence_ends(&w).collect::<Vec<_>>()
        };
        assert_eq!(ends("It runs . The end ."), [3, 6]);
        assert_eq!(ends("Why ? 42 is ! no"), [2, 6]);
        // `e.g. the` stays in one sentence; so does a text without a stop
        assert_eq!(ends("see e . g . the cat"), [7]);
        assert_eq!(ends("no stop here"), [3]);
    }

    /// A toy language the perceptron must learn exactly, then the same answers after a round
    /// trip through the file format.
    #[test]
    fn learns_a_toy_language_and_round_trips() {
        let tags: Vec<String> = ["DT", "NN", "VB"].iter().map(|s| s.to_string()).collect();
        let sent = |w: &str, t: &[u8]| train::Sentence {
            words: w.split(' ').map(String::from).collect(),
            tags: t.to_vec(),
        };
        let mut data = vec![
            sent("the dog runs", &[0, 1, 2]),
            sent("a cat sleeps", &[0, 1, 2]),
            sent("the bird sings", &[0, 1, 2]),
            sent("a fish swims", &[0, 1, 2]),
        ];
        let w = train::train(tags, &mut data, 8, 0.0, |_, _| {});
        let t = Tagger::from_weights(w).unwrap();
        let mut out = Vec::new();
        t.tag(&["the", "cat", "runs"], &mut out);
        let names: Vec<&str> = out.iter().map(|&x| t.tag_name(x)).collect();
        assert_eq!(names, ["DT", "NN", "VB"]);
        // a text is tagged sentence by sentence
        let mut text = Vec::new();
        t.tag_text(
            &["the", "cat", "runs", ".", "A", "dog", "sleeps"],
            &mut text,
        );
        let (mut a, mut b) = (Vec::new(), Vec::new());
        t.tag(&["the", "cat", "runs", "."], &mut a);
        t.tag(&["A", "dog", "sleeps"], &mut b);
        a.extend(b);
        assert_eq!(text, a);

        let dir = std::env::temp_dir().join(format!("attnprompt-tagger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        t.write(&dir.join(TAGGER_FILE)).unwrap();
        let back = Tagger::load(&dir).unwrap();
        let mut out2 = Vec::new();
        back.tag(&["the", "cat", "runs"], &mut out2);
        assert_eq!(out, out2);
        // a damaged file is an error, not a panic
        let bytes = std::fs::read(dir.join(TAGGER_FILE)).unwrap();
        std::fs::write(dir.join(TAGGER_FILE), &bytes[..bytes.len() - 3]).unwrap();
        assert!(Tagger::load(&dir).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
