//! Chinese: jieba-rs against Python jieba (tests/fixtures/zh-segmentation.json,
//! scripts/make_zh_fixtures.py), the multilingual model against the package it was made from
//! and onnxruntime (tests/fixtures/e5-reference.json, scripts/make_model_e5.py), and the whole
//! path from a Chinese text to a Chinese prompt.

use std::path::PathBuf;

use attnprompt::candidates::chinese::ChineseCandidates;
use attnprompt::config::{Lang, Layers, Strategy, CHINESE_MODEL_NAME};
use attnprompt::encoder::{Encoder, EncoderSpec};
use attnprompt::lang::{LangSettings, Pipelines};
use attnprompt::tokenize::TextTokenizer;
use attnprompt::{scores, Config, Precision};
use serde_json::Value;

use crate::common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> Value {
    let path = root().join("tests/fixtures").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn zh_model_dir() -> PathBuf {
    root().join("models").join(CHINESE_MODEL_NAME)
}

/// jieba-rs without its default features, on the shipped dictionary, cuts words where Python
/// jieba cuts them on the same dictionary, except that it keeps a run of ASCII letters and
/// digits as one word (`4GB`, Python: `4` `GB`); it tags every dictionary word with the
/// dictionary's tag (Python's part-of-speech mode differs on `位`, `很`); and it tags a Han
/// word it does not know `x`, where Python guesses a tag with its part-of-speech HMM, which
/// jieba-rs ships only with its default features (and their C dependency, zstd).
#[test]
fn segmentation_and_tags_follow_python_jieba_and_the_dictionary() {
    let dict_dir = root().join("models/jieba");
    let dict = std::fs::read_to_string(dict_dir.join("dict.txt")).unwrap();
    let tag_of: std::collections::HashMap<&str, &str> = dict
        .lines()
        .filter_map(|l| {
            let mut f = l.split(' ');
            Some((f.next()?, f.nth(1)?))
        })
        .collect();
    let zh = ChineseCandidates::load(&dict_dir).unwrap();
    let fx = fixture("zh-segmentation.json");
    let alnum = |w: &str| !w.is_empty() && w.chars().all(|c| c.is_ascii_alphanumeric());
    for case in fx["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        // Python's word spans, adjacent ASCII letter-digit words merged
        let mut want: Vec<(usize, usize)> = Vec::new();
        let mut prev_alnum = false;
        for w in case["words"].as_array().unwrap() {
            let (word, start, end) = (
                w[0].as_str().unwrap(),
                w[2].as_u64().unwrap() as usize,
                w[3].as_u64().unwrap() as usize,
            );
            match want.last_mut() {
                Some(last) if prev_alnum && alnum(word) && last.1 == start => last.1 = end,
                _ => want.push((start, end)),
            }
            prev_alnum = alnum(word);
        }
        let ours = zh.tag(text);
        let spans: Vec<(usize, usize)> = ours.iter().map(|t| (t.byte_start, t.byte_end)).collect();
        assert_eq!(spans, want, "{text}");
        for t in &ours {
            match tag_of.get(t.word) {
                Some(tag) => assert_eq!(t.tag, *tag, "{text}: {}", t.word),
                None if t.word.chars().any(attnprompt::keywords::is_han) => {
                    assert_eq!(t.tag, "x", "{text}: {}", t.word)
                }
                None => {}
            }
        }
    }
}

/// Each reference case's token ids and the received attention of the last layer that tract
/// computes for them with the multilingual model in `precision`.
fn last_layer_received(precision: Precision) -> Vec<(serde_json::Value, Vec<u32>, Vec<f32>)> {
    let dir = zh_model_dir();
    let spec = EncoderSpec {
        max_seq: 128,
        threads: 1,
        precision,
        layers: Some(Layers::Last),
        keep_model_outputs: false,
        precision_reason: None,
        load_budget: None,
        vocab_size: None,
        cache_dir: None,
        int8_products: None,
    };
    let mut encoder = Encoder::load(&dir.join("model.onnx"), &spec).unwrap();
    let last = encoder.facts().layers - 1;
    let mut scratch = Vec::new();
    let fx = fixture("e5-reference.json");
    let mut out = Vec::new();
    for case in fx["cases"].as_array().unwrap() {
        let ids: Vec<u32> = case["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let run = encoder.run(&ids).unwrap();
        let mut got = Vec::new();
        scores::token_scores(
            &run,
            ids.len(),
            Strategy::Received,
            &[last],
            &mut got,
            &mut scratch,
        )
        .unwrap();
        out.push((case.clone(), ids, got));
    }
    out
}

/// A fixture's numbers as f32.
fn floats(v: &serde_json::Value) -> impl Iterator<Item = f32> + '_ {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
}

/// The tokenizer.json made from the package gives the package's own token ids, and tract's f32
/// form gives the attention onnxruntime gives on the same file.
#[test]
fn multilingual_model_matches_the_package_and_onnxruntime() {
    let tok = TextTokenizer::load(&zh_model_dir().join("tokenizer.json"), 128).unwrap();
    let mut worst = 0f32;
    for (case, ids, got) in last_layer_received(Precision::F32) {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.tokenize(text).unwrap().ids, ids, "{text}");
        for (g, w) in got.iter().zip(floats(&case["received_last_layer_f32"])) {
            worst = worst.max((g - w).abs());
        }
    }
    // measured 7.6e-6 (x86_64, 2026-12-03); onnxruntime's own fusions move these by 0.013
    assert!(
        worst <= 1e-4,
        "last-layer received attention differs by {worst}"
    );
}

