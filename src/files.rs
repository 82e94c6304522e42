//! Where the model files come from: the file system, or, with the cargo feature `embed-model`,
//! copies built into the binary so that one file is the whole deployment.
//!
//! The embedded files keep their paths under a pseudo directory, [`EMBEDDED_DIR`], so everything
//! downstream (messages, `inspect`, the memory plan) names them like files on disk; only the
//! loaders ask this module for their bytes.

use std::path::{Path, PathBuf};

use crate::config::DEFAULT_MODEL_NAME;

/// The directory the embedded files appear under. Nothing on disk is read under this name.
pub const EMBEDDED_DIR: &str = "(embedded)";

#[cfg(feature = "embed-model")]
static EMBEDDED: [(&str, &[u8]); 3] = [
    (
        "all-MiniLM-L6-v2-int8/model.onnx",
        include_bytes!("../models/all-MiniLM-L6-v2-int8/model.onnx"),
    ),
    (
        "all-MiniLM-L6-v2-int8/tokenizer.json",
        include_bytes!("../models/all-MiniLM-L6-v2-int8/tokenizer.json"),
    ),
    (
        "pos-tagger-ewt/tagger.bin",
        include_bytes!("../models/pos-tagger-ewt/tagger.bin"),
    ),
];

/// The embedded model directory, if this binary was built with `embed-model`.
pub fn embedded_model_dir() -> Option<PathBuf> {
    cfg!(feature = "embed-model").then(|| Path::new(EMBEDDED_DIR).join(DEFAULT_MODEL_NAME))
}

/// The bytes of an embedded file, if `path` names one.
pub fn embedded(path: &Path) -> Option<&'static [u8]> {
    #[cfg(feature = "embed-model")]
    {
        let rel = path.strip_prefix(EMBEDDED_DIR).ok()?;
        EMBEDDED
            .iter()
            .find(|(name, _)| Path::new(name) == rel)
            .map(|(_, bytes)| *bytes)
    }
    #[cfg(not(feature = "embed-model"))]
    {
        let _ = path;
        None
    }
}

/// Whether `path` is a file on disk or an embedded one.
pub fn is_file(path: &Path) -> bool {
    embedded(path).is_some() || path.is_file()
}

/// Whether `dir` is a directory on disk or the embedded model directory.
pub fn is_dir(dir: &Path) -> bool {
    embedded_model_dir().is_some_and(|d| d == dir) || dir.is_dir()
}

/// Size in bytes of a file on disk or an embedded one.
pub fn len(path: &Path) -> std::io::Result<u64> {
    match embedded(path) {
        Some(bytes) => Ok(bytes.len() as u64),
        None => std::fs::metadata(path).map(|m| m.len()),
    }
}

/// Contents of a file on disk or an embedded one.
pub fn read(path: &Path) -> std::io::Result<std::borrow::Cow<'static, [u8]>> {
    match embedded(path) {
        Some(bytes) => Ok(bytes.into()),
        None => std::fs::read(path).map(Into::into),
    }
}

#[cfg(all(test, feature = "embed-model"))]
mod tests {
    use super::*;
    use crate::candidates::tagger::{DEFAULT_TAGGER_NAME, TAGGER_FILE};
    use crate::config::{MODEL_FILE, TOKENIZER_FILE};

    /// The embedded names are the ones the loaders ask for, and the bytes are the shipped files.
    #[test]
    fn embedded_files_are_the_shipped_ones() {
        let dir = embedded_model_dir().unwrap();
        let tagger = Path::new(EMBEDDED_DIR)
            .join(DEFAULT_TAGGER_NAME)
            .join(TAGGER_FILE);
        for (path, shipped) in [
            (dir.join(MODEL_FILE), "all-MiniLM-L6-v2-int8/model.onnx"),
            (
                dir.join(TOKENIZER_FILE),
                "all-MiniLM-L6-v2-int8/tokenizer.json",
            ),
            (tagger, "pos-tagger-ewt/tagger.bin"),
        ] {
            let on_disk = std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("models")
                    .join(shipped),
            )
            .unwrap();
            assert_eq!(&*read(&path).unwrap(), &on_disk[..], "{}", path.display());
        }
        assert!(is_dir(&dir));
        assert!(!is_file(&dir.join("other.onnx")));
    }
}
