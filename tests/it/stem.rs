//! src/stem.rs against NLTK's PorterStemmer() (NLTK_EXTENSIONS), word by word: the table was
//! made by NLTK itself (scripts/make-nltk-fixtures).

use attnprompt::stem::stem;

#[test]
fn every_row_of_the_nltk_table() {
    let table = include_str!("../fixtures/porter-nltk.tsv");
    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in table.lines().filter(|l| !l.starts_with('#')) {
        let (word, expected) = line.split_once('\t').expect("word<TAB>stem");
        rows += 1;
        let got = stem(word);
        if got != expected {
            wrong.push(format!("{word}: {got} (nltk {expected})"));
        }
    }
    assert!(rows > 5000, "table has only {rows} rows");
    assert!(
        wrong.is_empty(),
        "{} of {rows} differ: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(30)]
    );
    for must in [
        "autofocus\tautofocu",
        "torus\ttoru",
        "lens\tlen",
        "dying\tdie",
        "sky\tsky",
    ] {
        assert!(table.lines().any(|l| l == must), "table lacks {must}");
    }
}
