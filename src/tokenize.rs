//! Stage 1: text → WordPiece tokens, with byte offsets and word ids that map every token back
//! to the input text.

use std::path::Path;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::NormalizerWrapper;
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{
    Model, Token, TokenizerImpl, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{Error, Result};
use crate::unigram::FlatUnigram;

/// A `tokenizers` tokenizer whose model is [`TokenModel`].
type Tokenizer = TokenizerImpl<
    TokenModel,
    NormalizerWrapper,
    PreTokenizerWrapper,
    PostProcessorWrapper,
    DecoderWrapper,
>;

/// The tokenizer's model: a Unigram vocabulary in flat arrays (`unigram.rs`: a twentieth of
/// the memory of `tokenizers`' own), any other model as `tokenizers` reads it.
#[derive(Debug, Clone)]
pub enum TokenModel {
    Unigram(FlatUnigram),
    /// Boxed: a WordPiece or BPE model is three times the size of the flat Unigram inline.
    Other(Box<ModelWrapper>),
}

impl<'de> Deserialize<'de> for TokenModel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        // The model's part of the file only, held once as a value to read its type.
        let value = serde_json::Value::deserialize(deserializer)?;
        let model = if value.get("type").and_then(|t| t.as_str()) == Some("Unigram") {
            TokenModel::Unigram(FlatUnigram::deserialize(value).map_err(serde::de::Error::custom)?)
        } else {
            TokenModel::Other(Box::new(
                ModelWrapper::deserialize(value).map_err(serde::de::Error::custom)?,
            ))
        };
        Ok(model)
    }
}

impl Model for TokenModel {
    type Trainer = TrainerWrapper;

    fn tokenize(&self, sequence: &str) -> tokenizers::Result<Vec<Token>> {
        match self {
            TokenModel::Unigram(m) => m.tokenize(sequence),
            TokenModel::Other(m) => m.tokenize(sequence),
        }
    }

    fn token_to_id(&self, token: &str) -> Option<u32> {
        match self {
            TokenModel::Unigram(m) => m.token_to_id(token),
            TokenModel::Other(m) => m.token_to_id(token),
        }
    }

    fn id_to_token(&self, id: u32) -> Option<String> {
        match self {
            TokenModel::Unigram(m) => m.id_to_token(id),
            TokenModel::Other(m) => m.id_to_token(id),
        }
    }

    fn get_vocab(&self) -> HashMap<String, u32> {
        match self {
            TokenModel::Unigram(m) => m.get_vocab(),
            TokenModel::Other(m) => m.get_vocab(),
        }
    }

    fn get_vocab_size(&self) -> usize {
        match self {
            TokenModel::Unigram(m) => m.get_vocab_size(),
            TokenModel::Other(m) => m.get_vocab_size(),
        }
    }

    fn save(&self, folder: &Path, prefix: Option<&str>) -> tokenizers::Result<Vec<PathBuf>> {
        match self {
            TokenModel::Unigram(m) => m.save(folder, prefix),
            TokenModel::Other(m) => m.save(folder, prefix),
        }
    }

    fn get_trainer(&self) -> TrainerWrapper {
        match self {
            TokenModel::Unigram(m) => m.get_trainer(),
            TokenModel::Other(m) => m.get_trainer(),
        }
    }
}

/// One text, tokenized and cut to `max_seq` tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Token ids, [CLS] … [SEP], at most `max_seq` of them.
    pub ids: Vec<u32>,
    /// Byte range of each token in the input text ((0, 0) for special tokens).
    pub offsets: Vec<(usize, usize)>,
    /// The pre-tokenizer word each token belongs to (None for special tokens).
    pub word_ids: Vec<Option<u32>>,
    /// True when the text had more tokens than fit and the rest was cut.
    pub truncated: bool,
    /// Byte offset in the text where the kept part ends (the text length if nothing was cut).
    pub kept_bytes: usize,
}

impl Tokens {
    /// Room for `n` tokens, reserved once.
    pub fn with_capacity(n: usize) -> Self {
        Tokens {
            ids: Vec::with_capacity(n),
            offsets: Vec::with_capacity(n),
            word_ids: Vec::with_capacity(n),
            truncated: false,
            kept_bytes: 0,
        }
    }

