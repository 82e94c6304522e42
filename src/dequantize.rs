//! The f32 form of a dynamically quantized int8 model, made at load from its int8 weights.
//!
//! onnxruntime's `quantize_dynamic` writes every matrix product with a constant weight as
//!
//! ```text
//! x ─► DynamicQuantizeLinear ─► x_q, x_scale, x_zp
//! MatMulInteger(x_q, W_q, x_zp, W_zp) ─► Cast(float) ─► Mul(·, Mul(x_scale, W_scale)) ─► y
//! ```
//!
//! Here each such chain becomes one `MatMul(x, W)` against the weight dequantized once,
//! `W = (W_q − W_zp) · W_scale` (per output column or per tensor), so activations are never
//! quantized and tract runs its f32 kernels. The weights are the int8 ones, not the fp32 weights
//! they came from: one shipped file serves both forms. Everything else in the graph (the int8
//! embedding tables with their DequantizeLinear, LayerNorm, attention) stays as it is.
//!
//! The rewrite works on the ONNX protobuf before tract builds its graph, so tract sees an
//! ordinary f32 model and optimizes it as one.

use std::collections::{HashMap, HashSet};

use tract_onnx::pb::{tensor_proto::DataType, ModelProto, NodeProto, TensorProto};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::{bail, format_err, TractErrorContext};

/// What the rewrite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dequantized {
    /// Matrix products turned into f32 ones.
    pub matmuls: usize,
}

/// Whether the graph computes matrix products in int8.
pub fn has_int8_matmuls(model: &ModelProto) -> bool {
    nodes(model).any(|n| n.op_type == "MatMulInteger" || n.op_type == "QLinearMatMul")
}

fn nodes(model: &ModelProto) -> impl Iterator<Item = &NodeProto> {
    model.graph.iter().flat_map(|g| g.node.iter())
}

