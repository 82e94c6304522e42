//! `attnprompt eval` on a fixed slice of Inspec (the first 50 documents of
//! ../shared/datasets/inspec.jsonl, beside the clone): a regression floor on the default
//! settings' macro F1@10, set from the measured value minus a small margin (EVALUATION.md).

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{binary, emulated};

/// The slice: documents, and macro F1@5 / F1@10 measured on it with the default settings
/// (x86-64, EVALUATION.md), and the drift allowed before the test fails (int8 kernels differ
/// slightly by CPU; one keyword more or less in one document moves a 10-document macro F1 by
/// about a point).
struct Slice {
    docs: u32,
    f1_5: f64,
    f1_10: f64,
    margin: f64,
}

/// Measured with single words at half their sum (2026-12-06, `auto`: int8 on the AVX-512 VNNI
/// EPYC; f32 gives 34.68 / 38.26). Before, with single words at their mean: 34.28 / 38.91. On
/// this slice F1@10 fell by 1.02 with that change while the whole 500 rose by 0.45
/// (EVALUATION.md, "Single words: half their sum").
const SLICE: Slice = Slice {
    docs: 50,
    f1_5: 35.24,
    f1_10: 37.89,
    margin: 1.0,
};

/// Under emulation (scripts/cross-test) the first 10 documents: the 50 take 10 minutes under
/// qemu. Measured with `attnprompt eval --limit 10 --precision int8` on x86-64 (the emulated
/// suites run int8); before single words took half their sum: 23.98 / 33.66.
const EMULATED_SLICE: Slice = Slice {
    docs: 10,
    f1_5: 27.14,
    f1_10: 33.56,
    margin: 2.0,
};

fn dataset() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/inspec.jsonl");
    assert!(
        path.is_file(),
        "Inspec not found at {}: the evaluation test needs ../shared/datasets beside the clone \
         (see its README)",
        path.display()
    );
    path
}

fn attnprompt(args: &[&str]) -> Output {
    binary()
        .args(args)
        .env_remove("ATTNPROMPT_MODEL")
        .output()
        .unwrap()
}

#[test]
fn default_settings_hold_their_f1_on_a_fixed_slice() {
    let slice = if emulated() { EMULATED_SLICE } else { SLICE };
    let data = dataset();
    let limit = slice.docs.to_string();
    let o = attnprompt(&[
        "eval",
        "--dataset",
        data.to_str().unwrap(),
        "--limit",
        &limit,
        "--json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["docs"], slice.docs);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["candidates"], "nounphrase");
    let f1 = |i: usize| v["summary"]["macro_f1"][i].as_f64().unwrap();
    assert_eq!(v["summary"]["k"], serde_json::json!([5, 10, 15]));
    assert!(
        f1(1) >= slice.f1_10 - slice.margin,
        "macro F1@10 {:.2} fell below {} - {} on {} documents",
        f1(1),
        slice.f1_10,
        slice.margin,
        slice.docs
    );
    assert!(
        f1(0) >= slice.f1_5 - slice.margin,
        "macro F1@5 {:.2} fell below {} - {} on {} documents",
        f1(0),
        slice.f1_5,
        slice.margin,
        slice.docs
    );
}

#[test]
fn missing_or_malformed_dataset_is_a_clear_error() {
    let o = attnprompt(&["eval", "--dataset", "/nonexistent/inspec.jsonl"]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/inspec.jsonl"));

    let dir = std::env::temp_dir().join(format!("attnprompt-eval-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"text\": \"ok\", \"keyphrases\": [\"ok\"]}\n{\"text\": 3}\n",
    )
    .unwrap();
    let o = attnprompt(&["eval", "--dataset", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(4));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2") && err.contains("`text`"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Documents (0-based lines of the Inspec file) whose ranking repeats a stem among its first 15
/// phrases (`model`, `models`), found when the test was written; the test checks they still do.
const REPEATED_STEM_DOCS: [usize; 2] = [8, 16];

/// The protocol cuts at k after de-duplicating stems, so a document's top 15 cannot depend on
/// which other cut-offs are asked for. Cutting the ranking at the largest k before
/// de-duplicating gave these documents 14 predictions with `--k 15` and 15 with `--k 5,15,64`.
#[test]
fn f1_at_k_does_not_depend_on_the_other_cutoffs() {
    let lines: Vec<String> = std::fs::read_to_string(dataset())
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let dir = std::env::temp_dir().join(format!("attnprompt-eval-k-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let slice = dir.join("slice.jsonl");
    let picked: Vec<&str> = REPEATED_STEM_DOCS
        .iter()
        .map(|&i| lines[i].as_str())
        .collect();
    std::fs::write(&slice, picked.join("\n") + "\n").unwrap();
    let per_doc = dir.join("per-doc.jsonl");
    let run = |ks: &str| {
        let o = attnprompt(&[
            "eval",
            "--dataset",
            slice.to_str().unwrap(),
            "--k",
            ks,
            "--per-doc",
            per_doc.to_str().unwrap(),
            "--json",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        let k: Vec<u64> = serde_json::from_value(v["summary"]["k"].clone()).unwrap();
        let i = k.iter().position(|&k| k == 15).unwrap();
        (
            v["summary"]["macro_f1"][i].as_f64().unwrap(),
            v["summary"]["micro_precision"][i].as_f64().unwrap(),
        )
    };
    assert_eq!(
        run("15"),
        run("5,15,64"),
        "F1@15 depends on the other cut-offs"
    );
    // The slice still exercises the case: some document has a stem twice in its first 15
    // ranked phrases, and 15 distinct stems further down.
    let repeats = std::fs::read_to_string(&per_doc)
        .unwrap()
        .lines()
        .any(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            let stems: Vec<String> = v["predicted"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| attnprompt::stem::stem_phrase(p.as_str().unwrap()))
                .collect();
            let distinct = |n: usize| {
                stems[..n.min(stems.len())]
                    .iter()
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            };
            distinct(15) < 15 && distinct(stems.len()) >= 15
        });
    assert!(
        repeats,
        "no document of {REPEATED_STEM_DOCS:?} repeats a stem in its top 15 any more: pick others"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