    /// Bytes its buffers reserve.
    pub fn reserved_bytes(&self) -> usize {
        use std::mem::size_of;
        self.ids.capacity() * size_of::<u32>()
            + self.offsets.capacity() * size_of::<(usize, usize)>()
            + self.word_ids.capacity() * size_of::<Option<u32>>()
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Most special tokens a vocabulary may declare ([CLS] [SEP] [PAD] [UNK] [MASK], or <s> </s>
/// <pad> <unk> <mask>, with room to spare).
pub const MAX_SPECIAL_TOKENS: usize = 16;

/// Special token ids of the vocabulary, read from the tokenizer, never hard-coded by name: the
/// tokens it wraps a text in (`[CLS]` … `[SEP]` for BERT, `<s>` … `</s>` for XLM-R) and every
/// token it declares special, plus its unknown token. None of them is ever part of a keyword.
#[derive(Debug, Clone, Copy)]
pub struct SpecialIds {
    /// The token a text starts with.
    pub start: u32,
    /// The token a text ends with.
    pub end: u32,
    /// The token for text the vocabulary does not cover (`[UNK]`, `<unk>`), if it has one.
    pub unk: Option<u32>,
    ids: [u32; MAX_SPECIAL_TOKENS],
    len: usize,
}

impl SpecialIds {
    /// `start`, `end` and the other special ids (at most [`MAX_SPECIAL_TOKENS`] in all).
    pub fn new(start: u32, end: u32, others: &[u32]) -> Option<Self> {
        let mut s = SpecialIds {
            start,
            end,
            unk: None,
            ids: [0; MAX_SPECIAL_TOKENS],
            len: 0,
        };
        for &id in [start, end].iter().chain(others) {
            if !s.contains(id) {
                *s.ids.get_mut(s.len)? = id;
                s.len += 1;
            }
        }
        Some(s)
    }

    pub fn contains(&self, id: u32) -> bool {
        self.ids[..self.len].contains(&id)
    }
}

/// A tokenizer read from `tokenizer.json` (BERT WordPiece, XLM-R Unigram, …), truncating to
/// `max_seq`.
pub struct TextTokenizer {
    inner: Tokenizer,
    special: SpecialIds,
    /// Counted once: tokenizers builds the whole vocabulary map to count it.
    vocab_size: usize,
}

impl TextTokenizer {
    pub fn load(path: &Path, max_seq: usize) -> Result<Self> {
        let load_err = |reason: String| Error::TokenizerLoad {
            path: path.to_path_buf(),
            reason,
        };
        if !crate::files::is_file(path) {
            return Err(load_err("file not found".into()));
        }
        // Tokenizers parallelizes some steps with rayon; one predictable thread is what an edge
        // device wants, and our inputs are single short texts.
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut inner: Tokenizer = match crate::files::embedded(path) {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| e.to_string()),
            None => std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| serde_json::from_slice(&bytes).map_err(|e| e.to_string())),
        }
        .map_err(load_err)?;
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length: max_seq,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| load_err(e.to_string()))?;
        // We pad ourselves into fixed tensors.
        inner.with_padding(None);
        let special = special_ids(&inner).map_err(load_err)?;
        let vocab_size = inner.get_vocab_size(true);
        Ok(TextTokenizer {
            inner,
            special,
            vocab_size,
        })
    }

    pub fn special_ids(&self) -> SpecialIds {
        self.special
    }

    /// Whether the vocabulary is a SentencePiece Unigram one (its model holds more per entry).
    pub fn is_unigram(&self) -> bool {
        matches!(self.inner.get_model(), TokenModel::Unigram(_))
    }

