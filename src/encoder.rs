//! Stage 2: token ids → tensors → tract → attention probabilities.
//!
//! The path follows tract's own examples: load the ONNX graph, fix the input shapes, pick the
//! outputs, optimize, plan once, run. Three additions:
//! - the attention Softmax nodes of the layers we read become graph outputs *before*
//!   optimizing, so any BERT-family ONNX works, not only files exported with attention outputs;
//! - the sequence length is a symbol `S`, bound by each run's inputs: a text of n tokens costs
//!   n tokens of compute, whatever `max_seq` (which bounds n and sizes the memory plan);
//! - the precision is chosen per CPU (`precision.rs`); for f32 an int8 model's weights are
//!   dequantized before tract sees the graph (`dequantize.rs`).

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::{DimLike, SymbolValues};

use crate::config::Layers;
use crate::dequantize;
use crate::error::{Error, Result};
use crate::model_cache;
use crate::precision::{self, Choice, Precision};
use crate::quantize::ProductKernel;

/// The name of the sequence-length symbol in the planned graph.
const SEQ_SYMBOL: &str = "S";

/// How to load an encoder.
#[derive(Debug, Clone)]
pub struct EncoderSpec {
    /// Longest sequence a run may have (tokens, [CLS] and [SEP] included); the memory plan is
    /// computed for it.
    pub max_seq: usize,
    /// Threads for tract's matrix products and row-wise ops (`thread_pool.rs`).
    pub threads: usize,
    pub precision: Precision,
    /// Layers whose attention is read; `None`: every layer.
    pub layers: Option<Layers>,
    /// Keep the graph's own outputs (e.g. `last_hidden_state`) too; without, tract prunes
    /// everything the attention does not need.
    pub keep_model_outputs: bool,
    /// Why the precision was chosen, when the caller decided it for memory (the budget
    /// fallback); `None`: `precision::choose` says why.
    pub precision_reason: Option<String>,
    /// Bytes of heap the model may take at the peak of its load (what the memory budget leaves
    /// once the process and the rest of the pipeline are counted); checked before the model file
    /// is read and again before tract parses it. `None`: no budget.
    pub load_budget: Option<u64>,
    /// Token ids the tokenizer can produce: the model's embedding table must have a row for
    /// each, checked before tract parses the model. `None`: not checked.
    pub vocab_size: Option<usize>,
    /// Directory of the model cache (`model_cache.rs`): the form chosen, decluttered, read from
    /// there when it was kept, kept there otherwise. `None`: no cache.
    pub cache_dir: Option<PathBuf>,
    /// What multiplies the int8 form's products; `None`: what suits this CPU
    /// ([`ProductKernel::for_tract_kernel`]). Set by tests that check one against the other.
    pub int8_products: Option<ProductKernel>,
}

impl EncoderSpec {
    /// Every layer, one thread, the precision `auto` picks, no model outputs.
    pub fn new(max_seq: usize) -> Self {
        EncoderSpec {
            max_seq,
            threads: 1,
            precision: Precision::Auto,
            layers: None,
            keep_model_outputs: false,
            precision_reason: None,
            load_budget: None,
            vocab_size: None,
            cache_dir: None,
            int8_products: None,
        }
    }

    /// What multiplies the int8 form's products where tract's int8 kernel is `kernel`.
    fn int8_products_for(&self, kernel: &str) -> ProductKernel {
        self.int8_products
            .unwrap_or_else(|| ProductKernel::for_tract_kernel(kernel))
    }
}

/// What a load learns about a model before tract optimizes it: kept in the model cache beside
/// the decluttered graph, so a load from the cache knows it without the ONNX file.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFacts {
    pub layers: usize,
    pub heads: usize,
    pub attention_nodes: Vec<String>,
    pub int8_ops: usize,
    pub dequantized_matmuls: usize,
    pub has_token_type_ids: bool,
    pub weight_bytes: u64,
    pub load_peak_bytes: u64,
    /// The model's own outputs kept after the attention ones.
    pub extra_outputs: usize,
    /// Rows of the token embedding table, when the graph says.
    pub embedding_rows: Option<usize>,
}

/// A decluttered model, what was learnt loading it, and the precision it computes in.
struct Decluttered {
    model: TypedModel,
    stored: StoredFacts,
    choice: Choice,
    file_bytes: u64,
    from_cache: bool,
}

