//! Any UTF-8 as a template: parsed and rendered, checked against an independent reading of the
//! template syntax (`tests/it/text_path.rs`, `check_template`).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../tests/it/text_path.rs"]
mod text_path;

fuzz_target!(|data: &[u8]| {
    if let Ok(source) = std::str::from_utf8(data) {
        text_path::check_template(source);
    }
});
