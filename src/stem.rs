//! The Porter stemmer exactly as NLTK's `PorterStemmer()` in its default `NLTK_EXTENSIONS`
//! mode, which is what the keyphrase benchmarks stemmed their gold phrases with (`autofocus →
//! autofocu`, `lens → len`). It differs from the 1980 paper and from Snowball/Porter2: an
//! irregular-forms table, `ies`/`ied` on 4-letter words, `y → i` only after a consonant, the
//! two-letter `*o` case, and the `alli`, `fulli`, `logi` rules.
//!
//! The port follows NLTK 3.9's `nltk/stem/porter.py` rule by rule (same rule order, same "the
//! first suffix that matches decides" semantics); `tests/fixtures/porter-nltk.tsv`, made by
//! `scripts/make-nltk-fixtures` with NLTK itself, checks it word by word.

/// Words NLTK maps by table before any rule (matched on the word as given, before lowercasing).
const IRREGULAR: [(&str, &str); 16] = [
    ("sky", "sky"),
    ("skies", "sky"),
    ("dying", "die"),
    ("lying", "lie"),
    ("tying", "tie"),
    ("news", "news"),
    ("innings", "inning"),
    ("inning", "inning"),
    ("outings", "outing"),
    ("outing", "outing"),
    ("cannings", "canning"),
    ("canning", "canning"),
    ("howe", "howe"),
    ("proceed", "proceed"),
    ("exceed", "exceed"),
    ("succeed", "succeed"),
];

/// Stems one word (lowercased first, as NLTK does by default).
pub fn stem(word: &str) -> String {
    if let Some((_, s)) = IRREGULAR.iter().find(|(w, _)| *w == word) {
        return (*s).to_string();
    }
    let mut w: Vec<char> = word.chars().flat_map(char::to_lowercase).collect();
    // NLTK checks the length of the word as given, before lowercasing.
    if word.chars().count() <= 2 {
        return w.into_iter().collect();
    }
    step1a(&mut w);
    step1b(&mut w);
    step1c(&mut w);
    step2(&mut w);
    step3(&mut w);
    step4(&mut w);
    step5a(&mut w);
    step5b(&mut w);
    w.into_iter().collect()
}

/// Stems every whitespace-separated word of `phrase` (lowercased) and joins them with single
/// spaces: the normal form the evaluation protocol compares.
pub fn stem_phrase(phrase: &str) -> String {
    let mut out = String::with_capacity(phrase.len());
    for (i, w) in phrase.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&stem(&w.to_lowercase()));
    }
    out
}

fn is_vowel_letter(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u')
}

fn is_consonant(w: &[char], i: usize) -> bool {
    if is_vowel_letter(w[i]) {
        return false;
    }
    if w[i] == 'y' {
        return i == 0 || !is_consonant(w, i - 1);
    }
    true
}

/// m in [C](VC)^m[V]: the number of vowel→consonant transitions.
fn measure(w: &[char]) -> usize {
    (1..w.len())
        .filter(|&i| !is_consonant(w, i - 1) && is_consonant(w, i))
        .count()
}

fn contains_vowel(w: &[char]) -> bool {
    (0..w.len()).any(|i| !is_consonant(w, i))
}

fn ends_double_consonant(w: &[char]) -> bool {
    let n = w.len();
    n >= 2 && w[n - 1] == w[n - 2] && is_consonant(w, n - 1)
}

/// *o: ends consonant-vowel-consonant, the last not w, x or y; NLTK also accepts a two-letter
/// vowel-consonant word.
fn ends_cvc(w: &[char]) -> bool {
    let n = w.len();
    (n >= 3
        && is_consonant(w, n - 3)
        && !is_consonant(w, n - 2)
        && is_consonant(w, n - 1)
        && !matches!(w[n - 1], 'w' | 'x' | 'y'))
        || (n == 2 && !is_consonant(w, 0) && is_consonant(w, 1))
}