/// The int8 form (the shipped weights as they are) against onnxruntime on the same file: tract's
/// int8 attention is on average at least as close to the f32 reference as onnxruntime's int8
/// run is, and it is int8 (its quantization shows; the f32 form agrees within 1e-4, the test
/// above). The mean over every token of the four texts, not the largest difference: the
/// engines round the dynamic quantization of each activation differently, twelve layers carry
/// a flip, and one token's attention moves by up to 0.23 on one CPU and 0.12 on another. The
/// largest differences are printed. Measured, mean |tract int8 - f32| against onnxruntime
/// int8's 0.0427: x86_64 AMD EPYC (AVX-512 VNNI) 0.0254, Cortex-A72 and A76 (qemu) 0.0293,
/// Cortex-A15 (qemu) 0.0287 (2026-12-05).
#[test]
fn multilingual_model_int8_is_as_close_to_f32_as_onnxruntime_int8() {
    let (mut tract_to_f32, mut ort_to_f32, mut tract_to_ort) = (0f32, 0f32, 0f32);
    let (mut mean_tract, mut mean_ort, mut tokens) = (0f64, 0f64, 0usize);
    for (case, _, got) in last_layer_received(Precision::Int8) {
        let int8 = floats(&case["received_last_layer_int8"]);
        let f32 = floats(&case["received_last_layer_f32"]);
        assert_eq!(
            got.len(),
            case["received_last_layer_int8"].as_array().unwrap().len()
        );
        for ((g, i), f) in got.iter().zip(int8).zip(f32) {
            tract_to_f32 = tract_to_f32.max((g - f).abs());
            ort_to_f32 = ort_to_f32.max((i - f).abs());
            tract_to_ort = tract_to_ort.max((g - i).abs());
            mean_tract += (g - f).abs() as f64;
            mean_ort += (i - f).abs() as f64;
            tokens += 1;
        }
    }
    let (mean_tract, mean_ort) = (mean_tract / tokens as f64, mean_ort / tokens as f64);
    eprintln!(
        "int8 to f32, mean (largest): tract {mean_tract:.4} ({tract_to_f32}), onnxruntime \
         {mean_ort:.4} ({ort_to_f32}); tract to onnxruntime int8, largest {tract_to_ort}"
    );
    assert!(
        (1e-3..=mean_ort).contains(&mean_tract),
        "tract int8 differs from the f32 reference by {mean_tract} on average; onnxruntime \
         int8 by {mean_ort}"
    );
}

