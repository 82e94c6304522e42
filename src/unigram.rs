//! A SentencePiece Unigram model in flat arrays, for `tokenize.rs`.
//!
//! `tokenizers`' own Unigram keeps a byte trie with a hash map in every node, a map from piece
//! to id and a cache of the words it has seen: about 570 bytes per piece, 23.7 MiB for the
//! Chinese model's 41,505 pieces, a fifth of that pipeline's memory. Here the pieces are one
//! byte string with offsets, and a list of ids sorted by piece answers both the lookup and the
//! prefix search by binary search: under 1 MiB, no cache, nothing that grows with the text.
//!
//! The segmentation is `tokenizers`' `Unigram::encode_optimized` step for step (the same
//! Viterbi pass, the same tie-breaking: a prefix is taken only when strictly better than a
//! shorter one, the same score and fusing for unknown characters, byte fallback);
//! `tests/it/unigram.rs` checks the ids against it on every text of the Chinese fixtures and
//! datasets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use tokenizers::Token;

/// What `tokenizers` takes off the lowest piece score for an unknown character.
const UNK_PENALTY: f64 = 10.0;

/// The pieces, their scores and the unknown token of a Unigram vocabulary.
#[derive(Debug, Clone)]
pub struct FlatUnigram {
    /// Every piece's bytes, in id order.
    bytes: Vec<u8>,
    /// Piece `id` is `bytes[ends[id - 1]..ends[id]]` (from 0 for id 0).
    ends: Vec<u32>,
    scores: Vec<f64>,
    /// Ids sorted by their piece; of equal pieces only the last id (as `tokenizers` keeps it).
    sorted: Vec<u32>,
    min_score: f64,
    unk_id: Option<u32>,
    byte_fallback: bool,
}

impl FlatUnigram {
    pub fn new(
        vocab: &[(String, f64)],
        unk_id: Option<usize>,
        byte_fallback: bool,
    ) -> Result<Self, String> {
        if let Some(unk) = unk_id {
            if unk >= vocab.len() {
                return Err(format!(
                    "unk_id {unk} past the vocabulary of {} pieces",
                    vocab.len()
                ));
            }
        }
        let total: usize = vocab.iter().map(|(p, _)| p.len()).sum();
        if total > u32::MAX as usize || vocab.len() > u32::MAX as usize {
            return Err("vocabulary too large".into());
        }
        let mut bytes = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(vocab.len());
        let mut scores = Vec::with_capacity(vocab.len());
        let mut min_score = f64::INFINITY;
        for (piece, score) in vocab {
            bytes.extend_from_slice(piece.as_bytes());
            ends.push(bytes.len() as u32);
            scores.push(*score);
            if *score < min_score {
                min_score = *score;
            }
        }
        let mut model = FlatUnigram {
            bytes,
            ends,
            scores,
            sorted: Vec::new(),
            min_score,
            unk_id: unk_id.map(|u| u as u32),
            byte_fallback,
        };
        let mut sorted: Vec<u32> = (0..vocab.len() as u32).collect();
        sorted.sort_by(|&a, &b| model.piece(a).cmp(model.piece(b)).then(a.cmp(&b)));
        // Of equal pieces keep the last id: `tokenizers` maps a piece to the last id it has.
        sorted.dedup_by(|later, earlier| {
            let same = model.piece(*later) == model.piece(*earlier);
            if same {
                *earlier = *later;
            }
            same
        });
        sorted.shrink_to_fit();
        model.sorted = sorted;
        Ok(model)
    }

    fn piece(&self, id: u32) -> &[u8] {
        let id = id as usize;
        let start = if id == 0 {
            0
        } else {
            self.ends[id - 1] as usize
        };
        &self.bytes[start..self.ends[id] as usize]
    }

    fn id_of(&self, piece: &[u8]) -> Option<u32> {
        self.sorted
            .binary_search_by(|&id| self.piece(id).cmp(piece))
            .ok()
            .map(|i| self.sorted[i])
    }

