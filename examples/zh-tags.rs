//! Prints jieba's words and tags for each line of stdin, as the Chinese candidates see them.
//!
//! `echo 树莓派可以离线运行 | cargo run --example zh-tags`

use std::io::BufRead;
use std::path::Path;

use attnprompt::candidates::chinese::ChineseCandidates;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/jieba");
    let zh = ChineseCandidates::load(&dir)?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        let tags: Vec<String> = zh
            .tag(&line)
            .iter()
            .map(|t| format!("{}/{}", t.word, t.tag))
            .collect();
        println!("{}", tags.join(" "));
    }
    Ok(())
}