/// Facts about the loaded encoder.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub path: PathBuf,
    /// Number of attention layers found (one attention Softmax each).
    pub layers: usize,
    /// The layers whose attention each run returns (zero-based, increasing).
    pub read_layers: Vec<usize>,
    pub heads: usize,
    pub max_seq: usize,
    /// Graph names of the attention Softmax nodes, in layer order.
    pub attention_nodes: Vec<String>,
    /// int8 ops in the file (MatMulInteger / DynamicQuantizeLinear / QLinearMatMul nodes).
    pub int8_ops: usize,
    /// The precision the encoder computes in, and why.
    pub precision: Choice,
    /// Matrix products made f32 at load from int8 weights (0 for the int8 form).
    pub dequantized_matmuls: usize,
    /// Whether the model takes `token_type_ids`.
    pub has_token_type_ids: bool,
    /// Rows of the token embedding table, when the graph says (the tokenizer's ids must stay
    /// below it).
    pub embedding_rows: Option<usize>,
    /// Threads tract's matrix products run on.
    pub threads: usize,
    /// Size of the ONNX file.
    pub file_bytes: u64,
    /// Bytes of the graph's constants as loaded: int8 weights as shipped, or dequantized to
    /// f32. tract keeps them repacked for its kernels, partly inside the optimized ops where
    /// they cannot be counted from outside; what it holds was measured at 1.02× this for the
    /// shipped int8 model and 0.96× for its fp32 source.
    pub weight_bytes: u64,
    /// Heap the model's load takes at its peak (`memory::model_load_peak` of the file and the
    /// chosen form's weights, sized from the protobuf), what the budget was checked against.
    pub load_peak_bytes: u64,
    /// Peak bytes of the tensors alive at once during one run of `max_seq` tokens, the
    /// longest (see `memory.rs`).
    pub activations_bytes: u64,
    /// Seconds spent loading and optimizing (cold start).
    pub load_seconds: f64,
    /// The decluttered graph came from the model cache (`model_cache.rs`), not the ONNX file.
    pub from_cache: bool,
    /// Nodes in the optimized graph.
    pub nodes: usize,
    /// Matrix-product kernels tract picked for this CPU, with how many nodes use each.
    pub kernels: Vec<(String, usize)>,
    /// Element-wise binary nodes (Mul, Add, …) over vectors per token that tract left on its
    /// generic per-element path instead of a vectorized by-scalar, unicast or chained kernel or
    /// a matrix product's kernel: each costs several times its vectorized form, so a plan of
    /// either form should have none.
    pub generic_binary_nodes: usize,
    /// int8 products left to tract's kernels where this crate's AVX2 product runs the others
    /// (0 elsewhere): `auto` does not keep int8 with any (`auto_keeps_int8`).
    pub int8_products_on_tract: usize,
}

/// A BERT encoder planned for batch 1 and sequences of 1 to `max_seq` tokens.
pub struct Encoder {
    state: TypedSimpleState,
    facts: ModelFacts,
    /// Whether the model takes `token_type_ids`.
    token_types: bool,
    /// Number of extra (non-attention) outputs kept after the attention ones.
    extra_outputs: usize,
    /// Token ids widened to i64, reused from one run to the next.
    ids: Vec<i64>,
}

/// The outputs of one run: one `[1, heads, n, n]` f32 tensor per layer read (n: the run's
/// tokens), plus the model's own outputs when asked for.
pub struct EncoderOutput<'a> {
    pub attention: Vec<TValue>,
    pub extra: Vec<TValue>,
    /// The model layer of each attention tensor.
    read_layers: &'a [usize],
}

impl EncoderOutput<'_> {
    /// Attention probabilities of model layer `layer` as `[heads, n, n]`.
    pub fn layer(&self, layer: usize) -> Result<tract_ndarray::ArrayView3<'_, f32>> {
        let ix = self
            .read_layers
            .iter()
            .position(|&l| l == layer)
            .ok_or_else(|| {
                Error::Inference(format!(
                    "layer {layer} was not read (loaded for layers {:?})",
                    self.read_layers
                ))
            })?;
        let view = self.attention[ix]
            .to_plain_array_view::<f32>()
            .map_err(|e| Error::Inference(e.to_string()))?;
        view.into_dimensionality::<tract_ndarray::Ix4>()
            .map(|v| v.index_axis_move(tract_ndarray::Axis(0), 0))
            .map_err(|e| Error::Inference(e.to_string()))
    }
}

