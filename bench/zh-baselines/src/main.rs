//! Prints, for each line of a JSON-lines file with a `text` field, jieba-rs's top-5 keywords by
//! TF-IDF and by TextRank as one JSON line: `{"tfidf": [...], "textrank": [...]}`. jieba's
//! dictionary comes from the file given (the one attnprompt ships, models/jieba/dict.txt), the
//! extractors' settings are jieba-rs's defaults, and the parts of speech are those of Python
//! jieba's defaults: any for TF-IDF, `ns n vn v` for TextRank.
//!
//! Usage: zh-baselines DICT.txt DATA.jsonl

use std::io::{BufRead, BufReader, Write};

use jieba_rs::{Jieba, KeywordExtract, TextRank, TfIdf};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dict, data] = &args[..] else {
        eprintln!("usage: zh-baselines DICT.txt DATA.jsonl");
        std::process::exit(2);
    };
    let mut dict = BufReader::new(std::fs::File::open(dict).expect("the dictionary"));
    let jieba = Jieba::with_dict(&mut dict).expect("a jieba dictionary");
    let tfidf = TfIdf::default();
    let textrank = TextRank::default();
    let pos = ["ns", "n", "vn", "v"].map(String::from).to_vec();
    let data = BufReader::new(std::fs::File::open(data).expect("the data"));
    let mut stdout = std::io::stdout().lock();
    for line in data.lines() {
        let line = line.expect("a line");
        if line.trim().is_empty() {
            continue;
        }
        let case: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let text = case["text"].as_str().expect("a text field");
        let words = |k: Vec<jieba_rs::Keyword>| -> Vec<String> {
            k.into_iter().map(|k| k.keyword).collect()
        };
        let out = serde_json::json!({
            "tfidf": words(tfidf.extract_keywords(&jieba, text, 5, vec![])),
            "textrank": words(textrank.extract_keywords(&jieba, text, 5, pos.clone())),
        });
        if writeln!(stdout, "{out}").is_err() {
            return; // the reader is gone
        }
    }
}
