//! The English stopword list, kept in one place: `stopwords.txt` beside this file, read by the
//! Rust ranking here and by the Python reference script that makes the test fixtures.

use std::sync::OnceLock;

const STOPWORDS_TXT: &str = include_str!("stopwords.txt");

fn sorted() -> &'static [&'static str] {
    static LIST: OnceLock<Vec<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        let mut list: Vec<&str> = STOPWORDS_TXT
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        list.sort_unstable();
        list
    })
}

/// True if `lowercase_word` (already lowercased) is a stopword.
pub fn is_stopword(lowercase_word: &str) -> bool {
    sorted().binary_search(&lowercase_word).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_is_nltk_english() {
        assert_eq!(sorted().len(), 179);
        for w in ["the", "is", "with", "what", "don", "t", "s"] {
            assert!(is_stopword(w), "{w}");
        }
        for w in ["bert", "inference", "raspberry", "The"] {
            assert!(!is_stopword(w), "{w}");
        }
    }
}