impl ModelFacts {
    /// How the model computes, for reports.
    pub fn quantization(&self) -> String {
        match (self.int8_ops, self.precision.is_int8()) {
            (0, _) => "none (float)".into(),
            (n, true) => format!("dynamic int8 ({n} DynamicQuantizeLinear / MatMulInteger ops)"),
            (_, false) => format!(
                "f32 products: {} int8 weights dequantized at load",
                self.dequantized_matmuls
            ),
        }
    }
}

impl Encoder {
    /// Loads `path` and plans it for sequences of 1 to `spec.max_seq` tokens.
    pub fn load(path: &Path, spec: &EncoderSpec) -> Result<Self> {
        let encoder = Self::load_as(path, spec)?;
        let facts = encoder.facts();
        let keep = auto_keeps_int8(spec, &facts.precision, facts.int8_products_on_tract);
        if keep && facts.precision.is_int8() && facts.int8_products_on_tract > 0 {
            log::warn!(
                "{} of this model's int8 products run on tract's AVX2 kernel, slower than f32 \
                 (--precision f32 runs them faster)",
                facts.int8_products_on_tract
            );
        }
        if !keep {
            // `auto` took int8 for this crate's AVX2 product, which could not take every
            // product of this model; tract's AVX2 kernel would run the rest, slower than f32.
            let reason = format!(
                "auto: {} of this model's int8 products are not of the form this crate's AVX2 \
                 product takes (constant i8 weights, zero point 0), and tract's AVX2 int8 \
                 kernel is slower than f32; int8 weights dequantized to f32 at load",
                facts.int8_products_on_tract
            );
            log::info!("{reason}");
            drop(encoder);
            let f32 = EncoderSpec {
                precision: Precision::F32,
                ..spec.clone()
            };
            let mut encoder = Self::load_as(path, &f32)?;
            encoder.facts.precision.reason = reason;
            return Ok(encoder);
        }
        Ok(encoder)
    }

