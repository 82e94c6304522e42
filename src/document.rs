//! Documents of any length in a fixed memory: the text is read a chunk at a time, each chunk is
//! tokenized and cut into windows of at most `max_seq` tokens without cutting a word, and the
//! phrases every window finds are summed in a table of fixed capacity.
//!
//! No tract here: [`crate::pipeline::Pipeline::run_document`] runs the model on each window and
//! hands the candidates to the table; the tests drive the same code with synthetic scores.

use std::time::Instant;

use crate::config::MAX_PHRASE_WORDS;
use crate::error::{Error, Result};
use crate::keywords::{self, push_unless_inside, Aggregation, CandidateGenerator, Keyword};
use crate::prompt::Template;
use crate::ranking::{check_covered, RankBuffers};
use crate::tokenize::{TextTokenizer, Tokens};

/// Bytes of text read and tokenized at once. Every buffer of the document path is sized from it
/// and from `max_seq`, never from the document.
pub const CHUNK_BYTES: usize = 16 * 1024;
/// Distinct phrases the table holds. When a window brings it past this, the weakest phrases
/// (by their score so far) are dropped; one seen again later starts over from that window.
pub const PHRASE_TABLE_CAPACITY: usize = 4096;
/// The position prior's scale, in tokens: an occurrence in a window that starts `t` tokens into
/// the document counts `1 / (1 + t / POSITION_SCALE_TOKENS)` of its score, so a phrase of the
/// opening (title, abstract) outranks one as strong that only appears late. The first window
/// counts in full, so a text of one window ranks as without the prior. Chosen on the SemEval-2010
/// dev papers among 100, 300 and 1,000 tokens and checked on Inspec (EVALUATION.md).
pub const POSITION_SCALE_TOKENS: f32 = 300.0;

/// `1 / (1 + tokens_before / scale)`; 1 when `scale` is 0 (no prior).
pub fn position_prior(tokens_before: usize, scale: f32) -> f32 {
    if scale > 0.0 {
        1.0 / (1.0 + tokens_before as f32 / scale)
    } else {
        1.0
    }
}

/// Whether the text between two words holds a blank line (two line breaks, spaces between).
fn is_paragraph_break(gap: &str) -> bool {
    let mut breaks = 0;
    for ch in gap.chars() {
        match ch {
            '\n' => breaks += 1,
            ' ' | '\t' | '\r' => {}
            _ => breaks = 0,
        }
        if breaks == 2 {
            return true;
        }
    }
    false
}

/// Longest phrase key (lowercased words joined by single spaces) the table keeps; a longer
/// phrase (a run of symbols, a URL) is not a keyword and is not counted.
pub const MAX_KEY_BYTES: usize = 64;
/// Longest surface form (the phrase as first written) the table keeps.
pub const MAX_SURFACE_BYTES: usize = 96;

/// Where to cut the bytes read so far into the next chunk: after the last line break, else the
/// last space, else the last CJK sentence mark (。！？；，) in the second half of the first
/// [`CHUNK_BYTES`], so no word is cut; a chunk without any of these (one word of 8 KiB) is cut at
/// a character boundary. `at_eof`: nothing more will be read, so what fits is all of it.
pub fn chunk_cut(buf: &[u8], at_eof: bool) -> usize {
    if buf.len() <= CHUNK_BYTES && at_eof {
        return buf.len();
    }
    let limit = buf.len().min(CHUNK_BYTES);
    let half = limit / 2;
    let tail = &buf[half..limit];
    if let Some(i) = tail.iter().rposition(|&b| b == b'\n') {
        return half + i + 1;
    }
    if let Some(i) = tail.iter().rposition(|&b| b == b' ' || b == b'\t') {
        return half + i + 1;
    }
    // 。！？；， in UTF-8: E3 80 82, EF BC 81, EF BC 9F, EF BC 9B, EF BC 8C.
    let marks: [&[u8]; 5] = [
        b"\xE3\x80\x82",
        b"\xEF\xBC\x81",
        b"\xEF\xBC\x9F",
        b"\xEF\xBC\x9B",
        b"\xEF\xBC\x8C",
    ];
    if let Some(i) = (0..tail.len().saturating_sub(2))
        .rev()
        .find(|&i| marks.iter().any(|m| tail[i..].starts_with(m)))
    {
        return half + i + 3;
    }
    // A character boundary: not a UTF-8 continuation byte.
    (1..=limit)
        .rev()
        .find(|&i| i == buf.len() || buf[i] & 0xC0 != 0x80)
        .unwrap_or(limit)
}

