//! Properties of the text path (`text_path.rs`) over generated input: raw bytes, arbitrary
//! strings, and texts assembled from hostile fragments (NUL, control characters, emoji, RTL,
//! combining marks, CRLF, mixed scripts) among real words; and template parsing against an
//! independent reading of its syntax. The fuzz targets check the same invariants, guided by
//! coverage (`fuzz/`, `scripts/fuzz`).

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use proptest::prelude::*;

use crate::common::emulated;
use crate::text_path::{check_template, TextPath, ROUTES};

fn text_path() -> std::sync::MutexGuard<'static, TextPath> {
    static PATH: OnceLock<Mutex<TextPath>> = OnceLock::new();
    PATH.get_or_init(|| {
        Mutex::new(TextPath::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("models"),
        ))
    })
    .lock()
    .unwrap_or_else(|e| e.into_inner())
}

/// Fewer cases under qemu, where a case costs about 40 times as much; same properties.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if emulated() { 48 } else { 256 },
        // A failure is printed with its minimal input, which then becomes a test here.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Pieces of text a hostile or unusual input is made of, with real words among them.
const FRAGMENTS: &[&str] = &[
    "The Raspberry Pi 5",
    " runs ",
    "BERT inference",
    " offline with tract",
    "of the",
    "and",
    "the",
    ".",
    ", ",
    "!?",
    " ",
    "  \t",
    "\r\n",
    "\n",
    "\0",
    "\u{1}\u{7}\u{1b}[31m",
    "\u{7f}",
    "😀",
    "👩\u{200d}💻",
    "🇫🇷",
    "שלום עולם",
    "مرحبا بالعالم",
    "\u{202e}reversed\u{202c}",
    "e\u{301}",
    "a\u{300}\u{301}\u{302}\u{303}",
    "\u{200b}",
    "\u{feff}",
    "人工智能",
    "大模型的提示词",
    "在树莓派上运行",
    "。",
    "，",
    "Ｆｕｌｌｗｉｄｔｈ",
    "ﬁ",
    "İstanbul",
    "straße",
    "supercalifragilisticexpialidocious",
    "12345",
    "3.14",
    "#$%&*",
    "\u{fffd}",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "日本語のテキスト",
    "한국어",
];

fn fragment_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(FRAGMENTS), 0..60).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_give_a_prompt_or_an_input_error(
        route in 0..ROUTES.len(),
        bytes in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let _ = text_path().run(route, &bytes);
    }

    #[test]
    fn any_string_gives_a_prompt_or_an_input_error(route in 0..ROUTES.len(), text in any::<String>()) {
        let _ = text_path().run(route, text.as_bytes());
    }

    #[test]
    fn hostile_fragments_among_words_give_a_prompt_or_an_input_error(
        route in 0..ROUTES.len(),
        text in fragment_text(),
    ) {
        let _ = text_path().run(route, text.as_bytes());
    }

    #[test]
    fn templates_render_as_their_syntax_says(source in "[a-z {}]{0,24}|\\PC{0,40}") {
        check_template(&source);
    }
}

/// The generators do reach the prompt: real text on each route gives one.
#[test]
fn real_text_gives_a_prompt_on_every_route() {
    let mut path = text_path();
    for (route, text) in [
        (
            0,
            "The Raspberry Pi 5 runs BERT inference offline with tract.",
        ),
        (
            1,
            "The Raspberry Pi 5 runs BERT inference offline with tract.",
        ),
        (
            2,
            "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能。",
        ),
    ] {
        let prompt = path
            .run(route, text.as_bytes())
            .unwrap_or_else(|e| panic!("{}: {e}", ROUTES[route]));
        assert!(prompt.starts_with("what is "), "{prompt}");
    }
}
