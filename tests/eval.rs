//! `attnprompt eval` on a fixed slice of Inspec (the first 50 documents of
//! ../shared/datasets/inspec.jsonl, beside the clone): a regression floor on the default
//! settings' macro F1@10, set from the measured value minus a small margin (EVALUATION.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Documents in the slice.
const SLICE: &str = "50";
/// Measured on the slice with the default settings (EVALUATION.md): macro F1@5 / F1@10.
const MEASURED_F1_5: f64 = 32.79;
const MEASURED_F1_10: f64 = 36.89;
/// Allowed drift (points) before the test fails: int8 kernels differ slightly by CPU.
const MARGIN: f64 = 1.0;

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
    Command::new(env!("CARGO_BIN_EXE_attnprompt"))
        .args(args)
        .env_remove("ATTNPROMPT_MODEL")
        .output()
        .unwrap()
}

#[test]
fn default_settings_hold_their_f1_on_a_50_document_slice() {
    let data = dataset();
    let o = attnprompt(&[
        "eval",
        "--dataset",
        data.to_str().unwrap(),
        "--limit",
        SLICE,
        "--json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["summary"]["docs"], 50);
    assert_eq!(v["failed"], 0);
    assert_eq!(v["candidates"], "nounphrase");
    let f1 = |i: usize| v["summary"]["macro_f1"][i].as_f64().unwrap();
    assert_eq!(v["summary"]["k"], serde_json::json!([5, 10, 15]));
    assert!(
        f1(1) >= MEASURED_F1_10 - MARGIN,
        "macro F1@10 {:.2} fell below {MEASURED_F1_10} - {MARGIN}",
        f1(1)
    );
    assert!(
        f1(0) >= MEASURED_F1_5 - MARGIN,
        "macro F1@5 {:.2} fell below {MEASURED_F1_5} - {MARGIN}",
        f1(0)
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
