//! Bad models and bad texts give typed errors, never a panic or a silent wrong answer.

use std::path::{Path, PathBuf};

use attnprompt::config::MAX_TEXT_BYTES;
use attnprompt::{Config, Error, Pipeline};

use crate::common::{config, shipped_model_dir as shipped, shipped_pipeline};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch model directory under target/ holding `model_bytes` and the shipped tokenizer.
fn model_dir_with(name: &str, model_bytes: &[u8]) -> PathBuf {
    let dir = root().join("target/test-models").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.onnx"), model_bytes).unwrap();
    std::fs::copy(shipped().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    dir
}

/// Loads with `auto`: these models may be float ones, where an explicit int8 is an error.
fn load(dir: &Path) -> Result<Pipeline, Error> {
    Pipeline::load(Config::new(dir))
}

#[test]
fn missing_model_directory() {
    let err = load(Path::new("/nonexistent/attnprompt-model"))
        .err()
        .unwrap();
    assert!(matches!(err, Error::ModelDirMissing { .. }), "{err}");
}

#[test]
fn corrupt_model_file() {
    let dir = model_dir_with("corrupt", b"this is not an ONNX protobuf \x00\xff\x13");
    let err = load(&dir).err().unwrap();
    assert!(matches!(err, Error::ModelLoad { .. }), "{err}");
    assert!(err.to_string().contains("model.onnx"), "{err}");
}

#[test]
fn truncated_model_file() {
    let bytes = std::fs::read(shipped().join("model.onnx")).unwrap();
    let dir = model_dir_with("truncated", &bytes[..bytes.len() / 3]);
    let err = load(&dir).err().unwrap();
    assert!(matches!(err, Error::ModelLoad { .. }), "{err}");
}

#[test]
fn model_without_attention_is_named_as_such() {
    let bytes = std::fs::read(root().join("tests/fixtures/no-attention.onnx")).unwrap();
    let dir = model_dir_with("no-attention", &bytes);
    let err = load(&dir).err().unwrap();
    assert!(matches!(err, Error::NoAttention { .. }), "{err}");
    assert!(err.to_string().contains("no attention outputs"), "{err}");
}

#[test]
fn missing_tokenizer() {
    let dir = root().join("target/test-models/no-tokenizer");
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("tokenizer.json"));
    std::fs::copy(shipped().join("model.onnx"), dir.join("model.onnx")).unwrap();
    let err = load(&dir).err().unwrap();
    assert!(matches!(err, Error::TokenizerLoad { .. }), "{err}");
}

#[test]
fn bad_texts_are_input_errors_and_the_pipeline_goes_on() {
    let mut p = shipped_pipeline();
    type Expected = fn(&Error) -> bool;
    let cases: [(&[u8], Expected); 7] = [
        (b"", |e| matches!(e, Error::EmptyText)),
        (b" \t \n", |e| matches!(e, Error::EmptyText)),
        (b"caf\xe9", |e| {
            matches!(e, Error::InvalidUtf8 { offset: 3 })
        }),
        (b"the of and . , !", |e| matches!(e, Error::NoKeywords)),
        // Tifinagh: not in the English vocabulary, a [UNK] per word; said before inference.
        (
            "ⵜⴰⵎⴰⵣⵉⵖⵜ ⵜⴰⵎⴰⵣⵉⵖⵜ".as_bytes(),
            |e| matches!(e, Error::NotCovered { unknown: 2 }),
        ),
        // Unknown words and punctuation only are still "not covered".
        (
            "ⵜⴰⵎⴰⵣⵉⵖⵜ, ⵜⴰⵎⴰⵣⵉⵖⵜ!".as_bytes(),
            |e| matches!(e, Error::NotCovered { .. }),
        ),
        (
            &[b'a'; MAX_TEXT_BYTES + 1],
            |e| matches!(e, Error::TextTooLong { len, max } if *len == MAX_TEXT_BYTES + 1 && *max == MAX_TEXT_BYTES),
        ),
    ];
    for (text, expected) in cases {
        let err = p.run_bytes(text).unwrap_err();
        assert!(
            expected(&err),
            "{:?}: {err}",
            String::from_utf8_lossy(&text[..text.len().min(20)])
        );
        assert!(err.is_input_error());
    }
    // One known word among unknown ones is enough to answer.
    let out = p.run("ⵜⴰⵎⴰⵣⵉⵖⵜ sensors ⵜⴰⵎⴰⵣⵉⵖⵜ").unwrap();
    assert_eq!(out.keywords[0].text, "sensors");
    // after all that, the same pipeline still works
    let out = p
        .run("Tract plans the model once and runs it many times.")
        .unwrap();
    assert!(!out.keywords.is_empty());
}