fn pipelines(lang: Lang) -> Pipelines {
    let mut base = Config::new(PathBuf::new());
    base.precision = common::test_precision();
    Pipelines::new(
        lang,
        LangSettings {
            base,
            model: None,
            template_given: false,
            candidates_given: false,
        },
    )
}

/// A Chinese text gets whole jieba words (never a piece of one) in a Chinese prompt; a mixed
/// text gets a term in both scripts.
#[test]
fn chinese_text_gets_whole_words_and_a_chinese_prompt() {
    let seg = fixture("zh-segmentation.json");
    let mut p = pipelines(Lang::Auto);
    for case in seg["cases"].as_array().unwrap().iter().take(3) {
        let text = case["text"].as_str().unwrap();
        let bounds: Vec<usize> = case["words"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| {
                [
                    w[2].as_u64().unwrap() as usize,
                    w[3].as_u64().unwrap() as usize,
                ]
            })
            .collect();
        let (lang, out) = p.run_bytes(text.as_bytes());
        let out = out.unwrap();
        assert_eq!(lang, Some(Lang::Zh));
        assert!(
            out.prompt.starts_with("请回答以下问题：什么是"),
            "{}",
            out.prompt
        );
        assert!(out.prompt.ends_with('？'), "{}", out.prompt);
        assert!(!out.keywords.is_empty());
        for k in &out.keywords {
            assert!(
                bounds.contains(&k.start) && bounds.contains(&k.end),
                "{text}: keyword {:?} is not made of whole words",
                k.text
            );
            // a lone character is a keyword only where jieba tags it a noun
            if k.text.chars().count() == 1 {
                let w = case["words"].as_array().unwrap().iter().find(|w| {
                    w[2].as_u64() == Some(k.start as u64) && w[3].as_u64() == Some(k.end as u64)
                });
                assert!(
                    w.is_some_and(|w| w[1].as_str().unwrap().starts_with('n')),
                    "{text}: {:?}",
                    k.text
                );
            }
        }
        if text.starts_with("BERT") {
            assert!(
                out.keywords.iter().any(|k| k.text == "BERT模型"),
                "{:?}",
                out.keywords
            );
        }
    }
}

/// The candidate rules on jieba's words: runs `<a|b>*<noun>+` and their sub-runs ending in a
/// noun, a one-character noun suffix joined to the word before it and never alone, verbs and
/// function words left out, content words as the fallback of a text without nouns. Expected
/// lists worked out by hand from the tags in tests/fixtures/zh-segmentation.json.
#[test]
fn chinese_candidates_follow_their_rules() {
    use attnprompt::keywords::{CandidateGenerator, Word, WordKind};

    let zh = ChineseCandidates::load(&root().join("models/jieba")).unwrap();
    let cases: [(&str, &[&str]); 3] = [
        (
            "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能。",
            &[
                "人工智能",
                "人工智能大模型",
                "大模型",
                "模型",
                "提示词",
                "技术",
                "模型",
                "目标",
                "目标任务",
                "任务",
                "性能",
            ],
        ),
        ("我喜欢阅读", &["喜欢", "阅读"]),
        (
            "BERT模型在树莓派上运行",
            &["BERT", "BERT模型", "模型", "树莓"],
        ),
    ];
    for (text, want) in cases {
        let mut spans = Vec::new();
        assert!(zh.segment(text, &mut spans));
        let words: Vec<Word> = spans
            .iter()
            .map(|&(start, end)| Word {
                start,
                end,
                score: 0.0,
                kind: if text[start..end].chars().any(char::is_alphanumeric) {
                    WordKind::Content
                } else {
                    WordKind::Punctuation
                },
            })
            .collect();
        let mut out = Vec::new();
        zh.candidates(text, &words, &mut out);
        let got: Vec<&str> = out
            .iter()
            .map(|c| &text[words[c.first].start..words[c.first + c.len - 1].end])
            .collect();
        assert_eq!(got, want, "{text}");
    }
}
