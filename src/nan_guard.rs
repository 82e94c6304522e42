//! The NaN guard after each attention softmax, as one pass.
//!
//! PyTorch's ONNX export of scaled dot-product attention guards each layer's softmax against a
//! fully masked row: `Where(IsNaN(p), 0, p)`. tract 0.23.9 runs that as two generic per-value
//! ops over every `[1, heads, S, S]` probability, a boolean tensor between them: about 8% of
//! the int8 form's inference time at seq 128 on an AVX-512 EPYC (BENCHMARKS.md). [`replace_in`]
//! swaps each such pair for [`NanToZero`], the same values in one pass the compiler vectorizes.
//! The guard is kept, not dropped: a NaN still becomes 0.

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;
use tract_onnx::tract_core::ops::element_wise::ElementWiseOp;
use tract_onnx::tract_core::ops::logic::Iff;

/// Replaces every `Iff(IsNan(x), 0, x)` of f32 `x` whose output has `x`'s shape by
/// [`NanToZero`]`(x)`; returns how many. Other `Iff` nodes are left alone.
pub fn replace_in(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        if !node.op_is::<Iff>() || node.inputs.len() != 3 {
            continue;
        }
        let (cond, zero, x) = (node.inputs[0], node.inputs[1], node.inputs[2]);
        let is_nan = model.node(cond.node);
        let guards_x = is_nan
            .op_as::<ElementWiseOp>()
            .is_some_and(|op| op.0.name() == "IsNan")
            && is_nan.inputs.first() == Some(&x);
        let zero_fact = model.outlet_fact(zero)?;
        let zero_is_zero = zero_fact.konst.is_some()
            && zero_fact
                .uniform
                .as_ref()
                .and_then(|u| u.cast_to_scalar::<f32>().ok())
                .is_some_and(|v| v == 0.0);
        let x_fact = model.outlet_fact(x)?;
        if !(guards_x
            && zero_is_zero
            && x_fact.datum_type == f32::datum_type()
            && node.outputs[0].fact.shape == x_fact.shape)
        {
            continue;
        }
        let mut patch = TypedModelPatch::new("NaN guard in one pass");
        let tap = patch.tap_model(model, x)?;
        let out = patch.wire_node(node.name.clone(), NanToZero, &[tap])?[0];
        patch.shunt_outside(model, OutletId::new(id, 0), out)?;
        patch.apply(model)?;
        replaced += 1;
    }
    Ok(replaced)
}

/// `x` with every NaN replaced by 0 (ONNX `Where(IsNaN(x), 0, x)`).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct NanToZero;

impl Op for NanToZero {
    fn name(&self) -> StaticName {
        "NanToZero".into()
    }

    op_as_typed_op!();
}

impl EvalOp for NanToZero {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        // In place when this op holds the only reference (a softmax read as attention is
        // shared with the model's outputs, and is copied).
        let mut tensor = input.into_tensor();
        let n = tensor.shape().last().copied().unwrap_or(1).max(1);
        let mut tensor_plain = tensor.try_as_plain_ram_mut()?;
        let xs = tensor_plain.as_slice_mut::<f32>()?;
        // Rows shared out over `--threads` as tract shares its softmax.
        multithread::par_chunks_mut(xs, n, xs.len(), |_, xs| {
            nan_to_zero(xs);
            Ok(())
        })?;
        Ok(tvec!(tensor.into_tvalue()))
    }
}

impl TypedOp for NanToZero {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(inputs[0].without_value()))
    }

    as_op!();
}

/// Every NaN of `xs` set to 0.
pub fn nan_to_zero(xs: &mut [f32]) {
    for x in xs {
        // A select, not a branch: one compare and one blend per vector.
        *x = if x.is_nan() { 0.0 } else { *x };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_onnx::{typed, value_info};
    use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

    /// `y = Where(IsNaN(x), fill, x)` with `x` of shape `[2, S]`; with `fill` 0, as the attention
    /// export writes it.
    fn guard_model(fill: f32) -> TypedModel {
        let f32_type = 1;
        let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            op_type: op.into(),
            ..Default::default()
        };
        let nodes = vec![
            node("IsNaN", &["x"], "nan"),
            node("Where", &["nan", "zero", "x"], "y"),
        ];
        let graph = GraphProto {
            initializer: vec![TensorProto {
                name: "zero".into(),
                dims: vec![1, 1],
                data_type: f32_type,
                float_data: vec![fill],
                ..Default::default()
            }],
            input: vec![value_info("x", f32_type, &["2", "S"])],
            output: vec![value_info("y", f32_type, &["2", "S"])],
            ..Default::default()
        };
        let mut model = typed(nodes, graph);
        model.declutter().unwrap();
        model
    }

    fn run(model: TypedModel, xs: &[f32]) -> Vec<u32> {
        let plan = model.into_optimized().unwrap().into_runnable().unwrap();
        let x = Tensor::from_shape(&[2, xs.len() / 2], xs).unwrap();
        let out = plan.run(tvec!(x.into_tvalue())).unwrap();
        let plain = out[0].try_as_plain_ram().unwrap();
        plain
            .as_slice::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect()
    }

    /// The same bits as tract's two ops: NaNs (quiet, signalling, negative) to +0, every other
    /// value, -0 and the infinities included, kept.
    #[test]
    fn same_values_as_the_onnx_guard() {
        let stock = guard_model(0.0);
        let mut ours = stock.clone();
        assert_eq!(replace_in(&mut ours).unwrap(), 1);
        assert!(ours.nodes().iter().any(|n| n.op_is::<NanToZero>()));
        let mut xs: Vec<f32> = (0..37).map(|i| (i as f32 - 18.0) / 7.0).collect();
        xs.extend([
            f32::NAN,
            -f32::NAN,
            f32::from_bits(0x7f80_0001),
            -0.0,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE / 2.0,
        ]);
        xs.push(0.25);
        xs.extend_from_slice(&xs.clone());
        let (a, b) = (run(stock, &xs), run(ours, &xs));
        assert_eq!(a, b);
        assert_eq!(b[37], 0.0f32.to_bits());
        assert_eq!(b[40], (-0.0f32).to_bits());
    }

    /// Only the guard is replaced: with another fill value it is another function, and stays
    /// tract's.
    #[test]
    fn other_selects_are_left_alone() {
        let mut xs = [1.0f32, f32::NAN, 3.0, 4.0];
        nan_to_zero(&mut xs);
        assert_eq!(xs, [1.0, 0.0, 3.0, 4.0]);
        assert_eq!(replace_in(&mut guard_model(1.0)).unwrap(), 0);
    }
}
