//! Before the flow: which language a text is in, and the pipeline that runs it. English runs on
//! the English model with noun-phrase candidates and the `en` template; Chinese on the
//! multilingual model with jieba candidates and the `zh` template (each unless given). With
//! `Lang::Auto` the language is decided per text from its script, and a pipeline is loaded the
//! first time a text needs it; both together stay within the memory budget.

use std::path::PathBuf;

use crate::config::{resolve_model_dir_for, Candidates, Config, Lang};
use crate::error::{Error, Result};
use crate::keywords::is_han;
use crate::memory::format_size;
use crate::pipeline::{Output, Pipeline};
use crate::ranking::check_bytes;

/// The language of `text` by its script: Chinese when Han characters are at least a quarter
/// as many as its other letters (a character carries about what a short English word does),
/// so `BERT模型在树莓派上运行` is Chinese and an English text quoting one Chinese word is not.
pub fn detect(text: &str) -> Lang {
    let (mut han, mut other) = (0usize, 0usize);
    for c in text.chars() {
        if is_han(c) {
            han += 1;
        } else if c.is_alphabetic() {
            other += 1;
        }
    }
    if han > 0 && 4 * han >= other {
        Lang::Zh
    } else {
        Lang::En
    }
}

/// The settings of one language's pipeline, from the shared ones.
pub struct LangSettings {
    /// The configuration every language starts from (`model_dir` is replaced per language).
    pub base: Config,
    /// `--model`: then every language runs on it.
    pub model: Option<PathBuf>,
    /// Whether `--template` was given (else each language takes its own).
    pub template_given: bool,
    /// Whether `--candidates` was given (else each language takes its own).
    pub candidates_given: bool,
}

impl LangSettings {
    pub fn config(&self, lang: Lang) -> Result<Config> {
        let mut cfg = self.base.clone();
        cfg.model_dir = resolve_model_dir_for(self.model.as_deref(), lang)?;
        if lang == Lang::Zh {
            if !self.template_given {
                cfg.template = "zh".into();
            }
            if !self.candidates_given {
                cfg.candidates = Candidates::Jieba;
            }
        }
        Ok(cfg)
    }
}

/// One pipeline per language, loaded when first needed.
pub struct Pipelines {
    lang: Lang,
    settings: LangSettings,
    en: Option<Pipeline>,
    zh: Option<Pipeline>,
    /// A load that failed, kept so every later text of that language gets the same error
    /// without paying for the load again.
    failed: [Option<String>; 2],
}

impl Pipelines {
    pub fn new(lang: Lang, settings: LangSettings) -> Self {
        Pipelines {
            lang,
            settings,
            en: None,
            zh: None,
            failed: [None, None],
        }
    }

    /// The language a text runs as.
    pub fn lang_of(&self, text: &str) -> Lang {
        match self.lang {
            Lang::Auto => detect(text),
            l => l,
        }
    }

    /// The pipeline for `lang` (`En` or `Zh`), loading it if needed. A second pipeline gets the
    /// memory budget the first left.
    pub fn get(&mut self, lang: Lang) -> Result<&mut Pipeline> {
        let slot = usize::from(lang == Lang::Zh);
        if let Some(reason) = &self.failed[slot] {
            return Err(Error::LanguagePipeline(reason.clone()));
        }
        let (this, other) = if lang == Lang::Zh {
            (&mut self.zh, &self.en)
        } else {
            (&mut self.en, &self.zh)
        };
        if this.is_none() {
            let mut shared = None;
            let loaded = self.settings.config(lang).and_then(|mut cfg| {
                if let (Some(budget), Some(o)) = (cfg.memory_budget, other) {
                    let used = o.memory_plan().total();
                    cfg.memory_budget = Some(budget.saturating_sub(used));
                    shared = Some((budget, used));
                }
                log::info!(
                    "loading {} for {} text",
                    cfg.model_dir.display(),
                    lang.name()
                );
                Pipeline::load(cfg)
            });
            if let Err(e) = loaded {
                let reason = match shared {
                    Some((budget, used)) => format!(
                        "the {} pipeline does not fit in what the other language's pipeline \
                         ({}) left of the memory budget of {}: {e}",
                        lang.name(),
                        format_size(used),
                        format_size(budget)
                    ),
                    None => format!("the {} pipeline could not be loaded: {e}", lang.name()),
                };
                self.failed[slot] = Some(reason.clone());
                return Err(Error::LanguagePipeline(reason));
            }
            *this = loaded.ok();
        }
        Ok(this.as_mut().expect("loaded above"))
    }

    /// Checks raw bytes, picks the language and runs them. The language is returned with the
    /// result (`None` when the bytes were refused before a language could be told).
    pub fn run_bytes(&mut self, bytes: &[u8]) -> (Option<Lang>, Result<Output>) {
        let text = match check_bytes(bytes) {
            Ok(t) => t,
            Err(e) => return (None, Err(e)),
        };
        let lang = self.lang_of(text);
        let result = self.get(lang).and_then(|p| p.run(text));
        (Some(lang), result)
    }

    /// Reads a document's first chunk ([`crate::document::CHUNK_BYTES`]) from `reader` and
    /// decides its language from it (`lang_of`): the pipeline can then be loaded for the
    /// language the document is in, and only that one.
    pub fn document_head(&self, reader: &mut impl std::io::Read) -> Result<(Vec<u8>, Lang)> {
        let mut head = vec![0u8; crate::document::CHUNK_BYTES];
        let mut filled = 0;
        while filled < head.len() {
            match reader.read(&mut head[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::ReadDocument(e.to_string())),
            }
        }
        head.truncate(filled);
        // A character cut at the end of the look-ahead does not change the script.
        let valid = match std::str::from_utf8(&head) {
            Ok(s) => s,
            Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or(""),
        };
        let lang = self.lang_of(valid);
        Ok((head, lang))
    }

    /// Runs a whole document through the pipeline of `lang`: `head` (from
    /// [`Pipelines::document_head`]), then the rest of `reader`.
    pub fn run_document(
        &mut self,
        lang: Lang,
        head: &[u8],
        reader: impl std::io::Read,
    ) -> Result<Output> {
        self.get(lang)
            .and_then(|p| p.run_document(std::io::Read::chain(head, reader)))
    }

    /// The pipeline that ran a text of `lang`, if loaded.
    pub fn loaded(&self, lang: Lang) -> Option<&Pipeline> {
        if lang == Lang::Zh {
            self.zh.as_ref()
        } else {
            self.en.as_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_decides_the_language() {
        assert_eq!(detect("我喜欢阅读"), Lang::Zh);
        assert_eq!(detect("BERT模型在树莓派上运行"), Lang::Zh);
        assert_eq!(detect("樹莓派可以離線運行語言模型。"), Lang::Zh);
        assert_eq!(detect("The Raspberry Pi 5 runs BERT offline."), Lang::En);
        assert_eq!(
            detect("The word 模型 means model in Chinese, as every dictionary says."),
            Lang::En
        );
        assert_eq!(detect("12345 !!"), Lang::En);
        // Japanese kana are not Han: only the kanji count.
        assert_eq!(detect("ひらがなとカタカナ"), Lang::En);
    }
}
