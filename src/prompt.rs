//! Stage 5: keywords → prompt, rendered from a template into a fixed-capacity buffer.
//!
//! Templates hold `{keyword}` (the top keyword), `{keywords}` (the top-k, joined by ", ") and
//! `{text}`; `{{` and `}}` are literal braces. A template is parsed once, at load, so a typo is
//! an error before any text is processed.

use crate::error::{Error, Result};
use crate::keywords::Keyword;

/// Capacity of the prompt buffer in bytes. A prompt that would not fit is an error, never cut.
pub const PROMPT_CAPACITY: usize = 4096;
/// Capacity of a template, in bytes.
pub const TEMPLATE_CAPACITY: usize = 1024;
/// Separator of `{keywords}`.
pub const KEYWORD_SEPARATOR: &str = ", ";

pub type PromptBuf = heapless::String<PROMPT_CAPACITY>;

/// Built-in templates by name.
pub const BUILTIN_TEMPLATES: [(&str, &str); 2] = [
    ("en", "Answer the following question: what is {keyword}?"),
    ("zh", "请回答以下问题：什么是{keyword}？"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    /// Byte range of literal text in the template source.
    Literal(usize, usize),
    Keyword,
    Keywords,
    Text,
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    source: heapless::String<TEMPLATE_CAPACITY>,
    pieces: heapless::Vec<Piece, 64>,
}

impl Template {
    /// A built-in name (`en`, `zh`) or the template text itself.
    pub fn from_name_or_text(spec: &str) -> Result<Self> {
        match BUILTIN_TEMPLATES.iter().find(|(name, _)| *name == spec) {
            Some((_, text)) => Template::parse(text),
            None => Template::parse(spec),
        }
    }

    pub fn parse(template: &str) -> Result<Self> {
        if template.trim().is_empty() {
            return Err(Error::Template("the template is empty".into()));
        }
        let mut source = heapless::String::new();
        source.push_str(template).map_err(|_| {
            Error::Template(format!(
                "the template is {} bytes; templates hold at most {TEMPLATE_CAPACITY}",
                template.len()
            ))
        })?;
        let mut pieces = heapless::Vec::new();
        let too_many = || Error::Template("the template has more than 64 parts".into());
        let bytes = template.as_bytes();
        let mut literal_start = 0;
        let mut i = 0;
        // Literal text is kept as ranges; escaped braces end a literal and start a new one
        // after the first brace, so `{{` renders as `{`.
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    pieces
                        .push(Piece::Literal(literal_start, i + 1))
                        .map_err(|_| too_many())?;
                    i += 2;
                    literal_start = i;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    pieces
                        .push(Piece::Literal(literal_start, i + 1))
                        .map_err(|_| too_many())?;
                    i += 2;
                    literal_start = i;
                }
                b'{' => {
                    let close = template[i..].find('}').ok_or_else(|| {
                        Error::Template(format!(
                            "unclosed `{{` at byte {i} (write `{{{{` for a literal brace)"
                        ))
                    })?;
                    let name = &template[i + 1..i + close];
                    let piece = match name {
                        "keyword" => Piece::Keyword,
                        "keywords" => Piece::Keywords,
                        "text" => Piece::Text,
                        other => {
                            return Err(Error::Template(format!(
                                "unknown placeholder `{{{other}}}` (known: {{keyword}}, {{keywords}}, {{text}})"
                            )))
                        }
                    };
                    pieces
                        .push(Piece::Literal(literal_start, i))
                        .map_err(|_| too_many())?;
                    pieces.push(piece).map_err(|_| too_many())?;
                    i += close + 1;
                    literal_start = i;
                }
                b'}' => {
                    return Err(Error::Template(format!(
                        "unmatched `}}` at byte {i} (write `}}}}` for a literal brace)"
                    )))
                }
                _ => i += 1,
            }
        }
        pieces
            .push(Piece::Literal(literal_start, bytes.len()))
            .map_err(|_| too_many())?;
        Ok(Template { source, pieces })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether it has a `{text}` placeholder (a document read in chunks cannot fill one).
    pub fn uses_text(&self) -> bool {
        self.pieces.contains(&Piece::Text)
    }

    /// Renders into `out` (cleared first). `keywords` must not be empty.
    pub fn render(&self, keywords: &[Keyword], text: &str, out: &mut PromptBuf) -> Result<()> {
        out.clear();
        let needed = self.rendered_len(keywords, text);
        if needed > PROMPT_CAPACITY {
            return Err(Error::PromptTooLong {
                needed,
                capacity: PROMPT_CAPACITY,
            });
        }
        // The length was checked above, so no push below can fail.
        let mut push = |s: &str| out.push_str(s).expect("length checked");
        // A keyword as one line: its words joined by single spaces (a phrase of a document may
        // wrap across a line break). Never longer than the keyword, so the check above holds.
        let push_keyword = |k: &Keyword, push: &mut dyn FnMut(&str)| {
            for (i, word) in k.text.split_whitespace().enumerate() {
                if i > 0 {
                    push(" ");
                }
                push(word);
            }
        };
        for piece in &self.pieces {
            match *piece {
                Piece::Literal(a, b) => push(&self.source[a..b]),
                Piece::Keyword => {
                    if let Some(k) = keywords.first() {
                        push_keyword(k, &mut push);
                    }
                }
                Piece::Keywords => {
                    for (i, k) in keywords.iter().enumerate() {
                        if i > 0 {
                            push(KEYWORD_SEPARATOR);
                        }
                        push_keyword(k, &mut push);
                    }
                }
                Piece::Text => push(text),
            }
        }
        Ok(())
    }

    fn rendered_len(&self, keywords: &[Keyword], text: &str) -> usize {
        self.pieces
            .iter()
            .map(|piece| match *piece {
                Piece::Literal(a, b) => b - a,
                Piece::Keyword => keywords.first().map_or(0, |k| k.text.len()),
                Piece::Keywords => {
                    keywords.iter().map(|k| k.text.len()).sum::<usize>()
                        + KEYWORD_SEPARATOR.len() * keywords.len().saturating_sub(1)
                }
                Piece::Text => text.len(),
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(text: &str) -> Keyword {
        Keyword {
            text: text.into(),
            start: 0,
            end: text.len(),
            score: 1.0,
        }
    }

    fn render(template: &str, keywords: &[Keyword], text: &str) -> Result<String> {
        let t = Template::from_name_or_text(template)?;
        let mut out = PromptBuf::new();
        t.render(keywords, text, &mut out)?;
        Ok(out.as_str().to_string())
    }

    #[test]
    fn builtins() {
        let k = [kw("BERT inference"), kw("tract")];
        assert_eq!(
            render("en", &k, "t").unwrap(),
            "Answer the following question: what is BERT inference?"
        );
        assert_eq!(
            render("zh", &k, "t").unwrap(),
            "请回答以下问题：什么是BERT inference？"
        );
    }

    #[test]
    fn all_placeholders_and_escapes() {
        let k = [kw("a"), kw("b c"), kw("d")];
        assert_eq!(
            render("{{{keyword}}} [{keywords}] <{text}> }}", &k, "T").unwrap(),
            "{a} [a, b c, d] <T> }"
        );
    }

    #[test]
    fn bad_templates_are_clear_errors() {
        let e = render("what is {keywrd}?", &[kw("a")], "").unwrap_err();
        assert!(
            e.to_string().contains("unknown placeholder `{keywrd}`"),
            "{e}"
        );
        let e = render("what is {keyword", &[kw("a")], "").unwrap_err();
        assert!(e.to_string().contains("unclosed"), "{e}");
        let e = render("a } b", &[kw("a")], "").unwrap_err();
        assert!(e.to_string().contains("unmatched"), "{e}");
        assert!(render("  ", &[kw("a")], "").is_err());
        let long = "x".repeat(TEMPLATE_CAPACITY + 1);
        let e = render(&long, &[kw("a")], "").unwrap_err();
        assert!(e.to_string().contains("at most 1024"), "{e}");
    }

    #[test]
    fn prompt_over_capacity_is_an_error_not_a_cut() {
        let text = "y".repeat(PROMPT_CAPACITY);
        let e = render("Summarise: {text}", &[kw("a")], &text).unwrap_err();
        match e {
            Error::PromptTooLong { needed, capacity } => {
                assert_eq!(needed, PROMPT_CAPACITY + "Summarise: ".len());
                assert_eq!(capacity, PROMPT_CAPACITY);
            }
            other => panic!("{other}"),
        }
        // exactly at capacity fits
        let text = "y".repeat(PROMPT_CAPACITY - 1);
        assert_eq!(
            render("{text}!", &[kw("a")], &text).unwrap().len(),
            PROMPT_CAPACITY
        );
    }
}
