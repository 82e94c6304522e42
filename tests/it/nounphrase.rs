//! Noun-phrase candidates: the chunk grammar against NLTK's RegexpParser on gold tags
//! (tests/fixtures/np-chunks-nltk.json, scripts/make-nltk-fixtures), and the shipped tagger's
//! accuracy on the EWT test split (../shared/datasets, beside the clone).

use std::path::{Path, PathBuf};

use attnprompt::nounphrase::{chunk, class_of, GRAMMAR, MAX_NOUN_PHRASE_WORDS};
use attnprompt::stopwords::is_stopword;
use attnprompt::tagger::ewt::{read_conllu, to_pipeline_words};
use attnprompt::tagger::Tagger;
use attnprompt::tokenize::TextTokenizer;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn chunks_match_nltk_regexp_parser_on_gold_tags() {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/np-chunks-nltk.json")).unwrap();
    assert_eq!(f["grammar"], GRAMMAR);
    assert_eq!(f["max_words"], MAX_NOUN_PHRASE_WORDS);
    let mut n_chunks = 0;
    for s in f["sentences"].as_array().unwrap() {
        let words: Vec<&str> = s["words"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        let tags: Vec<&str> = s["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        let classes: Vec<_> = tags.iter().map(|t| class_of(t)).collect();
        let got = chunk(
            &classes,
            |i| is_stopword(&words[i].to_lowercase()),
            MAX_NOUN_PHRASE_WORDS,
        );
        let expected: Vec<(usize, usize)> = s["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c[0].as_u64().unwrap() as usize,
                    c[1].as_u64().unwrap() as usize,
                )
            })
            .collect();
        assert_eq!(got, expected, "{words:?} {tags:?}");
        n_chunks += expected.len();
    }
    assert!(n_chunks > 1000, "{n_chunks}");
}

fn ewt_dir() -> PathBuf {
    let dir = root().join("../shared/datasets/ud-english-ewt");
    assert!(
        dir.join("en_ewt-ud-test.conllu").is_file(),
        "UD English EWT not found at {}: the tests need ../shared/datasets beside the clone",
        dir.display()
    );
    dir
}

/// Measured when the shipped weights were trained (models/pos-tagger-ewt/README.md): 93.80%.
const ACCURACY_FLOOR: f64 = 93.5;

#[test]
fn shipped_tagger_accuracy_on_the_ewt_test_split() {
    let tagger = Tagger::load(&root().join("models/pos-tagger-ewt")).unwrap();
    let tok = TextTokenizer::load(
        &root().join("models/all-MiniLM-L6-v2-int8/tokenizer.json"),
        512,
    )
    .unwrap();
    let sentences = read_conllu(&ewt_dir().join("en_ewt-ud-test.conllu")).unwrap();
    let (mut right, mut total) = (0usize, 0usize);
    let mut out = Vec::new();
    for s in &sentences {
        let (words, gold) = to_pipeline_words(s, &tok).expect("test sentences fit in 512 tokens");
        let w: Vec<&str> = words.iter().map(String::as_str).collect();
        tagger.tag(&w, &mut out);
        right += out
            .iter()
            .zip(&gold)
            .filter(|(t, g)| tagger.tag_name(**t) == g.as_str())
            .count();
        total += w.len();
    }
    let acc = 100.0 * right as f64 / total as f64;
    assert!(total > 27_000, "{total} words");
    assert!(
        acc >= ACCURACY_FLOOR,
        "accuracy {acc:.2}% < {ACCURACY_FLOOR}%"
    );
}

/// The generator on real text with the shipped tagger: a hyphenated compound stays one word of
/// its phrase, participles modify nouns, generic modifiers are left out, and a text without a
/// noun phrase falls back to content-word runs instead of having no candidate.
#[test]
fn generator_keeps_compounds_whole_and_falls_back_without_nouns() {
    use attnprompt::keywords::{words, CandidateGenerator};
    use attnprompt::nounphrase::NounPhrases;
    use std::sync::Arc;

    let tagger = Arc::new(Tagger::load(&root().join("models/pos-tagger-ewt")).unwrap());
    let tok = TextTokenizer::load(
        &root().join("models/all-MiniLM-L6-v2-int8/tokenizer.json"),
        512,
    )
    .unwrap();
    let gen = NounPhrases::new(tagger);
    let phrases = |text: &str| {
        let t = tok.tokenize(text).unwrap();
        let mut w = Vec::new();
        words(text, &t, &vec![0.0; t.len()], tok.special_ids(), &mut w);
        let mut c = Vec::new();
        gen.candidates(text, &w, &mut c);
        c.iter()
            .map(|c| text[w[c.first].start..w[c.first + c.len - 1].end].to_string())
            .collect::<Vec<_>>()
    };
    let got = phrases("Multi-round protocols are bound to be effective.");
    assert!(
        got.contains(&"Multi-round protocols".to_string()),
        "{got:?}"
    );
    assert!(got.iter().all(|p| !p.starts_with("round")), "{got:?}");
    // a compound ending in a participle modifies the noun after it; so does a past participle
    let got = phrases("The computer-based patient record was kept. Linearized models are used.");
    assert!(
        got.contains(&"computer-based patient record".to_string()),
        "{got:?}"
    );
    assert!(got.contains(&"Linearized models".to_string()), "{got:?}");
    // leading generic modifiers are left out, whatever the tagger makes of them (`novel` is a
    // noun to EWT), and other modifiers stay
    let got = phrases(
        "Several new methods improve a novel image compression scheme. They beat previous \
         linear models.",
    );
    for want in ["methods", "image compression scheme", "linear models"] {
        assert!(got.contains(&want.to_string()), "{want}: {got:?}");
    }
    assert!(
        got.iter()
            .all(|p| !["Several", "new", "novel", "previous"]
                .contains(&p.split(' ').next().unwrap())),
        "{got:?}"
    );
    let got = phrases("run it fast");
    assert!(!got.is_empty(), "fallback to content-word runs");
}
