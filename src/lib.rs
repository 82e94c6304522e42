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

#[cfg(feature = "model")]
pub mod bench;
pub mod candidates;
pub mod config;
#[cfg(feature = "model")]
pub mod dequantize;
#[cfg(feature = "model")]
pub mod encoder;
pub mod error;
#[cfg(feature = "model")]
pub mod eval;
pub mod files;
pub mod heap;
pub mod keywords;
#[cfg(feature = "model")]
pub mod lang;
#[cfg(feature = "model")]
pub mod memory;
#[cfg(feature = "model")]
pub mod pipeline;
#[cfg(feature = "model")]
pub mod precision;
pub mod prompt;
pub mod ranking;
#[cfg(feature = "model")]
pub mod scores;
pub mod stem;
pub mod stopwords;
pub mod tokenize;

// The English candidate modules kept their paths from before `candidates/`.
pub use candidates::{english as nounphrase, tagger};
pub use config::Precision;
pub use config::{Candidates, Config, Lang, Layers, Strategy};
pub use error::{Error, Result};
pub use keywords::Keyword;
#[cfg(feature = "model")]
pub use pipeline::{Latency, Output, Pipeline};