/// Rewrites every dynamic-quantization chain of `model` into an f32 `MatMul`. Fails, leaving
/// nothing half-done that tract would run, if an int8 product is not such a chain (a static
/// QLinearMatMul, a weight computed at run time).
pub fn dequantize_weights(model: &mut ModelProto) -> TractResult<Dequantized> {
    let onnx = tract_onnx::onnx();
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| format_err!("the model has no graph"))?;
    let init_ix: HashMap<String, usize> = graph
        .initializer
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in graph.node.iter().enumerate() {
        for o in &n.output {
            producer.insert(o, i);
        }
        for input in &n.input {
            consumers.entry(input).or_default().push(i);
        }
    }
    let only_consumer = |name: &str, op: &str| -> Option<usize> {
        match consumers.get(name).map(Vec::as_slice) {
            Some(&[c]) if graph.node[c].op_type == op => Some(c),
            _ => None,
        }
    };
    let weight = |name: &str| -> TractResult<Tensor> {
        let ix = *init_ix
            .get(name)
            .ok_or_else(|| format_err!("`{name}` is not a constant weight"))?;
        tract_onnx::tensor::load_tensor(&*onnx.provider, &graph.initializer[ix], None)
    };

    // (index of the MatMulInteger, the new MatMul, its weight)
    let mut rewrites: Vec<(usize, NodeProto, TensorProto)> = Vec::new();
    let mut dropped: HashSet<usize> = HashSet::new();
    for (i, n) in graph.node.iter().enumerate() {
        if n.op_type == "QLinearMatMul" {
            bail!(
                "node `{}` is a static QLinearMatMul: only onnxruntime's dynamic quantization \
                 (DynamicQuantizeLinear + MatMulInteger) has an f32 form made at load",
                n.name
            );
        }
        if n.op_type != "MatMulInteger" {
            continue;
        }
        let unmatched = || format_err!("node `{}`: not a dynamic-quantization chain", n.name);
        let input = |k: usize| n.input.get(k).map(String::as_str).filter(|s| !s.is_empty());
        let (x_q, w_q) = (
            input(0).ok_or_else(unmatched)?,
            input(1).ok_or_else(unmatched)?,
        );
        let quantize = &graph.node[*producer.get(x_q).ok_or_else(unmatched)?];
        if quantize.op_type != "DynamicQuantizeLinear"
            || quantize.output.first().map(String::as_str) != Some(x_q)
            || input(2).is_some_and(|zp| quantize.output.get(2).map(String::as_str) != Some(zp))
        {
            return Err(unmatched());
        }
        let cast = only_consumer(&n.output[0], "Cast").ok_or_else(unmatched)?;
        let mul = only_consumer(&graph.node[cast].output[0], "Mul").ok_or_else(unmatched)?;
        let scales = graph.node[mul]
            .input
            .iter()
            .find(|s| **s != graph.node[cast].output[0])
            .ok_or_else(unmatched)?;
        let scales_mul = *producer.get(scales.as_str()).ok_or_else(unmatched)?;
        let x_scale = &quantize.output[1];
        let w_scale = graph.node[scales_mul]
            .input
            .iter()
            .find(|s| *s != x_scale)
            .filter(|_| {
                graph.node[scales_mul].op_type == "Mul"
                    && graph.node[scales_mul].input.contains(x_scale)
            })
            .ok_or_else(unmatched)?;

        let w_zp = input(3).map(weight).transpose()?;
        let w = dequantized(
            &graph.initializer[*init_ix.get(w_q).ok_or_else(unmatched)?],
            w_zp.as_ref(),
            &weight(w_scale)?,
        )
        .with_context(|| format!("node `{}`", n.name))?;
        let name = format!("{w_q}_dequantized");
        let matmul = NodeProto {
            name: format!("{}_f32", n.name),
            op_type: "MatMul".into(),
            input: vec![quantize.input[0].clone(), name.clone()],
            output: graph.node[mul].output.clone(),
            ..NodeProto::default()
        };
        rewrites.push((i, matmul, TensorProto { name, ..w }));
        dropped.extend([cast, mul]);
        if consumers.get(scales.as_str()).is_some_and(|c| c == &[mul]) {
            dropped.insert(scales_mul);
        }
    }
    let matmuls = rewrites.len();
    let mut new_weights = Vec::with_capacity(matmuls);
    for (i, matmul, w) in rewrites {
        graph.node[i] = matmul;
        new_weights.push(w);
    }
    let mut ix = 0;
    graph.node.retain(|_| {
        ix += 1;
        !dropped.contains(&(ix - 1))
    });
    // Quantizations nothing reads any more, then initializers nothing reads any more.
    let read: HashSet<String> = graph.node.iter().flat_map(|n| n.input.clone()).collect();
    graph.node.retain(|n| {
        n.op_type != "DynamicQuantizeLinear" || n.output.iter().any(|o| read.contains(o))
    });
    let read: HashSet<String> = graph.node.iter().flat_map(|n| n.input.clone()).collect();
    let outputs: HashSet<&String> = graph.output.iter().map(|o| &o.name).collect();
    graph
        .initializer
        .retain(|t| read.contains(&t.name) || outputs.contains(&t.name));
    graph.initializer.extend(new_weights);
    Ok(Dequantized { matmuls })
}