#[test]
fn keywords_point_back_into_the_text() {
    let mut p = shipped_pipeline();
    let text = "Ångström-level résumé parsing in Zürich: naïve Bayes vs. BERT attention.";
    let out = p.run(text).unwrap();
    for k in &out.keywords {
        assert_eq!(&text[k.start..k.end], k.text);
    }
}

#[test]
fn missing_or_corrupt_tagger_is_a_load_error_and_stopwords_need_none() {
    let bad = root().join("target/test-models/bad-tagger");
    std::fs::create_dir_all(&bad).unwrap();
    let mut cfg = config(shipped());
    cfg.tagger_dir = Some(root().join("target/test-models/no-such-tagger"));
    let err = Pipeline::load(cfg.clone()).err().unwrap();
    assert!(matches!(err, Error::Io { .. }), "{err}");

    std::fs::write(bad.join("tagger.bin"), b"APTAGGR1 but then nothing useful").unwrap();
    cfg.tagger_dir = Some(bad);
    let err = Pipeline::load(cfg.clone()).err().unwrap();
    assert!(matches!(err, Error::TaggerLoad { .. }), "{err}");

    cfg.candidates = attnprompt::Candidates::Stopwords;
    let mut p = Pipeline::load(cfg).unwrap();
    assert!(!p
        .run("Tract runs ONNX models.")
        .unwrap()
        .keywords
        .is_empty());
}

/// A tokenizer whose ids run past the model's embedding table (the multilingual tokenizer, 41,505
/// pieces, beside the English model's 30,522 rows) is refused at load, before the model is
/// parsed: those ids would index outside the table at run time.
#[test]
fn tokenizer_from_another_vocabulary_is_refused_at_load() {
    let dir = root().join("target/test-models/other-vocabulary");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(shipped().join("model.onnx"), dir.join("model.onnx")).unwrap();
    std::fs::copy(
        root().join("models/multilingual-e5-small-zh-en-int8/tokenizer.json"),
        dir.join("tokenizer.json"),
    )
    .unwrap();
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(
            err,
            Error::VocabularyMismatch {
                tokenizer_vocab: 41_505,
                model_rows: 30_522,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("different vocabularies"), "{err}");
}

/// A model file that cannot be read: a directory in its place, and (unless the tests run as
/// root, who reads any file) a file without read permission.
#[test]
fn unreadable_model_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = root().join("target/test-models/unreadable");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("model.onnx")).unwrap();
    std::fs::copy(shipped().join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let err = load(&dir).err().unwrap();
    assert!(
        matches!(err, Error::Io { .. } | Error::ModelLoad { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("model.onnx"), "{err}");

    if unsafe { libc::geteuid() } != 0 {
        std::fs::remove_dir(dir.join("model.onnx")).unwrap();
        std::fs::copy(shipped().join("model.onnx"), dir.join("model.onnx")).unwrap();
        std::fs::set_permissions(
            dir.join("model.onnx"),
            std::fs::Permissions::from_mode(0o000),
        )
        .unwrap();
        let err = load(&dir).err().unwrap();
        assert!(err.to_string().contains("ermission denied"), "{err}");
    }
}