    /// The id of a vocabulary entry (a piece, or an added token).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Token ids run from 0 to this, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// Tokenizes `text` into `out` (its buffers are reused).
    pub fn tokenize_into(&self, text: &str, out: &mut Tokens) -> Result<()> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenize(e.to_string()))?;
        fill(out, &encoding);
        out.truncated = !encoding.get_overflowing().is_empty();
        out.kept_bytes = if out.truncated {
            out.offsets.iter().map(|o| o.1).max().unwrap_or(0)
        } else {
            text.len()
        };
        Ok(())
    }

    /// Tokenizes a chunk of a document whole, without the start and end tokens and without a
    /// cut: the document path ([`crate::document`]) cuts it into windows itself.
    pub fn tokenize_chunk_into(&mut self, text: &str, out: &mut Tokens) -> Result<()> {
        let truncation = self.inner.get_truncation().cloned();
        self.inner
            .with_truncation(None)
            .map_err(|e| Error::Tokenize(e.to_string()))?;
        let encoding = self.inner.encode(text, false);
        self.inner
            .with_truncation(truncation)
            .map_err(|e| Error::Tokenize(e.to_string()))?;
        let encoding = encoding.map_err(|e| Error::Tokenize(e.to_string()))?;
        fill(out, &encoding);
        out.truncated = false;
        out.kept_bytes = text.len();
        Ok(())
    }

    pub fn tokenize(&self, text: &str) -> Result<Tokens> {
        let mut out = Tokens::default();
        self.tokenize_into(text, &mut out)?;
        Ok(out)
    }
}

/// An encoding's ids, offsets and word ids into `out`'s buffers.
fn fill(out: &mut Tokens, encoding: &tokenizers::Encoding) {
    out.ids.clear();
    out.ids.extend_from_slice(encoding.get_ids());
    out.offsets.clear();
    out.offsets.extend_from_slice(encoding.get_offsets());
    out.word_ids.clear();
    out.word_ids.extend_from_slice(encoding.get_word_ids());
}

/// The start and end tokens are what the tokenizer's post-processor wraps an empty text in; the
/// others are the tokens it declares special (the unknown token among them).
fn special_ids(inner: &Tokenizer) -> std::result::Result<SpecialIds, String> {
    let empty = inner.encode("", true).map_err(|e| e.to_string())?;
    let (start, end) = match empty.get_ids() {
        [start, end] => (*start, *end),
        ids => {
            return Err(format!(
                "its post-processor wraps a text in {} tokens, expected a start and an end token \
                 ([CLS] … [SEP] or <s> … </s>)",
                ids.len()
            ))
        }
    };
    let mut others: Vec<u32> = inner
        .get_added_tokens_decoder()
        .iter()
        .filter(|(_, t)| t.special)
        .map(|(id, _)| *id)
        .collect();
    others.sort_unstable();
    // A WordPiece vocabulary may leave its unknown token out of the declared ones.
    if let TokenModel::Other(model) = inner.get_model() {
        if let ModelWrapper::WordPiece(m) = model.as_ref() {
            others.extend(inner.token_to_id(&m.unk_token));
        }
    }
    let mut special = SpecialIds::new(start, end, &others)
        .ok_or_else(|| format!("it declares more than {MAX_SPECIAL_TOKENS} special tokens"))?;
    // The unknown token: named by a WordPiece or BPE model; for the others (Unigram, whose
    // unknown id is not public) the special token that a character no vocabulary covers (a
    // private-use code point, …) becomes. A byte-fallback vocabulary has none.
    let named = match inner.get_model() {
        TokenModel::Other(model) => match model.as_ref() {
            ModelWrapper::WordPiece(m) => Some(inner.token_to_id(&m.unk_token)),
            ModelWrapper::BPE(m) => Some(m.unk_token.as_deref().and_then(|t| inner.token_to_id(t))),
            _ => None,
        },
        TokenModel::Unigram(_) => None,
    };
    special.unk = match named {
        Some(unk) => unk,
        None => inner
            .encode(UNCOVERED_PROBE, false)
            .map_err(|e| e.to_string())?
            .get_ids()
            .iter()
            .copied()
            .find(|&id| special.contains(id)),
    };
    Ok(special)
}

/// Characters in no vocabulary's training text (private-use code points, a CJK extension B
/// ideograph, Tifinagh, a mathematical letter): a normalizer may drop one, a vocabulary may
/// still hold another, but not all.
const UNCOVERED_PROBE: &str = "\u{E000} \u{F0000} \u{20000} \u{2D63} \u{1D518}";

#[cfg(test)]
mod tests {
    use super::*;