/// Bytes of the buffer a [`ChunkReader`] reads into: a chunk and what was read past its cut.
pub const CHUNK_BUFFER_BYTES: usize = 2 * CHUNK_BYTES;

/// Reads a document chunk by chunk into a buffer of [`CHUNK_BUFFER_BYTES`] that its owner keeps
/// from one document to the next.
pub struct ChunkReader<'a, R> {
    reader: R,
    buf: &'a mut [u8],
    /// Bytes of `buf` holding data.
    filled: usize,
    /// Bytes at the front of `buf` that the last chunk handed out.
    taken: usize,
    /// Document offset of `buf[0]`.
    offset: usize,
    eof: bool,
}

impl<'a, R: std::io::Read> ChunkReader<'a, R> {
    /// `buf` must hold at least [`CHUNK_BUFFER_BYTES`].
    pub fn new(reader: R, buf: &'a mut [u8]) -> Self {
        assert!(
            buf.len() >= CHUNK_BUFFER_BYTES,
            "a chunk buffer of {} bytes",
            buf.len()
        );
        ChunkReader {
            reader,
            buf,
            filled: 0,
            taken: 0,
            offset: 0,
            eof: false,
        }
    }

    /// The next chunk and its byte offset in the document, or `None` at the end.
    /// [`Error::InvalidUtf8`] gives the offset in the document of the first bad byte.
    pub fn next_chunk(&mut self) -> Result<Option<(usize, &str)>> {
        self.buf.copy_within(self.taken..self.filled, 0);
        self.filled -= self.taken;
        self.offset += self.taken;
        self.taken = 0;
        while !self.eof && self.filled < CHUNK_BYTES {
            match self.reader.read(&mut self.buf[self.filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::ReadDocument(e.to_string())),
            }
        }
        if self.filled == 0 {
            return Ok(None);
        }
        let cut = chunk_cut(&self.buf[..self.filled], self.eof);
        let chunk = std::str::from_utf8(&self.buf[..cut]).map_err(|e| Error::InvalidUtf8 {
            offset: self.offset + e.valid_up_to(),
        })?;
        self.taken = cut;
        Ok(Some((self.offset, chunk)))
    }
}

/// Cuts `n` tokens into windows of at most `max_seq - 2` (room for the start and end tokens),
/// each ending where `can_cut(i)` allows a cut before token `i` (a word starts there); a word
/// longer than a whole window is cut. Writes `(start, end)` token ranges to `out`, covering
/// `0..n` in order, each token in exactly one window.
pub fn windows(
    n: usize,
    max_seq: usize,
    can_cut: impl Fn(usize) -> bool,
    out: &mut Vec<(usize, usize)>,
) {
    out.clear();
    let cap = max_seq.saturating_sub(2).max(1);
    let mut start = 0;
    while start < n {
        let mut stop = (start + cap).min(n);
        if stop < n {
            let mut s = stop;
            while s > start && !can_cut(s) {
                s -= 1;
            }
            if s > start {
                stop = s;
            }
        }
        out.push((start, stop));
        start = stop;
    }
}