    fn load_as(path: &Path, spec: &EncoderSpec) -> Result<Self> {
        let started = std::time::Instant::now();
        let fail = |reason: String| Error::ModelLoad {
            path: path.to_path_buf(),
            reason,
        };
        if !crate::files::is_file(path) {
            return Err(fail("file not found".into()));
        }
        // Exports carry symbolic value_info/output shapes that clash with the shapes we set.
        let onnx = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true);
        // Where the cold start goes, for `-vv`.
        let mut lap = started;
        let mut lap_log = |what: &str| {
            log::debug!("load: {what} {:.1} ms", lap.elapsed().as_secs_f64() * 1e3);
            lap = std::time::Instant::now();
        };
        let embedded = crate::files::embedded(path);
        let file_bytes = crate::files::len(path).unwrap_or(0);
        let cache = model_cache::Entry::for_load(path, spec, embedded.is_some());
        if let Some((model, stored)) = cache.as_ref().and_then(model_cache::Entry::read) {
            lap_log("read from the model cache");
            log::info!(
                "model read from the cache {}",
                cache.as_ref().map_or(Path::new(""), |c| c.file()).display()
            );
            if let (Some(tokens), Some(rows)) = (spec.vocab_size, stored.embedding_rows) {
                if tokens > rows {
                    return Err(Error::VocabularyMismatch {
                        path: path.to_path_buf(),
                        tokenizer_vocab: tokens,
                        model_rows: rows,
                    });
                }
            }
            let choice = precision::choose(spec.precision, stored.int8_ops > 0)?;
            log::info!("precision {}: {}", choice.precision, choice.reason);
            let loaded = Decluttered {
                model,
                stored,
                choice,
                file_bytes,
                from_cache: true,
            };
            return Self::plan(path, spec, loaded, started, lap_log);
        }
        let over = |load_peak: u64, left: u64| Error::ModelOverBudget { load_peak, left };
        if let Some(left) = spec.load_budget {
            // Decoding holds the file and the protobuf at once.
            let peak = crate::memory::model_load_peak(file_bytes, 0, 0, 0);
            if peak > left {
                return Err(over(peak, left));
            }
        }
        let mut proto = match embedded {
            Some(bytes) => onnx.proto_model_for_read(&mut &bytes[..]),
            None => onnx.proto_model_for_path(path),
        }
        .map_err(|e| fail(format!("{e:#}")))?;
        lap_log("protobuf decoded");
        let embedding_rows = dequantize::embedding_rows(&proto, "input_ids");
        if let (Some(tokens), Some(rows)) = (spec.vocab_size, embedding_rows) {
            if tokens > rows {
                // An id past the table would index outside it at run time.
                return Err(Error::VocabularyMismatch {
                    path: path.to_path_buf(),
                    tokenizer_vocab: tokens,
                    model_rows: rows,
                });
            }
        }
        let mut choice = precision::choose(spec.precision, dequantize::has_int8_matmuls(&proto))?;
        if let Some(reason) = &spec.precision_reason {
            choice.reason.clone_from(reason);
            choice.for_memory = true;
        }
        lap_log("precision chosen");
        let int8_ops = proto
            .graph
            .iter()
            .flat_map(|g| g.node.iter())
            .filter(|n| {
                let op = n.op_type.as_str();
                op == "MatMulInteger" || op == "DynamicQuantizeLinear" || op == "QLinearMatMul"
            })
            .count();
        // The size of each form's weights, known from the protobuf before the weights are made
        // f32 or parsed: the load peak is planned (and checked) from it.
        let stored = dequantize::stored_bytes(&proto);
        let widening = if int8_ops > 0 {
            dequantize::f32_widening_bytes(&proto)
        } else {
            0
        };
        let int8_form = dequantize::initializer_bytes(&proto);
        // Each form's load peak: the protobuf holds the f32 form's widened weights too.
        let folded = dequantize::largest_folded_bytes(&proto);
        // On AVX2 the int8 form's product weights are widened to i16 while planning, both
        // copies held until tract drops the int8 one.
        let widened = match spec.int8_products_for(&choice.int8_kernel) {
            ProductKernel::WidenedAvx2 => dequantize::int8_weight_elements(&proto),
            ProductKernel::Tract => 0,
        };
        let int8_peak =
            crate::memory::model_load_peak(file_bytes, stored, int8_form + 2 * widened, folded);
        let f32_peak = crate::memory::model_load_peak(
            file_bytes,
            stored + widening,
            int8_form + widening,
            folded,
        );
        if let Some(left) = spec.load_budget {
            // A form that does not fit is never loaded.
            if spec.precision == Precision::Auto
                && !choice.is_int8()
                && int8_ops > 0
                && f32_peak > left
                && int8_peak <= left
            {
                let mut int8 = precision::choose(Precision::Int8, true)?;
                int8.reason = format!(
                    "auto: loading the f32 form peaks at {} of heap (its weights held twice while \
                     tract parses them), over the {} the memory budget leaves for the model; the \
                     int8 form fits, slower on this CPU (its int8 kernel: {})",
                    crate::memory::format_size(f32_peak),
                    crate::memory::format_size(left),
                    int8.int8_kernel
                );
                int8.for_memory = true;
                // Pipeline::load warns with it once the whole pipeline is known to fit.
                choice = int8;
            }
        }
        let load_peak_bytes = if choice.is_int8() {
            int8_peak
        } else {
            f32_peak
        };
        if let Some(left) = spec.load_budget.filter(|&left| load_peak_bytes > left) {
            return Err(over(load_peak_bytes, left));
        }
        let dequantized_matmuls = if int8_ops > 0 && !choice.is_int8() {
            dequantize::dequantize_weights(&mut proto)
                .map_err(|e| fail(format!("cannot make the f32 form: {e:#}")))?
                .matmuls
        } else {
            0
        };
        lap_log("weights dequantized (f32 form)");
        log::info!("precision {}: {}", choice.precision, choice.reason);
        let weight_bytes = dequantize::initializer_bytes(&proto);
        // The directory is only for weights stored beside the file (external data).
        let dir = path
            .parent()
            .and_then(Path::to_str)
            .filter(|_| embedded.is_none());
        let parsed = onnx
            .parse(&proto, dir)
            .map_err(|e| fail(format!("{e:#}")))?;
        drop(proto);
        if !parsed.unresolved_inputs.is_empty() {
            return Err(fail(format!(
                "unresolved inputs: {:?}",
                parsed.unresolved_inputs
            )));
        }
        let mut model = parsed.model;
        lap_log("graph built");