fn ends_with(w: &[char], suffix: &str) -> bool {
    let n = suffix.chars().count();
    w.len() >= n && w[w.len() - n..].iter().copied().eq(suffix.chars())
}

fn replace_suffix(w: &mut Vec<char>, suffix_len: usize, replacement: &str) {
    w.truncate(w.len() - suffix_len);
    w.extend(replacement.chars());
}

type Cond = fn(&[char]) -> bool;

fn m_gt0(stem: &[char]) -> bool {
    measure(stem) > 0
}

fn m_gt1(stem: &[char]) -> bool {
    measure(stem) > 1
}

/// NLTK's `_apply_rule_list`: the first rule whose suffix matches decides; if its condition on
/// the remaining stem fails, the word is left as it is.
fn apply_rules(w: &mut Vec<char>, rules: &[(&str, &str, Option<Cond>)]) {
    for &(suffix, replacement, cond) in rules {
        if ends_with(w, suffix) {
            let n = suffix.chars().count();
            if cond.is_none_or(|c| c(&w[..w.len() - n])) {
                replace_suffix(w, n, replacement);
            }
            return;
        }
    }
}

fn step1a(w: &mut Vec<char>) {
    if ends_with(w, "ies") && w.len() == 4 {
        replace_suffix(w, 3, "ie");
        return;
    }
    apply_rules(
        w,
        &[
            ("sses", "ss", None),
            ("ies", "i", None),
            ("ss", "ss", None),
            ("s", "", None),
        ],
    );
}

fn step1b(w: &mut Vec<char>) {
    if ends_with(w, "ied") {
        let r = if w.len() == 4 { "ie" } else { "i" };
        replace_suffix(w, 3, r);
        return;
    }
    if ends_with(w, "eed") {
        if measure(&w[..w.len() - 3]) > 0 {
            replace_suffix(w, 3, "ee");
        }
        return;
    }
    let mut cut = None;
    for suffix in ["ed", "ing"] {
        if ends_with(w, suffix) {
            let n = suffix.len();
            if contains_vowel(&w[..w.len() - n]) {
                cut = Some(n);
                break;
            }
        }
    }
    let Some(n) = cut else { return };
    w.truncate(w.len() - n);
    // The rule list of NLTK after `ed`/`ing` went: at, bl, iz, *d, then the empty suffix.
    for (suffix, replacement) in [("at", "ate"), ("bl", "ble"), ("iz", "ize")] {
        if ends_with(w, suffix) {
            replace_suffix(w, suffix.len(), replacement);
            return;
        }
    }
    if ends_double_consonant(w) {
        if !matches!(w[w.len() - 1], 'l' | 's' | 'z') {
            w.pop();
        }
        return;
    }
    if measure(w) == 1 && ends_cvc(w) {
        w.push('e');
    }
}

fn step1c(w: &mut [char]) {
    // NLTK: y → i only after a consonant, and not when that consonant is the whole stem.
    if ends_with(w, "y") {
        let stem = &w[..w.len() - 1];
        if stem.len() > 1 && is_consonant(stem, stem.len() - 1) {
            let n = w.len();
            w[n - 1] = 'i';
        }
    }
}