/// One phrase of the table: its key, its first occurrence, its summed score.
#[derive(Clone, Copy)]
struct Entry {
    key: [u8; MAX_KEY_BYTES],
    key_len: u8,
    surface: [u8; MAX_SURFACE_BYTES],
    surface_len: u8,
    /// Byte range of the first occurrence in the document.
    start: usize,
    end: usize,
    sum: f32,
    max: f32,
    occurrences: u32,
    /// A single word: scored by its own rule ([`Aggregation`]; by default
    /// [`keywords::single_word_score`], as in [`crate::keywords::Ranker::rank`]).
    single_word: bool,
}

impl Entry {
    fn key(&self) -> &[u8] {
        &self.key[..self.key_len as usize]
    }

    fn surface(&self) -> &str {
        // Built from a &str cut at a char boundary.
        std::str::from_utf8(&self.surface[..self.surface_len as usize]).unwrap_or("")
    }

    fn score(&self, aggregation: Aggregation) -> f32 {
        aggregation.score(self.single_word, self.sum, self.max, self.occurrences)
    }
}

/// Stronger first; ties to the phrase met first, as the ranker orders them.
fn rank_cmp(a: &Entry, b: &Entry, aggregation: Aggregation) -> std::cmp::Ordering {
    b.score(aggregation)
        .total_cmp(&a.score(aggregation))
        .then(a.start.cmp(&b.start))
        .then(a.end.cmp(&b.end))
}

/// Phrase scores summed over a document's windows, in a fixed capacity: [`PHRASE_TABLE_CAPACITY`]
/// phrases kept (sorted by key), plus one window's occurrences pending. Allocates only in
/// [`PhraseTable::with_capacity`].
pub struct PhraseTable {
    capacity: usize,
    entries: Vec<Entry>,
    pending: Vec<Entry>,
    scratch: Vec<Entry>,
    /// Phrases dropped to make room, over the document.
    dropped: usize,
    /// How occurrences make a phrase's score.
    pub aggregation: Aggregation,
}

impl PhraseTable {
    /// Room for `capacity` phrases, and for `window_occurrences` occurrences in one window.
    pub fn with_capacity(capacity: usize, window_occurrences: usize) -> Self {
        PhraseTable {
            capacity: capacity.max(1),
            entries: Vec::with_capacity(capacity + window_occurrences),
            pending: Vec::with_capacity(window_occurrences),
            scratch: Vec::with_capacity(capacity + window_occurrences),
            dropped: 0,
            aggregation: Aggregation::DEFAULT,
        }
    }

    pub fn reserved_bytes(&self) -> usize {
        (self.entries.capacity() + self.pending.capacity() + self.scratch.capacity())
            * std::mem::size_of::<Entry>()
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.pending.clear();
        self.dropped = 0;
    }

    /// Phrases in the table now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Phrases dropped so far to make room.
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// One occurrence in the current window: `key` its lowercased words joined by single spaces,
    /// `surface` as written, at `start..end` in the document. Returns false (not counted) when
    /// the key or surface is longer than the table keeps, or the window is full.
    pub fn add(
        &mut self,
        key: &str,
        surface: &str,
        start: usize,
        end: usize,
        score: f32,
        single_word: bool,
    ) -> bool {
        if key.len() > MAX_KEY_BYTES
            || surface.len() > MAX_SURFACE_BYTES
            || self.pending.len() == self.pending.capacity()
        {
            return false;
        }
        let mut e = Entry {
            key: [0; MAX_KEY_BYTES],
            key_len: key.len() as u8,
            surface: [0; MAX_SURFACE_BYTES],
            surface_len: surface.len() as u8,
            start,
            end,
            sum: score,
            max: score,
            occurrences: 1,
            single_word,
        };
        e.key[..key.len()].copy_from_slice(key.as_bytes());
        e.surface[..surface.len()].copy_from_slice(surface.as_bytes());
        self.pending.push(e);
        true
    }

