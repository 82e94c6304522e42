//! Any bytes through the text path: the first byte picks the route (English noun phrases,
//! English stopword n-grams, Chinese with jieba), the rest is the text. Every invariant of
//! `tests/it/text_path.rs` is checked on every input; a broken one, or a panic, is a crash.
#![no_main]

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/it/text_path.rs"]
mod text_path;

use text_path::TextPath;

static PATH: OnceLock<Mutex<TextPath>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Some((&route, text)) = data.split_first() else {
        return;
    };
    let path = PATH.get_or_init(|| {
        Mutex::new(TextPath::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        ))
    });
    let _ = path.lock().unwrap().run(route as usize, text);
});