/// `(w_q − zero_point) · scale` as an f32 initializer (unnamed), with the zero point and the
/// scale per tensor (one value) or per output column (the last axis of `w_q`). One pass from
/// the int8 bytes to the f32 bytes: this runs at every load of the f32 form (36 weights, 10.6
/// million values for the shipped model).
fn dequantized(
    w_q: &TensorProto,
    zero_point: Option<&Tensor>,
    scale: &Tensor,
) -> TractResult<TensorProto> {
    let columns = *w_q
        .dims
        .last()
        .ok_or_else(|| format_err!("a scalar weight"))? as usize;
    let per_column = |t: &Tensor, what: &str| -> TractResult<Vec<f32>> {
        let v: Vec<f32> = t
            .cast_to::<f32>()?
            .to_plain_array_view::<f32>()?
            .iter()
            .copied()
            .collect();
        match v.len() {
            1 => Ok(vec![v[0]; columns]),
            n if n == columns => Ok(v),
            n => bail!("{what} has {n} values for {columns} output columns"),
        }
    };
    let scale = per_column(scale, "the weight scale")?;
    let zero = match zero_point {
        Some(z) => per_column(z, "the weight zero point")?,
        None => vec![0.0; columns],
    };
    let elements: usize = w_q.dims.iter().map(|&d| d as usize).product();
    let mut raw = vec![0u8; elements * 4];
    // Row-major: the last axis is the output column. Generic, so each storage gets its own loop.
    fn write(
        raw: &mut [u8],
        columns: usize,
        zero: &[f32],
        scale: &[f32],
        values: impl Iterator<Item = f32>,
    ) {
        for ((out, v), c) in raw
            .chunks_exact_mut(4)
            .zip(values)
            .zip((0..columns).cycle())
        {
            out.copy_from_slice(&((v - zero[c]) * scale[c]).to_le_bytes());
        }
    }
    // raw_data holds one byte per value; some exporters put int8 values in int32_data.
    let (int8, uint8) = (DataType::Int8 as i32, DataType::Uint8 as i32);
    let stored = if w_q.raw_data.is_empty() {
        w_q.int32_data.len()
    } else {
        w_q.raw_data.len()
    };
    if stored != elements {
        bail!("{stored} values for dims {:?}", w_q.dims);
    }
    let (z, sc) = (&zero[..], &scale[..]);
    match w_q.data_type {
        t if t == int8 && !w_q.raw_data.is_empty() => write(
            &mut raw,
            columns,
            z,
            sc,
            w_q.raw_data.iter().map(|&b| b as i8 as f32),
        ),
        t if t == uint8 && !w_q.raw_data.is_empty() => write(
            &mut raw,
            columns,
            z,
            sc,
            w_q.raw_data.iter().map(|&b| b as f32),
        ),
        t if t == int8 || t == uint8 => write(
            &mut raw,
            columns,
            z,
            sc,
            w_q.int32_data.iter().map(|&v| v as f32),
        ),
        t => bail!("weight of ONNX data type {t}, not int8 or uint8"),
    }
    Ok(TensorProto {
        dims: w_q.dims.clone(),
        data_type: DataType::Float as i32,
        raw_data: raw,
        ..TensorProto::default()
    })
}

/// What [`dequantize_weights`] adds to [`initializer_bytes`], computed without running it: each
/// int8 weight of a `MatMulInteger` becomes f32 (4 bytes per element instead of 1). The zero
/// points and scales it drops are not taken off (a few KiB: an upper bound).
pub fn f32_widening_bytes(model: &ModelProto) -> u64 {
    3 * int8_weight_elements(model)
}

/// Elements of the int8 weights of the `MatMulInteger` nodes (what `int8_product.rs` widens
/// to i16 on AVX2: one byte more each).
pub fn int8_weight_elements(model: &ModelProto) -> u64 {
    let Some(graph) = model.graph.as_ref() else {
        return 0;
    };
    let weights: HashSet<&str> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "MatMulInteger")
        .filter_map(|n| n.input.get(1).map(String::as_str))
        .collect();
    graph
        .initializer
        .iter()
        .filter(|t| weights.contains(t.name.as_str()))
        .map(elements)
        .sum()
}

/// Bytes of the constants as the protobuf stores them (no folding).
pub fn stored_bytes(model: &ModelProto) -> u64 {
    model
        .graph
        .iter()
        .flat_map(|g| g.initializer.iter())
        .map(stored_size)
        .sum()
}

fn elements(t: &TensorProto) -> u64 {
    t.dims.iter().map(|&d| d.max(0) as u64).product()
}

/// Bytes of one constant in its stored type.
fn stored_size(t: &TensorProto) -> u64 {
    DataType::try_from(t.data_type)
        .ok()
        .and_then(|dt| DatumType::try_from(dt).ok())
        .map_or(t.raw_data.len() as u64, |dt| {
            elements(t) * dt.size_of() as u64
        })
}