    /// An XLM-R-style tokenizer.json: Unigram, Metaspace, <s> … </s>; `wrap` false leaves out
    /// the post-processor.
    fn unigram_file(name: &str, wrap: bool) -> std::path::PathBuf {
        let special = |id: u32, s: &str| {
            format!(
                r#"{{"id":{id},"content":"{s}","single_word":false,"lstrip":false,"rstrip":false,"normalized":false,"special":true}}"#
            )
        };
        let post = if wrap {
            r#"{"type":"TemplateProcessing",
                "single":[{"SpecialToken":{"id":"<s>","type_id":0}},{"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"</s>","type_id":0}}],
                "pair":[{"Sequence":{"id":"A","type_id":0}},{"Sequence":{"id":"B","type_id":0}}],
                "special_tokens":{"<s>":{"id":"<s>","ids":[0],"tokens":["<s>"]},"</s>":{"id":"</s>","ids":[2],"tokens":["</s>"]}}}"#
        } else {
            "null"
        };
        let json = format!(
            r#"{{"version":"1.0","truncation":null,"padding":null,
            "added_tokens":[{},{},{},{}],
            "normalizer":null,
            "pre_tokenizer":{{"type":"Metaspace","replacement":"▁","prepend_scheme":"always","split":true}},
            "post_processor":{post},
            "decoder":null,
            "model":{{"type":"Unigram","unk_id":3,"byte_fallback":false,
              "vocab":[["<s>",0.0],["<pad>",0.0],["</s>",0.0],["<unk>",0.0],["▁the",-1.0],["▁token",-2.0],["izer",-2.0],["▁works",-2.0],["▁",-3.0]]}}}}"#,
            special(0, "<s>"),
            special(1, "<pad>"),
            special(2, "</s>"),
            special(3, "<unk>"),
        );
        let path =
            std::env::temp_dir().join(format!("attnprompt-{}-{name}.json", std::process::id()));
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn special_tokens_of_a_unigram_vocabulary_are_read_not_named() {
        let path = unigram_file("unigram", true);
        let tok = TextTokenizer::load(&path, 16).unwrap();
        std::fs::remove_file(&path).unwrap();
        let s = tok.special_ids();
        assert_eq!((s.start, s.end), (0, 2));
        assert!([0, 1, 2, 3].iter().all(|&id| s.contains(id)));
        assert!(!(4..9).any(|id| s.contains(id)));
        assert_eq!(s.unk, Some(3)); // "unk_id" in the file above
        let t = tok.tokenize("the tokenizer works").unwrap();
        assert_eq!(t.ids, [0, 4, 5, 6, 7, 2]);
        // Metaspace offsets include the space before a word (keywords.rs trims it).
        assert_eq!(t.offsets[2], (3, 9));
    }

    #[test]
    fn a_tokenizer_that_does_not_wrap_texts_is_refused_at_load() {
        let path = unigram_file("unwrapped", false);
        let err = TextTokenizer::load(&path, 16).err().unwrap().to_string();
        std::fs::remove_file(&path).unwrap();
        assert!(err.contains("expected a start and an end token"), "{err}");
    }

    #[test]
    fn special_tokens_of_the_shipped_wordpiece_vocabulary() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/all-MiniLM-L6-v2-int8/tokenizer.json");
        let s = TextTokenizer::load(&path, 16).unwrap().special_ids();
        // bert-base-uncased: [PAD] 0, [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103.
        assert_eq!((s.start, s.end), (101, 102));
        assert!([0, 100, 101, 102, 103].iter().all(|&id| s.contains(id)));
        assert!(!s.contains(1996)); // "the"
        assert_eq!(s.unk, Some(100)); // "unk_token": "[UNK]", id 100 in its vocab
    }

    #[test]
    fn unknown_token_of_the_shipped_unigram_vocabulary() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("models/multilingual-e5-small-zh-en-int8/tokenizer.json");
        let s = TextTokenizer::load(&path, 16).unwrap().special_ids();
        // Its tokenizer.json: <s> 0, </s> 2, "unk_id": 3.
        assert_eq!((s.start, s.end, s.unk), (0, 2, Some(3)));
    }
}