        // Inputs by name, whatever their order in the file.
        let input_names: Vec<String> = model
            .input_outlets()
            .map_err(|e| fail(e.to_string()))?
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let find = |name: &'static str| input_names.iter().position(|n| n == name);
        let ids_ix = find("input_ids").ok_or(Error::MissingInput {
            path: path.to_path_buf(),
            name: "input_ids",
        })?;
        let mask_ix = find("attention_mask").ok_or(Error::MissingInput {
            path: path.to_path_buf(),
            name: "attention_mask",
        })?;
        let types_ix = find("token_type_ids");
        let mut order = vec![ids_ix, mask_ix];
        order.extend(types_ix);
        let ordered: Vec<String> = order.iter().map(|&i| input_names[i].clone()).collect();
        model
            .set_input_names(&ordered)
            .map_err(|e| fail(e.to_string()))?;
        let seq = model.symbols.sym(SEQ_SYMBOL);
        for ix in 0..ordered.len() {
            model
                .set_input_fact(
                    ix,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![1.to_dim(), seq.to_dim()]),
                )
                .map_err(|e| fail(e.to_string()))?;
        }

        // Every Softmax is a candidate; the shapes after typing tell which are attention.
        let model_outputs: Vec<OutletId> = model
            .output_outlets()
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        let softmax: Vec<OutletId> = model
            .nodes()
            .iter()
            .filter(|n| n.op.name() == "Softmax")
            .map(|n| OutletId::new(n.id, 0))
            .collect();
        let softmax_names: Vec<String> = softmax
            .iter()
            .map(|o| model.node(o.node).name.clone())
            .collect();
        let mut outputs = softmax.clone();
        outputs.extend(&model_outputs);
        model
            .select_output_outlets(&outputs)
            .map_err(|e| fail(e.to_string()))?;

        let mut typed = model.into_typed().map_err(|e| fail(format!("{e:#}")))?;
        crate::quantize::replace_in(&mut typed).map_err(|e| fail(format!("{e:#}")))?;
        lap_log("typed");
        let typed_outputs = typed
            .output_outlets()
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        let mut attention = Vec::new();
        let mut attention_nodes = Vec::new();
        let mut heads = 0;
        let s = seq.to_dim();
        for (i, outlet) in typed_outputs.iter().take(softmax.len()).enumerate() {
            let fact = typed
                .outlet_fact(*outlet)
                .map_err(|e| fail(e.to_string()))?;
            let shape = fact.shape.to_tvec();
            if let [batch, h, rows, cols] = &shape[..] {
                if batch.to_usize().ok() == Some(1) && *rows == s && *cols == s {
                    if let Ok(h) = h.to_usize() {
                        heads = h;
                        attention.push(*outlet);
                        attention_nodes.push(softmax_names[i].clone());
                    }
                }
            }
        }
        if attention.is_empty() {
            return Err(Error::NoAttention {
                path: path.to_path_buf(),
            });
        }
        let read_layers = match &spec.layers {
            Some(layers) => layers.resolve(attention.len())?,
            None => (0..attention.len()).collect(),
        };
        let mut selected: Vec<OutletId> = read_layers.iter().map(|&l| attention[l]).collect();
        let extra_outputs = if spec.keep_model_outputs {
            selected.extend(&typed_outputs[softmax.len()..]);
            typed_outputs.len() - softmax.len()
        } else {
            0
        };
        typed
            .select_output_outlets(&selected)
            .map_err(|e| fail(e.to_string()))?;
        // Declutter, refresh every fact, then optimize: with a symbolic sequence length, tract
        // 0.23.9's declutter folds the always-true `query position >= 0` half of the usual BERT
        // mask (`And([1,1,S,1], [1,1,1,S])`) into the other half and leaves the mask's stored
        // fact at `[1,1,S,S]` while it now computes `[1,1,1,S]` (equivalent once broadcast);
        // the run then fails its shape check. Recomputing the facts makes them agree.
        typed.declutter().map_err(|e| fail(format!("{e:#}")))?;
        typed
            .refresh_output_facts()
            .map_err(|e| fail(format!("{e:#}")))?;
        lap_log("decluttered");
        let stored = StoredFacts {
            layers: attention.len(),
            heads,
            attention_nodes,
            int8_ops,
            dequantized_matmuls,
            has_token_type_ids: types_ix.is_some(),
            weight_bytes,
            load_peak_bytes,
            extra_outputs,
            embedding_rows,
        };
        if let Some(cache) = cache.as_ref() {
            cache.write(&typed, &stored);
            lap_log("model cache written");
        }
        let loaded = Decluttered {
            model: typed,
            stored,
            choice,
            file_bytes,
            from_cache: false,
        };
        Self::plan(path, spec, loaded, started, lap_log)
    }

    /// Optimizes and plans a decluttered model for this CPU (never cached: tract picks its
    /// kernels for the CPU here), and sizes its activations for `spec.max_seq`.
    fn plan(
        path: &Path,
        spec: &EncoderSpec,
        loaded: Decluttered,
        started: std::time::Instant,
        mut lap_log: impl FnMut(&str),
    ) -> Result<Self> {
        let fail = |reason: String| Error::ModelLoad {
            path: path.to_path_buf(),
            reason,
        };
        let Decluttered {
            model: mut typed,
            stored,
            choice,
            file_bytes,
            from_cache,
        } = loaded;
        let max_seq = spec.max_seq;
        let read_layers = match &spec.layers {
            Some(layers) => layers.resolve(stored.layers)?,
            None => (0..stored.layers).collect(),
        };
        let seq = typed.symbols.sym(SEQ_SYMBOL);
        // What `inputs` enforces, told to tract: without it tract 0.23.9's codegen cannot prove
        // that an element-wise op over `S·1536` values is large enough for its vectorized
        // by-scalar and unicast kernels, and leaves GELU, LayerNorm and the residual adds on a
        // generic per-element path (46% of the f32 time at seq 128 on AVX-512, BENCHMARKS.md).
        typed
            .symbols
            .add_assertion(format!("{SEQ_SYMBOL} >= 1"))
            .map_err(|e| fail(format!("{e:#}")))?;
        // The int8 products in a form tract runs without per-element integer ops (the int8
        // form; nothing to do in f32): before `optimize`, which would lower them its own way.
        // On AVX2 without int8 dot products, by this crate's op (`int8_product.rs`); its i16
        // weights are counted with the others.
        let products = match choice.is_int8() {
            true => spec.int8_products_for(&choice.int8_kernel),
            false => ProductKernel::Tract,
        };
        let simplified = crate::quantize::simplify_int8_products(&mut typed, products)
            .map_err(|e| fail(format!("{e:#}")))?;
        let int8_products_on_tract = match products {
            ProductKernel::WidenedAvx2 => crate::quantize::int8_products_left(&typed),
            ProductKernel::Tract => 0,
        };
        crate::quantize::fuse_rescales(&mut typed).map_err(|e| fail(format!("{e:#}")))?;
        // Each attention softmax's NaN guard in one pass instead of two (both forms).
        crate::nan_guard::replace_in(&mut typed).map_err(|e| fail(format!("{e:#}")))?;
        // `optimize`, not `into_optimized`: the latter declutters again, a second pass over a
        // graph that no longer changes.
        typed.optimize().map_err(|e| fail(format!("{e:#}")))?;
        // No executor in the plan: each run picks its thread's pool (`run_on_threads`).
        let plan = TypedSimplePlan::new(typed).map_err(|e| fail(format!("{e:#}")))?;
        lap_log("optimized and planned");
        let kernels = kernels_in(plan.model());
        let longest = SymbolValues::default().with(&seq, max_seq as i64);
        let activations_bytes =
            crate::memory::peak_activations(plan.model(), plan.order_without_consts(), &longest)?;
        let state = TypedSimpleState::new(&plan).map_err(|e| fail(e.to_string()))?;

        let facts = ModelFacts {
            path: path.to_path_buf(),
            layers: stored.layers,
            read_layers,
            heads: stored.heads,
            max_seq,
            attention_nodes: stored.attention_nodes,
            int8_ops: stored.int8_ops,
            precision: choice,
            dequantized_matmuls: stored.dequantized_matmuls,
            has_token_type_ids: stored.has_token_type_ids,
            embedding_rows: stored.embedding_rows,
            threads: spec.threads,
            file_bytes,
            weight_bytes: stored.weight_bytes + simplified.widened_bytes,
            load_peak_bytes: stored.load_peak_bytes,
            activations_bytes,
            load_seconds: started.elapsed().as_secs_f64(),
            from_cache,
            kernels,
            nodes: plan.model().nodes().len(),
            generic_binary_nodes: generic_binary_nodes(plan.model()),
            int8_products_on_tract,
        };
        log::info!(
            "loaded {}: {} attention layers × {} heads, up to {} tokens, {}",
            path.display(),
            facts.layers,
            facts.heads,
            max_seq,
            facts.quantization()
        );
        Ok(Encoder {
            state,
            token_types: facts.has_token_type_ids,
            facts,
            extra_outputs: stored.extra_outputs,
            ids: Vec::with_capacity(max_seq),
        })
    }

    pub fn facts(&self) -> &ModelFacts {
        &self.facts
    }

    /// Runs the encoder on `ids` (1 to `max_seq` of them, [CLS] … [SEP]).
    pub fn run(&mut self, ids: &[u32]) -> Result<EncoderOutput<'_>> {
        let inputs = self.inputs(ids)?;
        let state = &mut self.state;
        let mut attention = run_on_threads(self.facts.threads, || state.run(inputs))?
            .map_err(|e| Error::Inference(format!("{e:#}")))?
            .into_vec();
        let extra = attention.split_off(attention.len() - self.extra_outputs);
        Ok(EncoderOutput {
            attention,
            extra,
            read_layers: &self.facts.read_layers,
        })
    }

    /// The input tensors for `ids`: `[1, n]` ids, a mask of ones (no padding: the sequence
    /// length is the run's own) and, if the model takes them, token types of zeros.
    fn inputs(&mut self, ids: &[u32]) -> Result<TVec<TValue>> {
        let n = ids.len();
        if n == 0 || n > self.facts.max_seq {
            return Err(Error::Inference(format!(
                "{n} tokens for a model planned for 1 to {}",
                self.facts.max_seq
            )));
        }
        let tensor = |values: &[i64]| {
            Tensor::from_shape(&[1, n], values)
                .map(IntoTValue::into_tvalue)
                .map_err(|e| Error::Inference(e.to_string()))
        };
        self.ids.clear();
        self.ids.extend(ids.iter().map(|&i| i64::from(i)));
        let mut inputs: TVec<TValue> = tvec![tensor(&self.ids)?];
        self.ids.fill(1);
        inputs.push(tensor(&self.ids)?);
        if self.token_types {
            self.ids.fill(0);
            inputs.push(tensor(&self.ids)?);
        }
        Ok(inputs)
    }
}

