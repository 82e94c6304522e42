//! attnprompt: find the words a text is about from the self-attention of a small int8 BERT run
//! by tract, offline, and turn them into a prompt for a downstream LLM.
//!
//! ```no_run
//! use attnprompt::{Config, Pipeline};
//! let mut pipeline = Pipeline::load(Config::new("models/all-MiniLM-L6-v2-int8"))?;
//! let out = pipeline.run("The Raspberry Pi 5 runs BERT inference offline with tract.")?;
//! println!("{} ({} µs)", out.prompt, out.latency.total_us);
//! # Ok::<(), attnprompt::Error>(())
//! ```
//!
//! See ARCHITECTURE.md for the data flow and which module owns each stage.

// The text side: no tract.
pub mod candidates;
pub mod config;
pub mod document;
pub mod error;
pub mod files;
pub mod heap;
pub mod keywords;
pub mod prompt;
pub mod ranking;
pub mod stem;
pub mod stopwords;
pub mod tokenize;
pub mod unigram;

// The model side (feature `model`, default): tract, and what loads, plans, runs or measures it.
#[cfg(feature = "model")]
pub mod bench;
#[cfg(feature = "model")]
pub mod dequantize;
#[cfg(feature = "model")]
pub mod encoder;
#[cfg(feature = "model")]
pub mod eval;
#[cfg(feature = "model")]
pub mod int8_product;
#[cfg(feature = "model")]
pub mod lang;
#[cfg(feature = "model")]
pub mod memory;
#[cfg(feature = "model")]
pub mod model_cache;
#[cfg(feature = "model")]
pub mod nan_guard;
#[cfg(feature = "model")]
pub mod pipeline;
#[cfg(feature = "model")]
pub mod precision;
#[cfg(feature = "model")]
pub mod quantize;
#[cfg(feature = "model")]
pub mod scores;
#[cfg(all(test, feature = "model"))]
mod test_onnx;
#[cfg(feature = "model")]
pub mod thread_pool;

// The English candidate modules kept their paths from before `candidates/`.
pub use candidates::{english as nounphrase, tagger};
pub use config::{Candidates, Config, Lang, Layers, Precision, Strategy};
pub use error::{Error, Result};
pub use keywords::Keyword;
#[cfg(feature = "model")]
pub use pipeline::{Latency, Output, Pipeline};
