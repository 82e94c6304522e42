//! The flat Unigram model (src/unigram.rs) against `tokenizers`' own Unigram on the same
//! `tokenizer.json`: the same ids and offsets for every text of the Chinese fixtures, the
//! Chinese keyword set, the fuzz corpora, Inspec abstracts, and strings made to reach the
//! unknown-character and fusing paths.

use std::path::{Path, PathBuf};

use attnprompt::tokenize::{TextTokenizer, Tokens};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        // Simplified and traditional Chinese, full-width punctuation, mixed scripts.
        "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能。",
        "我喜欢阅读",
        "BERT模型在树莓派上运行",
        "樹莓派是一種信用卡大小的單板電腦，常用於教育和物聯網項目。",
        "（注意）：「引号」、《书名》——破折号……省略号！？；",
        "ＦＵＬＬ　ＷＩＤＴＨ　ｌａｔｉｎ　１２３",
        // Characters no piece covers, alone, in runs (fused) and between known ones.
        "\u{E000}",
        "\u{E000}\u{E001}\u{F0000}模型\u{2D63}\u{2D63} text \u{1D518}\u{1D518}\u{1D518}",
        "ⵣⵣⵣ ⵣ ⵣⵣ",
        "emoji 🧪🧫 and 𠀀𠀁 ideographs of extension B",
        "",
        " ",
        "   leading and trailing spaces   ",
        "tabs\tand\nnew lines\r\nand\u{00A0}no-break spaces",
        "Ünïcödé àccents, ß, Æ, ﬁ ligature, ½ fractions, Ⅻ numerals",
        "a",
        "模",
    ]
    .map(String::from)
    .to_vec();
    let fixture = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(root().join("tests/fixtures").join(name)).unwrap(),
        )
        .unwrap()
    };
    for name in ["e5-reference.json", "zh-segmentation.json"] {
        for case in fixture(name)["cases"].as_array().unwrap() {
            texts.push(case["text"].as_str().unwrap().to_string());
        }
    }
    let lines = |path: &Path, take: usize| -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .take(take)
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    texts.extend(lines(&root().join("eval/zh-keywords.jsonl"), usize::MAX));
    texts.extend(lines(&root().join("../shared/datasets/inspec.jsonl"), 100));
    for dir in ["fuzz/corpus/text_to_prompt", "fuzz/corpus/template"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap().flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path()) {
                texts.push(text);
            }
        }
    }
    texts
}

#[test]
fn flat_unigram_tokenizes_as_tokenizers_does() {
    let path = root().join("models/multilingual-e5-small-zh-en-int8/tokenizer.json");
    let reference = tokenizers::Tokenizer::from_file(&path).unwrap();
    assert!(matches!(
        reference.get_model(),
        tokenizers::ModelWrapper::Unigram(_)
    ));
    let mut ours = TextTokenizer::load(&path, 512).unwrap();
    assert!(ours.is_unigram());
    let mut got = Tokens::default();
    let texts = texts();
    assert!(texts.len() > 150, "{} texts", texts.len());
    let (mut tokens, mut unknown) = (0, 0);
    let unk = ours.special_ids().unk;
    for text in &texts {
        let want = reference.encode(text.as_str(), false).unwrap();
        ours.tokenize_chunk_into(text, &mut got).unwrap();
        assert_eq!(got.ids, want.get_ids(), "ids of {text:?}");
        assert_eq!(got.offsets, want.get_offsets(), "offsets of {text:?}");
        tokens += got.ids.len();
        unknown += got.ids.iter().filter(|&&id| Some(id) == unk).count();
    }
    eprintln!("{} texts, {tokens} tokens, {unknown} unknown", texts.len());
    // The unknown path was taken, fused and not.
    assert!(unknown >= 5, "{unknown} unknown tokens");
    // Lookups both ways agree on every piece.
    let vocab = reference.get_vocab(false);
    for (piece, id) in &vocab {
        assert_eq!(ours.token_to_id(piece), Some(*id), "{piece:?}");
    }
    assert_eq!(ours.vocab_size(), reference.get_vocab_size(true));
}