/// What [`ModelFacts::generic_binary_nodes`] counts: tract's generic binary op (f32 or the
/// int8 form's i32) whose output has a symbolic length and more than one value per position of
/// it. Per-token scalars (LayerNorm's mean, `[S, 1]`) and per-weight vectors cost next to
/// nothing either way.
pub(crate) fn generic_binary_nodes(model: &TypedModel) -> usize {
    model
        .nodes()
        .iter()
        .filter(|n| n.op_is::<tract_onnx::tract_core::ops::binary::TypedBinOp>())
        .map(|n| &n.outputs[0].fact)
        .filter(|fact| {
            let concrete: Vec<i64> = fact.shape.iter().filter_map(|d| d.to_i64().ok()).collect();
            concrete.len() < fact.rank() && concrete.iter().product::<i64>() > 1
        })
        .count()
}

/// Kernel names (tract-linalg's `…mmm…` routines) mentioned by the optimized plan's nodes.
fn kernels_in(model: &TypedModel) -> Vec<(String, usize)> {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for node in model.nodes() {
        let info = node.op.info().unwrap_or_default();
        let mut seen_here: Vec<&str> = Vec::new();
        for line in &info {
            for word in line.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if word.contains("mmm") && !seen_here.contains(&word) {
                    seen_here.push(word);
                }
            }
        }
        for word in seen_here {
            match counts.iter_mut().find(|(k, _)| k == word) {
                Some((_, n)) => *n += 1,
                None => counts.push((word.to_string(), 1)),
            }
        }
    }
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    counts
}