    /// Merges the window's occurrences into the table (in document order, so sums add in the
    /// order the ranker adds them); then, past capacity, drops the weakest phrases.
    pub fn end_window(&mut self) {
        // Stable: occurrences of one key stay in document order.
        self.pending.sort_by(|a, b| a.key().cmp(b.key()));
        self.scratch.clear();
        let (mut i, mut j) = (0, 0);
        while i < self.entries.len() || j < self.pending.len() {
            let take_old = j == self.pending.len()
                || (i < self.entries.len() && self.entries[i].key() <= self.pending[j].key());
            let next = if take_old {
                i += 1;
                self.entries[i - 1]
            } else {
                j += 1;
                self.pending[j - 1]
            };
            match self.scratch.last_mut() {
                Some(last) if last.key() == next.key() => {
                    last.sum += next.sum;
                    last.max = last.max.max(next.max);
                    last.occurrences += next.occurrences;
                }
                _ => self.scratch.push(next),
            }
        }
        self.pending.clear();
        std::mem::swap(&mut self.entries, &mut self.scratch);
        if self.entries.len() > self.capacity {
            self.dropped += self.entries.len() - self.capacity;
            let aggregation = self.aggregation;
            self.entries
                .select_nth_unstable_by(self.capacity - 1, |a, b| rank_cmp(a, b, aggregation));
            self.entries.truncate(self.capacity);
            self.entries.sort_unstable_by(|a, b| a.key().cmp(b.key()));
        }
    }

    /// The `top_k` keywords, best first, as [`crate::keywords::Ranker::rank`] picks them (a single
    /// word inside a better keyword is left out). Reorders the table: call once, at the end.
    pub fn top_k(&mut self, top_k: usize, out: &mut Vec<Keyword>) {
        let aggregation = self.aggregation;
        self.entries
            .sort_unstable_by(|a, b| rank_cmp(a, b, aggregation));
        out.clear();
        for e in &self.entries {
            if out.len() == top_k {
                break;
            }
            push_unless_inside(out, e.surface(), e.start, e.end, e.score(aggregation));
        }
    }
}

/// What [`DocumentReader::read`] read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Read {
    /// Bytes of the document.
    pub bytes: usize,
    /// Tokens fed to the model, each window's start and end tokens included.
    pub tokens: usize,
    pub windows: usize,
    /// Tokens of the document read into windows, the start and end tokens not counted.
    pub inner_tokens: usize,
    /// Unknown tokens in windows skipped for having no known word.
    pub unknown: usize,
    pub tokenize_us: u64,
    /// In `score`: the model and the token scores.
    pub inference_us: u64,
    pub ranking_us: u64,
}

/// One occurrence of a phrase as the phrase table gets it, its score before the position prior:
/// what `eval --per-doc FILE --occurrences` writes, so ranking variants can be replayed without
/// the model (`bench/rank_replay.py`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Occurrence {
    pub window: usize,
    /// Tokens of the document before the window (what the position prior reads).
    pub tokens_before: usize,
    pub key: String,
    pub surface: String,
    pub start: usize,
    pub end: usize,
    pub score: f32,
    pub single_word: bool,
}

/// The working memory of the document path, reserved once from `max_seq` and [`CHUNK_BYTES`].
pub struct DocumentReader {
    /// The bytes read, a chunk and what follows its cut.
    chunk_buf: Vec<u8>,
    /// One chunk's tokens (a token has at least one byte).
    chunk: Tokens,
    windows: Vec<(usize, usize)>,
    /// One window's tokens, wrapped in the start and end tokens, offsets into its text.
    window: Tokens,
    /// The chunk's word spans, from a segmenter (Chinese).
    spans: Vec<(usize, usize)>,
    key: String,
    /// One window's token scores.
    scores: Vec<f32>,
    table: PhraseTable,
    pub rank: RankBuffers,
    /// [`POSITION_SCALE_TOKENS`] unless set (0: no position prior).
    pub position_scale: f32,
    /// Every occurrence of the last document read, when set (eval only: it allocates).
    pub occurrences: Option<Vec<Occurrence>>,
    /// The aggregation every document is ranked with, when set (eval's grid); else the
    /// candidate generator's.
    aggregation: Option<Aggregation>,
}

