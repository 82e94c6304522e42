//! Where the model files come from: the file system, or, with the cargo feature `embed-model`,
//! copies built into the binary so that one file is the whole deployment.
//!
//! The embedded files keep their paths under a pseudo directory, [`EMBEDDED_DIR`], so everything
//! downstream (messages, `inspect`, the memory plan) names them like files on disk; only the
//! loaders ask this module for their bytes.

use std::path::Path;

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

/// Whether this binary was built with `embed-model`.
pub const fn has_embedded_files() -> bool {
    cfg!(feature = "embed-model")
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

/// Whether `dir` is a directory on disk or one the embedded files are under.
pub fn is_dir(dir: &Path) -> bool {
    embedded_dir(dir) || dir.is_dir()
}

fn embedded_dir(dir: &Path) -> bool {
    #[cfg(feature = "embed-model")]
    {
        dir.strip_prefix(EMBEDDED_DIR).is_ok_and(|rel| {
            !rel.as_os_str().is_empty()
                && EMBEDDED
                    .iter()
                    .any(|(name, _)| Path::new(name).starts_with(rel))
        })
    }
    #[cfg(not(feature = "embed-model"))]
    {
        let _ = dir;
        false
    }
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