/// Time spent in one op kind over profiled runs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OpTime {
    /// tract's op name after optimization (e.g. the fused matrix product).
    pub op: String,
    pub nodes: usize,
    pub total_us: f64,
}

impl Encoder {
    /// Runs like [`Encoder::run`], timing every node of tract's plan; adds the times per op
    /// kind into `acc`. For finding where inference time goes, not for latency figures (the
    /// timing itself costs a little per node).
    pub fn profile(&mut self, ids: &[u32], acc: &mut Vec<OpTime>) -> Result<()> {
        let inputs = self.inputs(ids)?;
        let mut times: Vec<(String, std::time::Duration)> = Vec::new();
        let state = &mut self.state;
        run_on_threads(self.facts.threads, || {
            state.run_plan_with_eval(inputs, |ctx, state, node, input| {
                let t = std::time::Instant::now();
                let r = tract_onnx::tract_core::plan::eval(ctx, state, node, input);
                times.push((node.op.name().to_string(), t.elapsed()));
                r
            })
        })?
        .map_err(|e| Error::Inference(format!("{e:#}")))?;
        for (op, d) in times {
            let us = d.as_secs_f64() * 1e6;
            match acc.iter_mut().find(|o| o.op == op) {
                Some(o) => {
                    o.total_us += us;
                    o.nodes += 1;
                }
                None => acc.push(OpTime {
                    op,
                    nodes: 1,
                    total_us: us,
                }),
            }
        }
        Ok(())
    }
}