impl DocumentReader {
    pub fn new(max_seq: usize, top_k: usize) -> Self {
        DocumentReader {
            chunk_buf: vec![0; CHUNK_BUFFER_BYTES],
            chunk: Tokens::with_capacity(CHUNK_BYTES),
            windows: Vec::with_capacity(CHUNK_BYTES),
            window: Tokens::with_capacity(max_seq),
            spans: Vec::with_capacity(CHUNK_BYTES),
            key: String::with_capacity(4 * MAX_KEY_BYTES),
            scores: Vec::with_capacity(max_seq),
            table: PhraseTable::with_capacity(PHRASE_TABLE_CAPACITY, max_seq * MAX_PHRASE_WORDS),
            rank: RankBuffers::new(max_seq, top_k),
            position_scale: POSITION_SCALE_TOKENS,
            occurrences: None,
            aggregation: None,
        }
    }

    pub fn reserved_bytes(&self) -> usize {
        use std::mem::size_of;
        self.chunk_buf.capacity()
            + self.chunk.reserved_bytes()
            + self.window.reserved_bytes()
            + (self.windows.capacity() + self.spans.capacity()) * size_of::<(usize, usize)>()
            + self.key.capacity()
            + self.scores.capacity() * size_of::<f32>()
            + self.table.reserved_bytes()
            + self.rank.reserved_bytes()
    }

    /// Reads a document into the phrase table: chunk by chunk, each tokenized and cut into
    /// windows of at most `max_seq` tokens where a word starts (the segmenter's words for
    /// Chinese, else the tokenizer's); `score(ids, scores)` scores each window's tokens (the
    /// model); its candidates go to the table. A window with no known word is skipped.
    pub fn read(
        &mut self,
        reader: impl std::io::Read,
        tokenizer: &mut TextTokenizer,
        generator: &dyn CandidateGenerator,
        max_seq: usize,
        mut score: impl FnMut(&[u32], &mut Vec<f32>) -> Result<()>,
    ) -> Result<Read> {
        let mut read = Read::default();
        let mut any_text = false;
        let special = tokenizer.special_ids();
        self.table.clear();
        self.table.aggregation = self.aggregation.unwrap_or_else(|| generator.aggregation());
        if let Some(o) = self.occurrences.as_mut() {
            o.clear();
        }
        let mut chunks = ChunkReader::new(reader, &mut self.chunk_buf);
        while let Some((offset, chunk)) = chunks.next_chunk()? {
            read.bytes = offset + chunk.len();
            if chunk.trim().is_empty() {
                continue;
            }
            any_text = true;
            let t = Instant::now();
            tokenizer.tokenize_chunk_into(chunk, &mut self.chunk)?;
            let (n, offs, word_ids) = (
                self.chunk.ids.len(),
                &self.chunk.offsets,
                &self.chunk.word_ids,
            );
            if generator.segment(chunk, &mut self.spans) {
                let spans = &self.spans;
                windows(
                    n,
                    max_seq,
                    |i| spans.binary_search_by_key(&offs[i].0, |s| s.0).is_ok(),
                    &mut self.windows,
                );
            } else {
                windows(
                    n,
                    max_seq,
                    |i| word_ids[i] != word_ids[i - 1],
                    &mut self.windows,
                );
            }
            read.tokenize_us += t.elapsed().as_micros() as u64;
            for &(start, stop) in &self.windows {
                let base = self.chunk.offsets[start].0;
                let end = self.chunk.offsets[start..stop]
                    .iter()
                    .map(|o| o.1)
                    .max()
                    .unwrap_or(base);
                let text = &chunk[base..end];
                let w = &mut self.window;
                w.ids.clear();
                w.offsets.clear();
                w.word_ids.clear();
                w.ids.push(special.start);
                w.offsets.push((0, 0));
                w.word_ids.push(None);
                for i in start..stop {
                    let (s, e) = self.chunk.offsets[i];
                    w.ids.push(self.chunk.ids[i]);
                    w.offsets.push((s.max(base) - base, e.max(base) - base));
                    w.word_ids.push(self.chunk.word_ids[i]);
                }
                w.ids.push(special.end);
                w.offsets.push((0, 0));
                w.word_ids.push(None);
                w.kept_bytes = text.len();
                if let Err(Error::NotCovered { unknown }) = check_covered(w, text, &special) {
                    read.unknown += unknown;
                    continue;
                }
                let t = Instant::now();
                score(&w.ids, &mut self.scores)?;
                let t1 = Instant::now();
                let prior = position_prior(read.inner_tokens, self.position_scale);
                self.rank
                    .find_candidates(text, w, &self.scores, special, generator);
                for c in self.rank.candidates() {
                    let words = &self.rank.words[c.first..c.first + c.len];
                    // A phrase ends at a paragraph break: a heading and the paragraph under it
                    // are not one term. Each side counts on its own.
                    let mut from = 0;
                    for to in 1..=words.len() {
                        if to < words.len()
                            && !is_paragraph_break(&text[words[to - 1].end..words[to].start])
                        {
                            continue;
                        }
                        let part = &words[from..to];
                        from = to;
                        keywords::phrase_key_into(text, part, &mut self.key);
                        let (s, e) = (part[0].start, part[part.len() - 1].end);
                        if let Some(o) = self.occurrences.as_mut() {
                            o.push(Occurrence {
                                window: read.windows,
                                tokens_before: read.inner_tokens,
                                key: self.key.clone(),
                                surface: text[s..e].to_string(),
                                start: offset + base + s,
                                end: offset + base + e,
                                score: keywords::occurrence_score(part),
                                single_word: part.len() == 1,
                            });
                        }
                        self.table.add(
                            &self.key,
                            &text[s..e],
                            offset + base + s,
                            offset + base + e,
                            keywords::occurrence_score(part) * prior,
                            part.len() == 1,
                        );
                    }
                }
                self.table.end_window();
                read.tokens += w.ids.len();
                read.inner_tokens += w.ids.len() - 2;
                read.windows += 1;
                read.inference_us += t1.duration_since(t).as_micros() as u64;
                read.ranking_us += t1.elapsed().as_micros() as u64;
            }
        }
        if !any_text {
            return Err(Error::EmptyText);
        }
        Ok(read)
    }

