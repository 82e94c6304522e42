//! Stage 2: token ids → fixed-shape tensors → tract → attention probabilities.
//!
//! The path follows tract's own examples: load the ONNX graph, fix the input shapes, pick the
//! outputs, optimize, plan once, run. The one addition is that we make the attention Softmax
//! nodes graph outputs *before* optimizing, so any BERT-family ONNX works, not only files
//! exported with attention outputs.

use std::path::{Path, PathBuf};

use tract_onnx::prelude::*;

use crate::error::{Error, Result};

/// Facts about the loaded encoder.
#[derive(Debug, Clone)]
pub struct ModelFacts {
    pub path: PathBuf,
    /// Number of attention layers found (one attention Softmax each).
    pub layers: usize,
    pub heads: usize,
    pub max_seq: usize,
    /// Graph names of the attention Softmax nodes, in layer order.
    pub attention_nodes: Vec<String>,
    /// Whether the graph computes in int8 (MatMulInteger / DynamicQuantizeLinear nodes).
    pub int8_ops: usize,
    /// Whether the model takes `token_type_ids`.
    pub has_token_type_ids: bool,
    /// Threads tract's matrix products run on.
    pub threads: usize,
    /// Size of the ONNX file. tract keeps the initializers repacked for its kernels, partly
    /// inside the optimized ops where they cannot be counted from outside; what it holds was
    /// measured at 1.02× the file size for the shipped int8 model and 0.96× for its fp32 source.
    pub file_bytes: u64,
    /// Peak bytes of the tensors alive at once during one run (see `memory.rs`).
    pub activations_bytes: u64,
    /// Seconds spent loading and optimizing (cold start).
    pub load_seconds: f64,
    /// Nodes in the optimized graph.
    pub nodes: usize,
    /// Matrix-product kernels tract picked for this CPU, with how many nodes use each.
    pub kernels: Vec<(String, usize)>,
}

/// A BERT encoder planned for batch 1 and a fixed sequence length.
pub struct Encoder {
    state: TypedSimpleState,
    facts: ModelFacts,
    /// Input tensors, allocated once; each run overwrites them.
    input_ids: Tensor,
    attention_mask: Tensor,
    token_type_ids: Option<Tensor>,
    /// Number of extra (non-attention) outputs kept after the attention ones.
    extra_outputs: usize,
}

/// The outputs of one run: one `[1, heads, seq, seq]` f32 tensor per layer, plus the model's own
/// outputs when asked for.
pub struct EncoderOutput {
    pub attention: Vec<TValue>,
    pub extra: Vec<TValue>,
}

impl EncoderOutput {
    /// Attention probabilities of `layer` as `[heads, seq, seq]`.
    pub fn layer(&self, layer: usize) -> Result<tract_ndarray::ArrayView3<'_, f32>> {
        let view = self.attention[layer]
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
        if self.int8_ops > 0 {
            format!(
                "dynamic int8 ({} DynamicQuantizeLinear / MatMulInteger ops)",
                self.int8_ops
            )
        } else {
            "none (float)".into()
        }
    }
}