/// Whether a load keeps the int8 form it was planned in: always, unless `auto` took it for this
/// crate's AVX2 product (tract's own int8 kernel being slower than f32 there) and
/// `products_on_tract` of the model's int8 products are left to tract's kernel all the same.
/// Under a memory budget the int8 form stays (the f32 form may not fit; the load warns).
fn auto_keeps_int8(spec: &EncoderSpec, choice: &Choice, products_on_tract: usize) -> bool {
    products_on_tract == 0
        || spec.precision != Precision::Auto
        || spec.load_budget.is_some()
        || !choice.is_int8()
        || spec.int8_products.is_some()
        || precision::is_dot_product_kernel(&choice.int8_kernel)
}

/// Runs `f` (a run of the plan) with tract's products and row-wise ops spread over `threads`
/// threads, this one among them (`thread_pool.rs`); one thread runs it inline.
fn run_on_threads<R>(threads: usize, f: impl FnOnce() -> R) -> Result<R> {
    Ok(
        match crate::thread_pool::executor(threads).map_err(Error::Inference)? {
            Some(executor) => multithread::multithread_tract_scope(executor, f),
            None => f(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(precision: &'static str, kernel: &str) -> Choice {
        Choice {
            precision,
            reason: String::new(),
            int8_kernel: kernel.into(),
            for_memory: false,
        }
    }

    /// `auto` gives up int8 only where it took it for this crate's AVX2 product and the model
    /// left products to tract's AVX2 kernel anyway; an explicit choice always holds.
    #[test]
    fn auto_keeps_int8_unless_tracts_avx2_kernel_would_run_products() {
        let auto = EncoderSpec::new(32);
        let int8 = EncoderSpec {
            precision: Precision::Int8,
            ..EncoderSpec::new(32)
        };
        let forced = EncoderSpec {
            int8_products: Some(ProductKernel::WidenedAvx2),
            ..EncoderSpec::new(32)
        };
        let avx2 = choice("int8", "avx2_mmm_i32_8x8");
        let vnni = choice("int8", "avx512vnni_mmm_i32_8x8");
        assert!(auto_keeps_int8(&auto, &avx2, 0));
        assert!(!auto_keeps_int8(&auto, &avx2, 1));
        assert!(auto_keeps_int8(&int8, &avx2, 1));
        assert!(auto_keeps_int8(&forced, &avx2, 1));
        let budget = EncoderSpec {
            load_budget: Some(1 << 30),
            ..EncoderSpec::new(32)
        };
        assert!(auto_keeps_int8(&budget, &avx2, 1));
        assert!(auto_keeps_int8(&auto, &vnni, 3));
        assert!(auto_keeps_int8(
            &auto,
            &choice("f32", "avx2_mmm_i32_8x8"),
            1
        ));
    }
}
