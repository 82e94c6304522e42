//! Texts and documents longer than a window (issue 20): how they are cut into windows, checked
//! against the tokenizer and the segmenter; and whole documents through the model, keyword
//! offsets pointing into the document across its chunks.

use std::path::PathBuf;

use attnprompt::candidates::chinese::ChineseCandidates;
use attnprompt::document::{position_prior, DocumentReader, CHUNK_BYTES, POSITION_SCALE_TOKENS};
use attnprompt::keywords::{Aggregation, CandidateGenerator, StopwordNgrams};
use attnprompt::tokenize::{TextTokenizer, Tokens};
use attnprompt::{Config, Error, Pipeline};

use crate::common::{config, emulated, shipped_model_dir};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

/// Reads `text` with a scorer that records each window's ids, and returns the windows' token
/// ranges in the text's tokens (tokenized whole, as one chunk) with those tokens.
fn windows_of(
    text: &str,
    tokenizer: &mut TextTokenizer,
    generator: &dyn CandidateGenerator,
    max_seq: usize,
) -> (Vec<(usize, usize)>, Tokens) {
    assert!(text.len() <= CHUNK_BYTES, "one chunk");
    let special = tokenizer.special_ids();
    let mut seen: Vec<Vec<u32>> = Vec::new();
    let mut reader = DocumentReader::new(max_seq, 5);
    let read = reader
        .read(
            text.as_bytes(),
            tokenizer,
            generator,
            max_seq,
            |ids, scores| {
                assert!(ids.len() <= max_seq);
                assert_eq!((ids[0], ids[ids.len() - 1]), (special.start, special.end));
                seen.push(ids[1..ids.len() - 1].to_vec());
                scores.clear();
                scores.extend(ids.iter().map(|_| 1.0));
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(read.windows, seen.len());
    let mut whole = Tokens::default();
    tokenizer.tokenize_chunk_into(text, &mut whole).unwrap();
    // Every token in exactly one window, in order.
    assert_eq!(seen.concat(), whole.ids);
    let mut ranges = Vec::new();
    let mut start = 0;
    for w in &seen {
        ranges.push((start, start + w.len()));
        start += w.len();
    }
    (ranges, whole)
}

#[test]
fn english_windows_cover_every_token_once_and_never_cut_a_word() {
    let path = models().join("all-MiniLM-L6-v2-int8/tokenizer.json");
    let mut tokenizer = TextTokenizer::load(&path, 128).unwrap();
    let stopwords = StopwordNgrams { max_words: 4 };
    // Long words of many pieces, so a window edge often falls inside one.
    let text = "Electroencephalographically unmicrocontrollerized thermoregulation \
                interoperability characterizations. "
        .repeat(12);
    let (ranges, whole) = windows_of(&text, &mut tokenizer, &stopwords, 16);
    assert!(ranges.len() > 10, "{} windows", ranges.len());
    for &(start, _) in &ranges[1..] {
        assert_ne!(
            whole.word_ids[start],
            whole.word_ids[start - 1],
            "a window starts inside a word at token {start}"
        );
        let at = whole.offsets[start].0;
        assert!(
            !text[..at].ends_with(char::is_alphanumeric)
                || !text[at..].starts_with(char::is_alphanumeric),
            "cut inside a word at byte {at}"
        );
    }
}

#[test]
fn chinese_windows_end_where_jieba_words_end() {
    let path = models().join("multilingual-e5-small-zh-en-int8/tokenizer.json");
    let mut tokenizer = TextTokenizer::load(&path, 128).unwrap();
    let jieba = ChineseCandidates::load(&models().join("jieba")).unwrap();
    let text = "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能，\
                边缘设备上的量化编码器读取注意力并找出关键词。"
        .repeat(8);
    let (ranges, whole) = windows_of(&text, &mut tokenizer, &jieba, 24);
    assert!(ranges.len() > 10, "{} windows", ranges.len());
    let mut spans = Vec::new();
    assert!(jieba.segment(&text, &mut spans));
    for &(start, _) in &ranges[1..] {
        let at = whole.offsets[start].0;
        assert!(
            spans.iter().any(|s| s.0 == at),
            "a window starts at byte {at}, inside a jieba word"
        );
    }
}

/// How a single word's occurrences combine: half their sum with the English candidates, their
/// mean with the Chinese ones (each generator's `CandidateGenerator::aggregation`), and what
/// `set_aggregation` (eval's grid) sets, whatever the language. A word met three times: half
/// its sum is 1.5 times its mean.
#[test]
fn a_single_word_scores_half_its_sum_in_english_and_its_mean_in_chinese() {
    fn score_of(
        reader: &mut DocumentReader,
        tokenizer: &mut TextTokenizer,
        generator: &dyn CandidateGenerator,
        text: &str,
        word: &str,
    ) -> f32 {
        // Every token scores 1: one window, no position prior.
        let read = reader
            .read(text.as_bytes(), tokenizer, generator, 64, |ids, scores| {
                scores.clear();
                scores.extend(ids.iter().map(|_| 1.0));
                Ok(())
            })
            .unwrap();
        assert_eq!(read.windows, 1);
        reader.keywords(&read, 5).unwrap();
        let kws = &reader.rank.keywords;
        kws.iter()
            .find(|k| k.text == word)
            .unwrap_or_else(|| panic!("{word} not among {kws:?}"))
            .score
    }

    let mut en =
        TextTokenizer::load(&models().join("all-MiniLM-L6-v2-int8/tokenizer.json"), 64).unwrap();
    let stopwords = StopwordNgrams { max_words: 4 };
    let text = "yak. yak. yak. zebra crossing.";
    let yak = (en.tokenize("yak").unwrap().len() - 2) as f32;
    let mut reader = DocumentReader::new(64, 5);
    let half = score_of(&mut reader, &mut en, &stopwords, text, "yak");
    assert_eq!(half, 3.0 * yak * 0.5);
    reader.set_aggregation(Aggregation::SumMultiword);
    let mean = score_of(&mut reader, &mut en, &stopwords, text, "yak");
    assert_eq!(mean, yak);

    let mut zh = TextTokenizer::load(
        &models().join("multilingual-e5-small-zh-en-int8/tokenizer.json"),
        64,
    )
    .unwrap();
    let jieba = ChineseCandidates::load(&models().join("jieba")).unwrap();
    let text = "航天员。航天员。航天员。空间站的实验设备。";
    let mut reader = DocumentReader::new(64, 5);
    let mean = score_of(&mut reader, &mut zh, &jieba, text, "航天员");
    reader.set_aggregation(Aggregation::SumSingleHalf);
    let half = score_of(&mut reader, &mut zh, &jieba, text, "航天员");
    assert!((half - 1.5 * mean).abs() < 1e-5, "half {half}, mean {mean}");
}

/// A document of several chunks through the model: keyword offsets are offsets in the
/// document, and a phrase only the second chunk has is found. Host only: about 40 windows,
/// minutes under qemu; the windows and the table are checked above and in `document.rs`
/// on every target.
#[test]
fn a_document_of_several_chunks_keeps_its_offsets() {
    if emulated() {
        eprintln!("skipped under emulation: 40 model runs");
        return;
    }
    let filler: String = (0..120)
        .map(|i| format!("Sensor node {i} reports attention maps to the gateway. "))
        .collect();
    let late = "Photonic lattice resonators trap light in silicon. ";
    let document = filler.clone() + &late.repeat(3) + &filler;
    assert!(document.len() > CHUNK_BYTES / 2 && filler.len() < CHUNK_BYTES);
    let document = document.clone() + &document;
    assert!(document.len() > CHUNK_BYTES);
    let mut cfg: Config = config(shipped_model_dir());
    cfg.top_k = 10;
    let mut p = Pipeline::load(cfg).unwrap();
    let out = p.run_document(document.as_bytes()).unwrap();
    assert_eq!(out.bytes, document.len());
    assert!(
        out.windows > CHUNK_BYTES / 128 / 4,
        "{} windows",
        out.windows
    );
    for k in &out.keywords {
        assert_eq!(document.get(k.start..k.end), Some(k.text.as_str()), "{k:?}");
    }
    let photonic = out
        .keywords
        .iter()
        .find(|k| k.text.starts_with("Photonic"))
        .unwrap_or_else(|| panic!("{:?}", out.keywords));
    assert_eq!(photonic.start, filler.len());

    // `{text}` needs the text: a document is not kept, so its template is refused.
    let mut cfg: Config = config(shipped_model_dir());
    cfg.template = "Summarise {text} around {keyword}".into();
    let mut p = Pipeline::load(cfg).unwrap();
    assert!(p.run("Tract runs ONNX models.").is_ok());
    let err = p.run_document(&b"Tract runs ONNX models."[..]).unwrap_err();
    assert!(matches!(err, Error::Template(_)), "{err}");
}

/// The position prior: an occurrence in a window that starts t tokens into the document
/// counts 1 / (1 + t / 300) of its score; the first window counts in full.
#[test]
fn later_windows_count_less() {
    let path = models().join("all-MiniLM-L6-v2-int8/tokenizer.json");
    let mut tokenizer = TextTokenizer::load(&path, 128).unwrap();
    let stopwords = StopwordNgrams { max_words: 4 };
    // Stopwords only between the two phrases: they make no candidate.
    let text = format!(
        "zebra crossing. {} yak herding.",
        "the of and to ".repeat(40)
    );
    let mut reader = DocumentReader::new(16, 5);
    reader.occurrences = Some(Vec::new());
    let mut lengths = Vec::new();
    let read = reader
        .read(
            text.as_bytes(),
            &mut tokenizer,
            &stopwords,
            16,
            |ids, scores| {
                lengths.push(ids.len() - 2);
                scores.clear();
                scores.extend(ids.iter().map(|_| 1.0));
                Ok(())
            },
        )
        .unwrap();
    reader.keywords(&read, 5).unwrap();
    let kws = &reader.rank.keywords;
    let score = |t: &str| kws.iter().find(|k| k.text == t).unwrap().score;
    // A phrase scores its tokens (1 each), times the prior of its window; yak herding is in
    // the last window.
    let tokens = |t: &str| (tokenizer.tokenize(t).unwrap().len() - 2) as f32;
    let before_last: usize = lengths[..lengths.len() - 1].iter().sum();
    assert!(before_last > 100);
    assert_eq!(score("zebra crossing"), tokens("zebra crossing"));
    let expected = tokens("yak herding") * position_prior(before_last, POSITION_SCALE_TOKENS);
    assert!((score("yak herding") - expected).abs() < 1e-6, "{kws:?}");
    assert!(expected < tokens("yak herding") * 0.7);
    // What `eval --occurrences` writes: each occurrence before the prior, with its window and
    // the tokens before it, offsets into the document.
    let occ = reader.occurrences.as_ref().unwrap();
    let yak = occ.iter().find(|o| o.key == "yak herding").unwrap();
    assert_eq!(
        (yak.window, yak.tokens_before, yak.score),
        (lengths.len() - 1, before_last, tokens("yak herding"))
    );
    assert_eq!(&text[yak.start..yak.end], "yak herding");
    let zebra = occ.iter().find(|o| o.key == "zebra crossing").unwrap();
    assert_eq!((zebra.window, zebra.tokens_before, zebra.start), (0, 0, 0));
    let keys: Vec<&str> = occ.iter().map(|o| o.key.as_str()).collect();
    // every run of 1-2 content words, in document order within a window
    assert_eq!(
        keys,
        [
            "zebra",
            "zebra crossing",
            "crossing",
            "yak",
            "yak herding",
            "herding"
        ]
    );
}