/// Bytes of the constants the graph holds (its initializers), as tract will hold them: a
/// constant dequantized by a `DequantizeLinear` node (weight-only quantization) is folded to f32
/// at load, so it counts 4 bytes per element.
pub fn initializer_bytes(model: &ModelProto) -> u64 {
    constants(model)
        .map(|(t, folded)| {
            if folded {
                elements(t) * 4
            } else {
                stored_size(t)
            }
        })
        .sum()
}

/// Bytes, as stored, of the largest constant a `DequantizeLinear` node widens (tract folds it
/// to f32 after the parse, holding both for a moment); 0 when there is none.
pub fn largest_folded_bytes(model: &ModelProto) -> u64 {
    constants(model)
        .filter(|&(_, folded)| folded)
        .map(|(t, _)| stored_size(t))
        .max()
        .unwrap_or(0)
}

/// The graph's initializers, each with whether a `DequantizeLinear` node reads it (weight-only
/// quantization: tract folds it to f32 at load).
fn constants(model: &ModelProto) -> impl Iterator<Item = (&TensorProto, bool)> {
    let graph = model.graph.as_ref();
    let folded: HashSet<&str> = graph
        .iter()
        .flat_map(|g| g.node.iter())
        .filter(|n| n.op_type == "DequantizeLinear")
        .filter_map(|n| n.input.first().map(String::as_str))
        .collect();
    graph
        .into_iter()
        .flat_map(|g| g.initializer.iter())
        .map(move |t| (t, folded.contains(t.name.as_str())))
}