    /// Bytes this model holds.
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 4
            + self.scores.capacity() * 8
            + self.sorted.capacity() * 4
    }

    /// Calls `found(len, id)` for every piece that starts `text`, shortest first (the order of
    /// `tokenizers`' trie search).
    fn prefixes(&self, text: &[u8], mut found: impl FnMut(usize, u32)) {
        // The pieces that start with `text[..len]` are a run of `sorted`; each longer prefix
        // narrows the run, and an empty run ends the search.
        let (mut lo, mut hi) = (0, self.sorted.len());
        for len in 1..=text.len() {
            let prefix = &text[..len];
            let run = &self.sorted[lo..hi];
            let first = run.partition_point(|&id| self.piece(id) < prefix);
            let past = run.partition_point(|&id| {
                let p = self.piece(id);
                p < prefix || p.starts_with(prefix)
            });
            if first == past {
                return;
            }
            let (new_lo, new_hi) = (lo + first, lo + past);
            if self.piece(self.sorted[new_lo]) == prefix {
                found(len, self.sorted[new_lo]);
            }
            (lo, hi) = (new_lo, new_hi);
        }
    }

    /// The best segmentation of `text`: `(start, end, id)` per token, unknown runs fused into
    /// one `unk_id` token as `tokenizers` fuses them.
    fn encode(&self, text: &str) -> Result<Vec<(usize, usize, Option<u32>)>, String> {
        #[derive(Clone, Copy)]
        struct Best {
            id: u32,
            score: f64,
            starts_at: Option<usize>,
        }
        let size = text.len();
        let unk_score = self.min_score - UNK_PENALTY;
        let mut best = vec![
            Best {
                id: 0,
                score: 0.0,
                starts_at: None,
            };
            size + 1
        ];
        let bytes = text.as_bytes();
        let mut start = 0;
        while start < size {
            let till_here = best[start].score;
            let char_len = text[start..].chars().next().map_or(1, char::len_utf8);
            let mut has_single = false;
            self.prefixes(&bytes[start..], |len, id| {
                let node = &mut best[start + len];
                let score = self.scores[id as usize] + till_here;
                if node.starts_at.is_none() || score > node.score {
                    *node = Best {
                        id,
                        score,
                        starts_at: Some(start),
                    };
                }
                has_single |= len == char_len;
            });
            if !has_single {
                let unk = self
                    .unk_id
                    .ok_or("an unknown character and no unk_id in the vocabulary")?;
                let node = &mut best[start + char_len];
                let score = unk_score + till_here;
                if node.starts_at.is_none() || score > node.score {
                    *node = Best {
                        id: unk,
                        score,
                        starts_at: Some(start),
                    };
                }
            }
            start += char_len;
        }
        // Back from the end; runs of unknown characters fused into one token.
        let mut out: Vec<(usize, usize, Option<u32>)> = Vec::new();
        let mut end = size;
        while end > 0 {
            let node = best[end];
            let start = node.starts_at.expect("every end reached");
            let unknown = Some(node.id) == self.unk_id;
            match out.last_mut() {
                Some(last) if unknown && last.2.is_none() => last.0 = start,
                _ => out.push((start, end, (!unknown).then_some(node.id))),
            }
            end = start;
        }
        out.reverse();
        Ok(out)
    }
}

impl tokenizers::Model for FlatUnigram {
    type Trainer = tokenizers::models::TrainerWrapper;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        let mut tokens = Vec::new();
        for (start, end, id) in self.encode(sequence)? {
            let value = &sequence[start..end];
            // A fused unknown run is looked up as a whole, as `tokenizers` looks it up.
            let id = id.or_else(|| self.id_of(value.as_bytes()));
            let id = match id {
                Some(id) => id,
                None => {
                    if self.byte_fallback {
                        let bytes: Option<Vec<u32>> = value
                            .bytes()
                            .map(|b| self.id_of(format!("<0x{b:02X}>").as_bytes()))
                            .collect();
                        if let Some(bytes) = bytes {
                            for (b, id) in value.bytes().zip(bytes) {
                                tokens.push(Token::new(id, format!("<0x{b:02X}>"), (start, end)));
                            }
                            continue;
                        }
                    }
                    self.unk_id
                        .ok_or("an unknown character and no unk_id in the vocabulary")?
                }
            };
            tokens.push(Token::new(id, value.to_string(), (start, end)));
        }
        Ok(tokens)
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        self.id_of(token.as_bytes())
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        ((id as usize) < self.ends.len())
            .then(|| String::from_utf8_lossy(self.piece(id)).into_owned())
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        self.sorted
            .iter()
            .map(|&id| (String::from_utf8_lossy(self.piece(id)).into_owned(), id))
            .collect()
    }

    fn get_vocab_size(&self) -> usize {
        self.ends.len()
    }

    fn save(&self, _folder: &Path, _prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        Err("this tokenizer is read-only".into())
    }

    fn get_trainer(&self) -> Self::Trainer {
        tokenizers::models::TrainerWrapper::UnigramTrainer(Default::default())
    }
}

impl<'de> Deserialize<'de> for FlatUnigram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Stored {
            #[serde(rename = "type")]
            kind: String,
            vocab: Vec<(String, f64)>,
            unk_id: Option<usize>,
            #[serde(default)]
            byte_fallback: bool,
        }
        let s = Stored::deserialize(deserializer)?;
        if s.kind != "Unigram" {
            return Err(serde::de::Error::custom(format!(
                "a {} model, not Unigram",
                s.kind
            )));
        }
        FlatUnigram::new(&s.vocab, s.unk_id, s.byte_fallback).map_err(serde::de::Error::custom)
    }
}