    /// The `top_k` keywords of what [`DocumentReader::read`] read, in `self.rank.keywords`:
    /// [`Error::NotCovered`] when every window was unknown tokens, [`Error::NoKeywords`] when no
    /// candidate was found.
    pub fn keywords(&mut self, read: &Read, top_k: usize) -> Result<()> {
        self.table.top_k(top_k, &mut self.rank.keywords);
        if self.table.dropped() > 0 {
            log::info!(
                "phrase table full: {} weaker phrases dropped to keep {PHRASE_TABLE_CAPACITY}",
                self.table.dropped()
            );
        }
        if !self.rank.keywords.is_empty() {
            Ok(())
        } else if read.windows == 0 && read.unknown > 0 {
            Err(Error::NotCovered {
                unknown: read.unknown,
            })
        } else {
            Err(Error::NoKeywords)
        }
    }

    /// How a phrase's occurrences make its score in every document read from now on (unless
    /// set, the candidate generator's [`CandidateGenerator::aggregation`]).
    pub fn set_aggregation(&mut self, aggregation: Aggregation) {
        self.aggregation = Some(aggregation);
    }

    /// The keywords → the prompt, in `self.rank.prompt`.
    pub fn render(&mut self, template: &Template, text: &str) -> Result<()> {
        self.rank.render(template, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keywords::single_word_score;

    #[test]
    fn chunks_cut_after_a_line_break_a_space_or_a_sentence_mark() {
        let mut text = "a".repeat(CHUNK_BYTES - 100);
        text.push_str(" bb\ncc dd");
        text.push_str(&"e".repeat(200));
        assert_eq!(chunk_cut(text.as_bytes(), false), CHUNK_BYTES - 100 + 4);
        let spaces = format!("{} {}", "a".repeat(CHUNK_BYTES - 10), "b".repeat(100));
        assert_eq!(chunk_cut(spaces.as_bytes(), false), CHUNK_BYTES - 9);
        let zh = "模型".repeat(CHUNK_BYTES / 6 - 10) + "。" + &"词".repeat(100);
        let cut = chunk_cut(zh.as_bytes(), false);
        assert!(zh[..cut].ends_with('。'), "{}", &zh[cut - 6..cut]);
        // No break at all: a character boundary.
        let solid = "词".repeat(CHUNK_BYTES);
        let cut = chunk_cut(solid.as_bytes(), false);
        assert!(cut <= CHUNK_BYTES && solid.is_char_boundary(cut) && cut > CHUNK_BYTES - 3);
        assert_eq!(chunk_cut(b"short", true), 5);
    }

    #[test]
    fn paragraph_breaks_are_blank_lines() {
        assert!(is_paragraph_break("\n\n"));
        assert!(is_paragraph_break(" \r\n \r\n  "));
        assert!(!is_paragraph_break(" \n "));
        assert!(!is_paragraph_break("\n- \n"));
        assert!(!is_paragraph_break("  "));
    }

    #[test]
    fn the_reader_hands_out_the_whole_document_in_order() {
        let text: String = (0..20_000).map(|i| format!("w{i} ")).collect();
        let mut buf = vec![0; CHUNK_BUFFER_BYTES];
        let mut r = ChunkReader::new(text.as_bytes(), &mut buf);
        let mut got = String::new();
        let mut chunks = 0;
        while let Some((offset, chunk)) = r.next_chunk().unwrap() {
            assert_eq!(offset, got.len());
            assert!(chunk.len() <= CHUNK_BYTES);
            got.push_str(chunk);
            chunks += 1;
        }
        assert_eq!(got, text);
        assert!(chunks > text.len() / CHUNK_BYTES);
        let mut bad = text.as_bytes()[..40_000].to_vec();
        bad[30_000] = 0xFF;
        let mut r = ChunkReader::new(&bad[..], &mut buf);
        let err = loop {
            match r.next_chunk() {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, Error::InvalidUtf8 { offset: 30_000 }),
            "{err}"
        );
    }

    #[test]
    fn windows_cover_every_token_once_and_cut_only_where_allowed() {
        let word_starts = [0usize, 3, 4, 9, 10, 11, 12, 20, 21, 22];
        let can_cut = |i: usize| word_starts.contains(&i);
        let mut out = Vec::new();
        windows(25, 8, can_cut, &mut out);
        // Windows of at most 6 tokens, cut where a word starts (9..20 is longer than 6: cut).
        assert_eq!(
            out,
            [(0, 4), (4, 10), (10, 12), (12, 18), (18, 22), (22, 25)]
        );
        windows(0, 8, can_cut, &mut out);
        assert!(out.is_empty());
        // Pieces of words: a b ##c d ##e ##f g, words 0 1 1 2 2 2 3; a cut only where a word
        // starts. 3 per window: (0,3) ends before word 2, (3,6) is word 2 whole, then (6,7).
        let word_ids = [0, 1, 1, 2, 2, 2, 3];
        let word_start = |i: usize| word_ids[i] != word_ids[i - 1];
        windows(7, 5, word_start, &mut out);
        assert_eq!(out, [(0, 3), (3, 6), (6, 7)]);
        // 2 per window: (0,2) would cut word 1 → (0,1); (1,3); word 2 is longer than a window
        // and is cut: (3,5), (5,7).
        windows(7, 4, word_start, &mut out);
        assert_eq!(out, [(0, 1), (1, 3), (3, 5), (5, 7)]);
    }

    /// A small deterministic generator for the table tests (no dependency).
    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    /// One occurrence: key index, start offset, score, single word.
    type Occurrence = (usize, usize, f32, bool);

    fn key_of(k: usize) -> String {
        // Keys 0..6 are single words, the rest two words: "w3", "w7 x".
        if k < 6 {
            format!("w{k}")
        } else {
            format!("w{k} x")
        }
    }

    /// The table's policy written the slow way: a map of every phrase, merged window by window,
    /// cut to `capacity` by rank after each window.
    fn brute_force(windows: &[Vec<Occurrence>], capacity: usize, top_k: usize) -> Vec<Keyword> {
        // key -> (sum, occurrences, first start, single)
        let mut kept: Vec<(String, f32, u32, usize, bool)> = Vec::new();
        let score = |e: &(String, f32, u32, usize, bool)| {
            if e.4 {
                single_word_score(e.1, e.2)
            } else {
                e.1
            }
        };
        for w in windows {
            for &(k, start, score, single) in w {
                let key = key_of(k);
                match kept.iter_mut().find(|e| e.0 == key) {
                    Some(e) => {
                        e.1 += score;
                        e.2 += 1;
                        e.3 = e.3.min(start);
                    }
                    None => kept.push((key, score, 1, start, single)),
                }
            }
            kept.sort_by(|a, b| score(b).total_cmp(&score(a)).then(a.3.cmp(&b.3)));
            kept.truncate(capacity);
        }
        let mut out = Vec::new();
        for e in &kept {
            if out.len() == top_k {
                break;
            }
            push_unless_inside(&mut out, &e.0, e.3, e.3 + e.0.len(), score(e));
        }
        out
    }

    #[test]
    fn the_table_keeps_what_a_brute_force_ranking_keeps() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for case in 0..400 {
            let capacity = 1 + case % 8;
            let keys = 2 + case % 13;
            let n_windows = 1 + (rng.next() % 6) as usize;
            let mut position = 0;
            let windows: Vec<Vec<Occurrence>> = (0..n_windows)
                .map(|_| {
                    (0..(rng.next() % 10) as usize)
                        .map(|_| {
                            let k = (rng.next() % keys as u64) as usize;
                            position += 10;
                            // Scores on a grid of 1/8: sums are exact in f32, so the order of
                            // additions cannot decide a comparison.
                            let score = (rng.next() % 64) as f32 / 8.0;
                            (k, position, score, k < 6)
                        })
                        .collect()
                })
                .collect();
            let mut table = PhraseTable::with_capacity(capacity, 16);
            for w in &windows {
                for &(k, start, score, single) in w {
                    let key = key_of(k);
                    assert!(table.add(&key, &key, start, start + key.len(), score, single));
                }
                table.end_window();
                assert!(table.len() <= capacity);
            }
            let mut got = Vec::new();
            table.top_k(5, &mut got);
            let want = brute_force(&windows, capacity, 5);
            let view = |ks: &[Keyword]| {
                ks.iter()
                    .map(|k| (k.text.clone(), k.start, k.score))
                    .collect::<Vec<_>>()
            };
            assert_eq!(view(&got), view(&want), "case {case}: {windows:?}");
        }
    }

    #[test]
    fn the_table_refuses_what_it_cannot_hold() {
        let mut table = PhraseTable::with_capacity(4, 2);
        assert!(!table.add(&"k".repeat(MAX_KEY_BYTES + 1), "k", 0, 1, 1.0, true));
        assert!(!table.add("k", &"k".repeat(MAX_SURFACE_BYTES + 1), 0, 1, 1.0, true));
        assert!(table.add("a", "a", 0, 1, 1.0, true));
        assert!(table.add("b", "b", 2, 3, 1.0, true));
        // The window's room is full: counted as not added, nothing overwritten.
        assert!(!table.add("c", "c", 4, 5, 1.0, true));
        table.end_window();
        assert_eq!(table.len(), 2);
    }
}