fn step2(w: &mut Vec<char>) {
    if ends_with(w, "alli") && measure(&w[..w.len() - 4]) > 0 {
        replace_suffix(w, 4, "al");
        step2(w);
        return;
    }
    // `logi` looks at the word minus `ogi` (NLTK_EXTENSIONS), so it is handled here, in its
    // place at the end of the list.
    let rules: [(&str, &str, Option<Cond>); 21] = [
        ("ational", "ate", Some(m_gt0)),
        ("tional", "tion", Some(m_gt0)),
        ("enci", "ence", Some(m_gt0)),
        ("anci", "ance", Some(m_gt0)),
        ("izer", "ize", Some(m_gt0)),
        ("bli", "ble", Some(m_gt0)),
        ("alli", "al", Some(m_gt0)),
        ("entli", "ent", Some(m_gt0)),
        ("eli", "e", Some(m_gt0)),
        ("ousli", "ous", Some(m_gt0)),
        ("ization", "ize", Some(m_gt0)),
        ("ation", "ate", Some(m_gt0)),
        ("ator", "ate", Some(m_gt0)),
        ("alism", "al", Some(m_gt0)),
        ("iveness", "ive", Some(m_gt0)),
        ("fulness", "ful", Some(m_gt0)),
        ("ousness", "ous", Some(m_gt0)),
        ("aliti", "al", Some(m_gt0)),
        ("iviti", "ive", Some(m_gt0)),
        ("biliti", "ble", Some(m_gt0)),
        ("fulli", "ful", Some(m_gt0)),
    ];
    if rules.iter().any(|r| ends_with(w, r.0)) {
        apply_rules(w, &rules);
    } else if ends_with(w, "logi") && measure(&w[..w.len() - 3]) > 0 {
        replace_suffix(w, 4, "log");
    }
}

fn step3(w: &mut Vec<char>) {
    apply_rules(
        w,
        &[
            ("icate", "ic", Some(m_gt0)),
            ("ative", "", Some(m_gt0)),
            ("alize", "al", Some(m_gt0)),
            ("iciti", "ic", Some(m_gt0)),
            ("ical", "ic", Some(m_gt0)),
            ("ful", "", Some(m_gt0)),
            ("ness", "", Some(m_gt0)),
        ],
    );
}

fn m_gt1_st(stem: &[char]) -> bool {
    measure(stem) > 1 && matches!(stem.last(), Some('s' | 't'))
}

fn step4(w: &mut Vec<char>) {
    apply_rules(
        w,
        &[
            ("al", "", Some(m_gt1)),
            ("ance", "", Some(m_gt1)),
            ("ence", "", Some(m_gt1)),
            ("er", "", Some(m_gt1)),
            ("ic", "", Some(m_gt1)),
            ("able", "", Some(m_gt1)),
            ("ible", "", Some(m_gt1)),
            ("ant", "", Some(m_gt1)),
            ("ement", "", Some(m_gt1)),
            ("ment", "", Some(m_gt1)),
            ("ent", "", Some(m_gt1)),
            ("ion", "", Some(m_gt1_st)),
            ("ou", "", Some(m_gt1)),
            ("ism", "", Some(m_gt1)),
            ("ate", "", Some(m_gt1)),
            ("iti", "", Some(m_gt1)),
            ("ous", "", Some(m_gt1)),
            ("ive", "", Some(m_gt1)),
            ("ize", "", Some(m_gt1)),
        ],
    );
}

fn step5a(w: &mut Vec<char>) {
    if ends_with(w, "e") {
        let stem = &w[..w.len() - 1];
        let m = measure(stem);
        if m > 1 || (m == 1 && !ends_cvc(stem)) {
            w.pop();
        }
    }
}

fn step5b(w: &mut Vec<char>) {
    if ends_with(w, "ll") && measure(&w[..w.len() - 1]) > 1 {
        w.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases the issue names, with NLTK's answers (also rows of the committed table).
    #[test]
    fn nltk_mode_cases() {
        for (w, s) in [
            ("autofocus", "autofocu"),
            ("torus", "toru"),
            ("lens", "len"),
            ("generously", "gener"),
            ("sky", "sky"),
            ("dying", "die"),
            ("happy", "happi"),
            ("enjoy", "enjoy"),
            ("ties", "tie"),
            ("died", "die"),
            ("caresses", "caress"),
            ("hopping", "hop"),
            ("controll", "control"),
        ] {
            assert_eq!(stem(w), s, "{w}");
        }
    }

    #[test]
    fn phrase_is_lowercased_stemmed_and_single_spaced() {
        assert_eq!(
            stem_phrase("Templated  Zeolite\tsynthesis"),
            "templat zeolit synthesi"
        );
    }
}
