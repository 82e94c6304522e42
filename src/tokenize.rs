//! Stage 1: text → WordPiece tokens, with byte offsets and word ids that map every token back
//! to the input text.

use std::path::Path;

use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Error, Result};

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
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Special token ids of the vocabulary: never keywords.
#[derive(Debug, Clone, Copy)]
pub struct SpecialIds {
    pub cls: u32,
    pub sep: u32,
    pub pad: u32,
    pub unk: u32,
}

impl SpecialIds {
    pub fn contains(&self, id: u32) -> bool {
        id == self.cls || id == self.sep || id == self.pad || id == self.unk
    }
}

/// A BERT WordPiece tokenizer read from `tokenizer.json`, truncating to `max_seq`.
pub struct TextTokenizer {
    inner: Tokenizer,
    special: SpecialIds,
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
        let mut inner = match crate::files::embedded(path) {
            Some(bytes) => Tokenizer::from_bytes(bytes),
            None => Tokenizer::from_file(path),
        }
        .map_err(|e| load_err(e.to_string()))?;
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
        let id = |token: &str| {
            inner
                .token_to_id(token)
                .ok_or_else(|| load_err(format!("vocabulary has no {token} token")))
        };
        let special = SpecialIds {
            cls: id("[CLS]")?,
            sep: id("[SEP]")?,
            pad: id("[PAD]")?,
            unk: id("[UNK]")?,
        };
        Ok(TextTokenizer { inner, special })
    }

    pub fn special_ids(&self) -> SpecialIds {
        self.special
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Tokenizes `text` into `out` (its buffers are reused).
    pub fn tokenize_into(&self, text: &str, out: &mut Tokens) -> Result<()> {
        let encoding = self
            .inner
            .encode(text, true)
            .map_err(|e| Error::Tokenize(e.to_string()))?;
        out.ids.clear();
        out.ids.extend_from_slice(encoding.get_ids());
        out.offsets.clear();
        out.offsets.extend_from_slice(encoding.get_offsets());
        out.word_ids.clear();
        out.word_ids.extend_from_slice(encoding.get_word_ids());
        out.truncated = !encoding.get_overflowing().is_empty();
        out.kept_bytes = if out.truncated {
            out.offsets.iter().map(|o| o.1).max().unwrap_or(0)
        } else {
            text.len()
        };
        Ok(())
    }

    pub fn tokenize(&self, text: &str) -> Result<Tokens> {
        let mut out = Tokens::default();
        self.tokenize_into(text, &mut out)?;
        Ok(out)
    }
}