/// Rows of the embedding table the token ids index: the data of the `Gather` that reads
/// `input` (through casts and reshapes), an initializer, possibly dequantized. None when the
/// graph does not read its ids so (then nothing is checked against the tokenizer).
pub fn embedding_rows(model: &ModelProto, input: &str) -> Option<usize> {
    let graph = model.graph.as_ref()?;
    // The names that carry the ids: the input, then what casts and reshapes make of it.
    let mut ids = vec![input];
    let mut i = 0;
    while i < ids.len() {
        for n in &graph.node {
            let passes_ids = matches!(
                n.op_type.as_str(),
                "Cast" | "Unsqueeze" | "Reshape" | "Identity" | "Squeeze" | "Flatten"
            );
            if passes_ids && n.input.first().map(String::as_str) == Some(ids[i]) {
                ids.extend(n.output.iter().map(String::as_str));
            }
        }
        i += 1;
    }
    let gather = graph.node.iter().find(|n| {
        n.op_type == "Gather" && n.input.get(1).is_some_and(|x| ids.contains(&x.as_str()))
    })?;
    let mut table = gather.input.first()?.as_str();
    // A table stored int8 goes through a DequantizeLinear.
    if let Some(dq) = graph
        .node
        .iter()
        .find(|n| n.op_type == "DequantizeLinear" && n.output.iter().any(|o| o == table))
    {
        table = dq.input.first()?.as_str();
    }
    let init = graph.initializer.iter().find(|t| t.name == table)?;
    init.dims.first().and_then(|&d| usize::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::pb::GraphProto;

    fn node(op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
        NodeProto {
            name: format!("{op}_{}", outputs[0]),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            ..NodeProto::default()
        }
    }

    fn tensor(name: &str, dims: &[i64], data_type: DataType, raw: Vec<u8>) -> TensorProto {
        TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type as i32,
            raw_data: raw,
            ..TensorProto::default()
        }
    }

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// The chain onnxruntime's quantize_dynamic writes, around a 2 × 2 weight with a zero point
    /// and a scale per output column.
    fn dynamic_int8_model() -> ModelProto {
        ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("DynamicQuantizeLinear", &["x"], &["x_q", "x_scale", "x_zp"]),
                    node("Mul", &["x_scale", "w_scale"], &["scales"]),
                    node("MatMulInteger", &["x_q", "w_q", "x_zp", "w_zp"], &["y_i32"]),
                    node("Cast", &["y_i32"], &["y_f"]),
                    node("Mul", &["y_f", "scales"], &["y"]),
                    node("Relu", &["y"], &["out"]),
                ],
                initializer: vec![
                    tensor("w_q", &[2, 2], DataType::Int8, vec![1, (-2i8) as u8, 3, 4]),
                    tensor("w_zp", &[2], DataType::Int8, vec![0, 1]),
                    tensor("w_scale", &[2], DataType::Float, f32s(&[0.5, 2.0])),
                ],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        }
    }

    #[test]
    fn a_dynamic_int8_chain_becomes_one_f32_matmul() {
        let mut model = dynamic_int8_model();
        assert!(has_int8_matmuls(&model));
        assert_eq!(dequantize_weights(&mut model).unwrap().matmuls, 1);
        assert!(!has_int8_matmuls(&model));
        let g = model.graph.unwrap();
        let ops: Vec<&str> = g.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            ["MatMul", "Relu"],
            "the quantization and its glue are gone"
        );
        assert_eq!(g.node[0].input, ["x", "w_q_dequantized"]);
        assert_eq!(g.node[0].output, ["y"]);
        assert_eq!(g.initializer.len(), 1, "only the f32 weight is left");
        let w = &g.initializer[0];
        assert_eq!(
            (w.dims.as_slice(), w.data_type),
            (&[2i64, 2][..], DataType::Float as i32)
        );
        // (w_q − zp) · scale per column: [[(1−0)·0.5, (−2−1)·2], [(3−0)·0.5, (4−1)·2]]
        assert_eq!(w.raw_data, f32s(&[0.5, -6.0, 1.5, 6.0]));
        assert_eq!(
            initializer_bytes(&ModelProto {
                graph: Some(g),
                ..ModelProto::default()
            }),
            16
        );
    }

    /// Weight-only quantization: a table that a `DequantizeLinear` reads is held in f32 once
    /// folded (4 bytes an element), stored in int8, and it is the largest folded constant.
    #[test]
    fn constants_a_dequantize_linear_reads_count_as_folded_f32() {
        let model = ModelProto {
            graph: Some(GraphProto {
                node: vec![
                    node("DequantizeLinear", &["table", "t_scale"], &["table_f"]),
                    node("DequantizeLinear", &["small", "s_scale"], &["small_f"]),
                ],
                initializer: vec![
                    tensor("table", &[3, 4], DataType::Int8, vec![0; 12]),
                    tensor("t_scale", &[], DataType::Float, f32s(&[0.5])),
                    tensor("small", &[2], DataType::Int8, vec![0; 2]),
                    tensor("s_scale", &[], DataType::Float, f32s(&[0.5])),
                    tensor("bias", &[5], DataType::Float, f32s(&[0.0; 5])),
                ],
                ..GraphProto::default()
            }),
            ..ModelProto::default()
        };
        // 12 and 2 elements in f32, two scalar scales and a bias of 5 as stored
        assert_eq!(initializer_bytes(&model), (12 + 2) * 4 + 4 + 4 + 5 * 4);
        assert_eq!(stored_bytes(&model), 12 + 2 + 4 + 4 + 5 * 4);
        assert_eq!(largest_folded_bytes(&model), 12);
        assert_eq!(largest_folded_bytes(&ModelProto::default()), 0);
    }

    #[test]
    fn int8_products_that_are_not_the_dynamic_chain_are_refused() {
        let mut model = dynamic_int8_model();
        // The scale is read at run time, not a constant weight scale: not the chain.
        model.graph.as_mut().unwrap().node[1].input[1] = "x".into();
        assert!(dequantize_weights(&mut model).is_err());

        let mut model = dynamic_int8_model();
        model.graph.as_mut().unwrap().node[2].op_type = "QLinearMatMul".into();
        let err = dequantize_weights(&mut model).unwrap_err().to_string();
        assert!(err.contains("QLinearMatMul"), "{err}");
    }
}