impl Encoder {
    /// Loads and plans `path` for sequences of exactly `max_seq` tokens. With
    /// `keep_model_outputs`, the graph's own outputs (e.g. `last_hidden_state`) are computed too;
    /// without, tract prunes everything the attention does not need.
    pub fn load(
        path: &Path,
        max_seq: usize,
        threads: usize,
        keep_model_outputs: bool,
    ) -> Result<Self> {
        let started = std::time::Instant::now();
        let fail = |reason: String| Error::ModelLoad {
            path: path.to_path_buf(),
            reason,
        };
        if !crate::files::is_file(path) {
            return Err(fail("file not found".into()));
        }
        // Exports carry symbolic value_info/output shapes that clash with the fixed shapes we set.
        let onnx = tract_onnx::onnx()
            .with_ignore_output_shapes(true)
            .with_ignore_value_info(true);
        let mut model = match crate::files::embedded(path) {
            Some(bytes) => onnx.model_for_read(&mut &bytes[..]),
            None => onnx.model_for_path(path),
        }
        .map_err(|e| fail(format!("{e:#}")))?;

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
        for ix in 0..ordered.len() {
            model
                .set_input_fact(
                    ix,
                    InferenceFact::dt_shape(i64::datum_type(), tvec![1, max_seq]),
                )
                .map_err(|e| fail(e.to_string()))?;
        }

        let int8_ops = model
            .nodes()
            .iter()
            .filter(|n| {
                let op = n.op.name();
                op == "MatMulInteger" || op == "DynamicQuantizeLinear" || op == "QLinearMatMul"
            })
            .count();

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
        let typed_outputs = typed
            .output_outlets()
            .map_err(|e| fail(e.to_string()))?
            .to_vec();
        let mut attention = Vec::new();
        let mut attention_nodes = Vec::new();
        let mut heads = 0;
        for (i, outlet) in typed_outputs.iter().take(softmax.len()).enumerate() {
            let fact = typed
                .outlet_fact(*outlet)
                .map_err(|e| fail(e.to_string()))?;
            if let Some(shape) = fact.shape.as_concrete() {
                if shape.len() == 4 && shape[0] == 1 && shape[2] == max_seq && shape[3] == max_seq {
                    heads = shape[1];
                    attention.push(*outlet);
                    attention_nodes.push(softmax_names[i].clone());
                }
            }
        }
        if attention.is_empty() {
            return Err(Error::NoAttention {
                path: path.to_path_buf(),
            });
        }
        let mut selected = attention.clone();
        let extra_outputs = if keep_model_outputs {
            selected.extend(&typed_outputs[softmax.len()..]);
            typed_outputs.len() - softmax.len()
        } else {
            0
        };
        typed
            .select_output_outlets(&selected)
            .map_err(|e| fail(e.to_string()))?;
        let options = RunOptions {
            executor: (threads > 1).then(|| multithread::Executor::multithread(threads)),
            ..RunOptions::default()
        };
        let plan = typed
            .into_optimized()
            .and_then(|m| TypedSimplePlan::new_with_options(m, &options))
            .map_err(|e| fail(format!("{e:#}")))?;
        let kernels = kernels_in(plan.model());
        let file_bytes = crate::files::len(path).unwrap_or(0);
        let activations_bytes =
            crate::memory::peak_activations(plan.model(), plan.order_without_consts())?;
        let state = TypedSimpleState::new(&plan).map_err(|e| fail(e.to_string()))?;

        let facts = ModelFacts {
            path: path.to_path_buf(),
            layers: attention.len(),
            heads,
            max_seq,
            attention_nodes,
            int8_ops,
            has_token_type_ids: types_ix.is_some(),
            threads,
            file_bytes,
            activations_bytes,
            load_seconds: started.elapsed().as_secs_f64(),
            kernels,
            nodes: plan.model().nodes().len(),
        };
        log::info!(
            "loaded {}: {} attention layers × {} heads, seq {}, {} int8 ops",
            path.display(),
            facts.layers,
            facts.heads,
            max_seq,
            int8_ops
        );
        let zeros = || Tensor::zero::<i64>(&[1, max_seq]).expect("small i64 tensor");
        Ok(Encoder {
            state,
            input_ids: zeros(),
            attention_mask: zeros(),
            token_type_ids: types_ix.map(|_| zeros()),
            facts,
            extra_outputs,
        })
    }

    pub fn facts(&self) -> &ModelFacts {
        &self.facts
    }

    /// Runs the encoder on `ids` (at most `max_seq` of them); the rest is padding with
    /// attention mask 0.
    pub fn run(&mut self, ids: &[u32], pad_id: u32) -> Result<EncoderOutput> {
        let inputs = self.inputs(ids, pad_id)?;
        let mut attention = self
            .state
            .run(inputs)
            .map_err(|e| Error::Inference(format!("{e:#}")))?
            .into_vec();
        let extra = attention.split_off(attention.len() - self.extra_outputs);
        Ok(EncoderOutput { attention, extra })
    }

    /// Writes `ids` and the mask into the input tensors allocated at load and hands tract
    /// copies of them (8 × max_seq bytes each: tract takes its inputs by value).
    fn inputs(&mut self, ids: &[u32], pad_id: u32) -> Result<TVec<TValue>> {
        let n = ids.len();
        if n > self.facts.max_seq {
            return Err(Error::Inference(format!(
                "{n} tokens for a model planned for {}",
                self.facts.max_seq
            )));
        }
        fill(&mut self.input_ids, |i| {
            i64::from(ids.get(i).copied().unwrap_or(pad_id))
        })?;
        fill(&mut self.attention_mask, |i| i64::from(i < n))?;
        let mut inputs: TVec<TValue> = tvec![
            self.input_ids.clone().into_tvalue(),
            self.attention_mask.clone().into_tvalue()
        ];
        if let Some(types) = &self.token_type_ids {
            inputs.push(types.clone().into_tvalue());
        }
        Ok(inputs)
    }
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
    pub fn profile(&mut self, ids: &[u32], pad_id: u32, acc: &mut Vec<OpTime>) -> Result<()> {
        let inputs = self.inputs(ids, pad_id)?;
        let mut times: Vec<(String, std::time::Duration)> = Vec::new();
        self.state
            .run_plan_with_eval(inputs, |ctx, state, node, input| {
                let t = std::time::Instant::now();
                let r = tract_onnx::tract_core::plan::eval(ctx, state, node, input);
                times.push((node.op.name().to_string(), t.elapsed()));
                r
            })
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

fn fill(tensor: &mut Tensor, value: impl Fn(usize) -> i64) -> Result<()> {
    let mut view = tensor
        .to_plain_array_view_mut::<i64>()
        .map_err(|e| Error::Inference(e.to_string()))?;
    for (i, v) in view.iter_mut().enumerate() {
        *v = value(i);
    }
    Ok(())
}
