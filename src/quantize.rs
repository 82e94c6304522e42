//! The int8 form's own graph changes: ONNX `DynamicQuantizeLinear` by an op of this crate, and
//! the int8 products rewritten before tract lowers them. Both compute what tract-onnx's graph
//! computes, bit for bit.
//!
//! Quantizing: every int8 product of the shipped model starts by quantizing its f32 input to
//! u8 with a scale and zero point taken from that input's range (ONNX `DynamicQuantizeLinear`).
//! tract-onnx 0.23.9 (`DynamicQuantizeLinearU8`) finds the range with a branchy fold over an
//! ndarray view and rounds each value with `round_ties_even`, a library call per value on
//! baseline x86-64: 45% of the int8 form's inference time on an AVX-512 EPYC (BENCHMARKS.md).
//! Here the range is a running min / max over 16 lanes and the rounding adds and takes away
//! 1.5·2²³, which rounds to the nearest integer, ties to even, exactly, for any value below 2²²
//! in magnitude. The quantized values `x / scale` are never above 255 in magnitude when the
//! scale is a normal float; a range whose scale is zero, subnormal or infinite takes
//! tract-onnx's own formula. [`replace_in`] swaps the op into a typed graph by node, so
//! tract's parsing of the ONNX node is kept.
//!
//! The products: [`simplify_int8_products`] (why, there).

use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// The name tract-onnx 0.23.9 gives its op in a typed graph.
const TRACT_OP_NAME: &str = "DynamicQuantizeLinear";
const TRACT_TYPED_OP_NAME: &str = "DynamicQuantizeLinearU8";

/// Values per step of the range scan: one AVX-512 register, four NEON ones.
const LANES: usize = 16;

/// 1.5·2²³: added to and taken from a float of magnitude below 2²², it leaves that float
/// rounded to an integer, ties to even (the sum lies where the float spacing is 1).
const ROUNDING: f32 = 12_582_912.0;

/// Replaces every tract-onnx `DynamicQuantizeLinearU8` node of `model` with [`DynamicQuantize`];
/// returns how many. A node whose facts are not the op's (one f32 input; u8, f32 and u8
/// outputs) is left alone.
pub fn replace_in(model: &mut TypedModel) -> TractResult<usize> {
    let mut replaced = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        if node.op.name() != TRACT_TYPED_OP_NAME || node.inputs.len() != 1 {
            continue;
        }
        let input = model.outlet_fact(node.inputs[0])?;
        let outputs: Vec<DatumType> = node.outputs.iter().map(|o| o.fact.datum_type).collect();
        if input.datum_type != f32::datum_type()
            || outputs != [u8::datum_type(), f32::datum_type(), u8::datum_type()]
        {
            continue;
        }
        model.node_mut(id).op = Box::new(DynamicQuantize);
        replaced += 1;
    }
    Ok(replaced)
}

/// Rewrites the int8 products of `model` (tract's `EinSum` with quantization parameters, from
/// ONNX `MatMulInteger`) into forms tract's codegen runs without per-element integer ops;
/// returns how many products were rewritten. Each computes the same integers as before.
///
/// Why: tract 0.23.9 lowers an int8 product at codegen to the integer matrix product followed
/// by zero-point terms (`quant.rs`, `compensate_zero_points`). With the shipped weights'
/// per-column zero point `b0` (all 0), the term `b0 · Σₖ a` is a full `[S, N]` matrix, so it
/// and every term after it ran as generic per-element i32 ops over all outputs: about 40% of
/// the int8 form's inference time on an AVX-512 EPYC (BENCHMARKS.md), and about 1,000 graph
/// patches, half of its load time. So:
/// - a product with constant weights whose zero point is 0 throughout, and no bias, output
///   zero point or scale (what `MatMulInteger` gives), becomes the plain `i8 × i8 → i32` product
///   of `a − 128` by the weights, minus `(a0 − 128) · Σₖ b` per column, a vector folded into
///   the matrix product's kernel (`Σₖ (a − a0) b = Σₖ (a − 128) b − (a0 − 128) Σₖ b`);
/// - in any other product, a constant zero point or scale of one value throughout becomes that
///   value as a scalar, and tract's codegen folds the terms it gives into the kernel.
pub fn simplify_int8_products(
    model: &mut TypedModel,
    products: ProductKernel,
) -> TractResult<Simplified> {
    use tract_onnx::tract_core::ops::einsum::EinSum;
    let mut done = Simplified::default();
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let Some(op) = node.op_as::<EinSum>() else {
            continue;
        };
        // Inputs: a, b, bias, a0, a_scale, b0, b_scale, c0, c_scale.
        if op.q_params.is_none() || node.inputs.len() != 9 {
            continue;
        }
        let patch = match plain_product(model, node, op, products)? {
            Some((patch, widened_bytes)) => {
                done.widened_bytes += widened_bytes;
                patch
            }
            None => match scalar_quantization_params(model, node, op)? {
                Some(patch) => patch,
                None => continue,
            },
        };
        patch.apply(model)?;
        done.products += 1;
    }
    Ok(done)
}

/// int8 products of `model` left to tract's kernels: `EinSum`s still quantized or on i32.
pub fn int8_products_left(model: &TypedModel) -> usize {
    use tract_onnx::tract_core::ops::einsum::EinSum;
    model
        .nodes()
        .iter()
        .filter_map(|n| n.op_as::<EinSum>())
        .filter(|op| op.q_params.is_some() || op.operating_dt == DatumType::I32)
        .count()
}

/// What multiplies the plain int8 products (weights' zero point 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductKernel {
    /// tract's kernels, through its `EinSum`.
    Tract,
    /// This crate's AVX2 op ([`crate::int8_product`]), where its shape fits; tract's otherwise.
    WidenedAvx2,
}

impl ProductKernel {
    /// The one to use on this CPU, given the kernel tract would pick for an int8 product.
    pub fn for_tract_kernel(kernel: &str) -> Self {
        if crate::int8_product::applies(kernel) {
            ProductKernel::WidenedAvx2
        } else {
            ProductKernel::Tract
        }
    }
}

/// What [`simplify_int8_products`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Simplified {
    /// Products rewritten.
    pub products: usize,
    /// Bytes the op's weights take beyond the int8 weights they replace (i16: one more per
    /// weight, and a sum per column).
    pub widened_bytes: u64,
}

/// The value of a constant input that holds one value throughout.
fn uniform_const(model: &TypedModel, outlet: OutletId) -> Option<Arc<Tensor>> {
    let fact = model.outlet_fact(outlet).ok()?;
    fact.konst.as_ref()?;
    fact.uniform.clone()
}

/// `a` u8 or i8 with a scalar zero point, `b` a constant i8 matrix with zero point 0, bias and
/// output zero point 0, every scale 1, i32 out: the product as `i8 × i8 → i32` and one vector
/// subtracted per column (see [`simplify_int8_products`]); or, for u8 `a` whose last axis is
/// summed with `b`'s first and `products` [`ProductKernel::WidenedAvx2`], this crate's
/// [`Int8Product`](crate::int8_product::Int8Product) on `a` and its zero point. With the patch,
/// the bytes the op's weights add (0 for tract's product).
fn plain_product(
    model: &TypedModel,
    node: &TypedNode,
    op: &tract_onnx::tract_core::ops::einsum::EinSum,
    products: ProductKernel,
) -> TractResult<Option<(TypedModelPatch, u64)>> {
    use tract_onnx::tract_core::ops::{self, einsum::EinSum};
    let is = |slot: usize, value: f64| {
        uniform_const(model, node.inputs[slot])
            .and_then(|t| t.cast_to_scalar::<f64>().ok())
            .is_some_and(|v| v == value)
    };
    let (a, b) = (
        model.outlet_fact(node.inputs[0])?,
        model.outlet_fact(node.inputs[1])?,
    );
    let a_offset = match a.datum_type {
        DatumType::U8 => 128,
        DatumType::I8 => 0,
        _ => return Ok(None),
    };
    let Some(weights) = b.konst.clone() else {
        return Ok(None);
    };
    if op.q_params != Some(DatumType::I32)
        || weights.datum_type() != DatumType::I8
        || weights.rank() != 2
        || model.outlet_fact(node.inputs[3])?.shape.volume() != 1.to_dim()
        || !(is(2, 0.0) && is(5, 0.0) && is(7, 0.0))
        || !(is(4, 1.0) && is(6, 1.0) && is(8, 1.0))
    {
        return Ok(None);
    }
    // The axes of b: k is summed away (in a and b, not in the output), n reaches the output.
    let in_b_only_out = |axis: &&Axis, out: bool| {
        axis.inputs[1].len() == 1
            && axis.inputs[0].len() == !out as usize
            && axis.outputs[0].len() == out as usize
    };
    let (Some(k), Some(n)) = (
        op.axes.iter_all_axes().find(|ax| in_b_only_out(ax, false)),
        op.axes.iter_all_axes().find(|ax| in_b_only_out(ax, true)),
    ) else {
        return Ok(None);
    };
    let (b_k, out_n) = (k.inputs[1][0], n.outputs[0][0]);
    if products == ProductKernel::WidenedAvx2 {
        if let Some(patch) = widened_product(model, node, &weights, (k, b_k), out_n)? {
            return Ok(Some(patch));
        }
    }
    // Σₖ b per column, laid out along the output's n axis.
    let weights = weights.to_plain_array_view::<i8>()?;
    let sums = weights
        .mapv(|v| v as i32)
        .sum_axis(tract_ndarray::Axis(b_k));
    let output_rank = node.outputs[0].fact.rank();
    let mut shape = vec![1; output_rank];
    shape[out_n] = sums.len();
    let sums = sums.into_shape_with_order(shape)?.into_tensor();

    let name = &node.name;
    let mut patch = TypedModelPatch::new("int8 product as i8 × i8 and a column term");
    let taps = patch.taps(model, &node.inputs)?;
    let mut a = taps[0];
    if a_offset != 0 {
        a = patch.wire_node(
            format!("{name}.a_as_i8"),
            ops::quant::offset_u8_as_i8(),
            &[a],
        )?[0];
    }
    let product = patch.wire_node(
        format!("{name}.i8"),
        EinSum {
            axes: op.axes.extract_sub_mapping(&[0, 1], &[0])?,
            operating_dt: DatumType::I32,
            q_params: None,
        },
        &[a, taps[1]],
    )?[0];
    let a0 = patch.wire_node(
        format!("{name}.a0_as_i32"),
        ops::cast::cast(DatumType::I32),
        &[taps[3]],
    )?[0];
    let a0 = patch.wire_node(
        format!("{name}.a0_as_scalar"),
        AxisOp::Reshape(
            0,
            model.outlet_fact(node.inputs[3])?.shape.to_tvec(),
            tvec!(),
        ),
        &[a0],
    )?[0];
    let offset = patch.add_const(format!("{name}.a_offset"), tensor0(a_offset))?;
    let a0 = patch.wire_node(format!("{name}.a0_offset"), ops::math::sub(), &[a0, offset])?[0];
    let sums = patch.add_const(format!("{name}.sum_b"), sums)?;
    let term = tract_onnx::tract_core::ops::change_axes::wire_with_rank_broadcast(
        format!("{name}.a0_sum_b"),
        &mut patch,
        ops::math::mul(),
        &[a0, sums],
    )?[0];
    let out = patch.wire_node(name.clone(), ops::math::sub(), &[product, term])?[0];
    patch.shunt_outside(model, OutletId::new(node.id, 0), out)?;
    Ok(Some((patch, 0)))
}

/// The product as [`Int8Product`](crate::int8_product::Int8Product), when its shape is the
/// op's: u8 `a` summed over its last axis with `b`'s first (`[k, n]`), `n` the output's last
/// axis and the output otherwise `a`'s shape, k and n as the op takes them.
fn widened_product(
    model: &TypedModel,
    node: &TypedNode,
    weights: &Tensor,
    (k, b_k): (&Axis, usize),
    out_n: usize,
) -> TractResult<Option<(TypedModelPatch, u64)>> {
    use crate::int8_product::{Int8Product, WidenToI16};
    let a = model.outlet_fact(node.inputs[0])?;
    let out = &node.outputs[0].fact;
    let (rank, out_rank) = (a.rank(), out.rank());
    let (depth, width) = (weights.shape()[0], weights.shape()[1]);
    // The output may lack leading unit axes of `a` (`[1, S, k]` by `[k, n]` gives `[S, n]`).
    let dropped = rank.saturating_sub(out_rank);
    if a.datum_type != DatumType::U8
        || b_k != 0
        || k.inputs[0].as_slice() != [rank - 1]
        || out_rank == 0
        || out_n != out_rank - 1
        || !a.shape[..dropped].iter().all(|d| d.is_one())
        || a.shape[dropped..rank - 1] != out.shape[..out_rank - 1]
        || a.shape[rank - 1] != depth.to_dim()
        || out.shape[out_rank - 1] != width.to_dim()
    {
        return Ok(None);
    }
    let plain = weights.try_as_plain_ram()?;
    let Some(product) = Int8Product::new(plain.as_slice::<i8>()?, depth, width, dropped) else {
        return Ok(None);
    };
    let mut patch = TypedModelPatch::new("int8 product on this crate's AVX2 op");
    let taps = patch.taps(model, &[node.inputs[0], node.inputs[3]])?;
    // The products of one input (queries, keys, values) share one widened copy: tract merges
    // equal nodes of one input when it optimizes.
    let widen = WidenToI16 {
        padded: depth % 2 == 1,
    };
    let wide = patch.wire_node(format!("{}.a_as_i16", node.name), widen, &[taps[0]])?[0];
    // What the op holds beyond the int8 weights it replaces (tract drops those).
    let widened_bytes = product.weight_bytes() - (depth * width) as u64;
    let out = patch.wire_node(node.name.clone(), product, &[wide, taps[1]])?[0];
    patch.shunt_outside(model, OutletId::new(node.id, 0), out)?;
    Ok(Some((patch, widened_bytes)))
}

/// Each constant zero point or scale of one value throughout, given as a vector (per column),
/// made a scalar.
fn scalar_quantization_params(
    model: &TypedModel,
    node: &TypedNode,
    op: &tract_onnx::tract_core::ops::einsum::EinSum,
) -> TractResult<Option<TypedModelPatch>> {
    let mut op = op.clone();
    let mut patch = TypedModelPatch::new("scalar quantization parameters");
    let mut wires = patch.taps(model, &node.inputs)?;
    let mut changed = false;
    for slot in 3..9 {
        let rank = model.outlet_fact(node.inputs[slot])?.rank();
        let Some(value) = uniform_const(model, node.inputs[slot]).filter(|_| rank > 0) else {
            continue;
        };
        for position in (0..rank).rev() {
            op.axes = op.axes.remove_axis_occurency(InOut::In(slot), position)?;
        }
        wires[slot] = patch.add_const(format!("{}.scalar_q{slot}", node.name), value)?;
        changed = true;
    }
    if !changed {
        return Ok(None);
    }
    let out = patch.wire_node(node.name.clone(), op, &wires)?[0];
    patch.shunt_outside(model, OutletId::new(node.id, 0), out)?;
    Ok(Some(patch))
}

/// Replaces each `Add(Mul(Cast(acc → f32), scale), bias)` of an i32 `acc`, with `scale` and
/// `bias` vectors along `acc`'s last axis (what `MatMulInteger` is followed by: the
/// activation's scale times the weights' per-column scales, then the layer's bias), by one
/// [`Rescale`]; returns how many. The same values: the same float operations in the same order.
///
/// Why: tract runs the cast as one generic pass and the product and sum as a second, vectorized
/// one; over every output of every int8 product that was about 8% of the int8 form's time.
pub fn fuse_rescales(model: &mut TypedModel) -> TractResult<usize> {
    use tract_onnx::tract_core::ops::binary::TypedBinOp;
    use tract_onnx::tract_core::ops::cast::Cast;
    use tract_onnx::tract_core::ops::math::{Add, Mul};
    let mut fused = 0;
    for id in 0..model.nodes().len() {
        let cast = model.node(id);
        let Some(op) = cast.op_as::<Cast>() else {
            continue;
        };
        let acc = cast.inputs[0];
        let acc_fact = model.outlet_fact(acc)?;
        if op.to != DatumType::F32 || acc_fact.datum_type != DatumType::I32 || acc_fact.rank() == 0
        {
            continue;
        }
        let shape = acc_fact.shape.clone();
        let columns = shape[shape.len() - 1].clone();
        // The only successor of `node`, when it is an element-wise `B` whose other input is a
        // vector along the last axis; that other input.
        let next = |node: &TypedNode, is_op: &dyn Fn(&TypedBinOp) -> bool| {
            let [succ] = &*node.outputs[0].successors else {
                return None;
            };
            let succ = model.node(succ.node);
            succ.op_as::<TypedBinOp>().filter(|op| is_op(op))?;
            let mine = succ.inputs.iter().position(|i| i.node == node.id)?;
            let other = succ.inputs[1 - mine];
            let fact = model.outlet_fact(other).ok()?;
            let along_last = fact.datum_type == DatumType::F32
                && fact.rank() <= shape.len()
                && fact.shape.iter().last() == Some(&columns)
                && fact.shape.iter().rev().skip(1).all(|d| d.is_one());
            (along_last && succ.outputs[0].fact.shape == shape).then_some((succ, other))
        };
        let Some((mul, scale)) = next(cast, &|op| op.0.is::<Mul>()) else {
            continue;
        };
        let Some((add, bias)) = next(mul, &|op| op.0.is::<Add>()) else {
            continue;
        };
        let mut patch = TypedModelPatch::new("i32 rescaled to f32 in one pass");
        let wires = patch.taps(model, &[acc, scale, bias])?;
        let out = patch.wire_node(add.name.clone(), Rescale, &wires)?[0];
        patch.shunt_outside(model, OutletId::new(add.id, 0), out)?;
        patch.apply(model)?;
        fused += 1;
    }
    Ok(fused)
}

/// `acc as f32 * scale + bias`, the two vectors along `acc`'s last axis: an int8 product's
/// i32 result back in f32, with its bias.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct Rescale;

impl Op for Rescale {
    fn name(&self) -> StaticName {
        "Rescale".into()
    }

    op_as_typed_op!();
}

impl EvalOp for Rescale {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (acc, scale, bias) = args_3!(inputs);
        let columns = acc.shape().last().copied().unwrap_or(0);
        ensure!(
            scale.len() == columns && bias.len() == columns,
            "Rescale: {columns} columns, {} scales, {} biases",
            scale.len(),
            bias.len()
        );
        let mut out = unsafe { Tensor::uninitialized_dt(f32::datum_type(), acc.shape())? };
        let acc_plain = acc.try_as_plain_ram()?;
        let acc = acc_plain.as_slice::<i32>()?;
        let scale = scale.try_as_plain_ram()?;
        let bias = bias.try_as_plain_ram()?;
        let (scale, bias) = (scale.as_slice::<f32>()?, bias.as_slice::<f32>()?);
        let mut out_plain = out.try_as_plain_ram_mut()?;
        let ys = out_plain.as_slice_mut::<f32>()?;
        if columns > 0 {
            par_rows(acc, ys, columns, |acc, ys| rescale(acc, scale, bias, ys))?;
        }
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Rescale {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        Ok(tvec!(f32::fact(inputs[0].shape.clone())))
    }

    as_op!();
}

/// `f` over matching rows of `xs` and `ys` (`n` values a row), the rows shared out over
/// `--threads` as tract shares its own row-wise ops (inline on one thread, or below tract's size
/// threshold).
fn par_rows<X: Sync, Y: Send>(
    xs: &[X],
    ys: &mut [Y],
    n: usize,
    f: impl Fn(&[X], &mut [Y]) + Sync + Send,
) -> TractResult<()> {
    multithread::par_chunks_mut(ys, n, ys.len(), |row, ys| {
        f(&xs[row * n..row * n + ys.len()], ys);
        Ok(())
    })
}

/// `ys[r, j] = acc[r, j] as f32 * scale[j] + bias[j]`, rows of `scale.len()` values.
pub fn rescale(acc: &[i32], scale: &[f32], bias: &[f32], ys: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { rescale_avx2(acc, scale, bias, ys) };
    }
    rescale_any(acc, scale, bias, ys)
}

/// The same code compiled for AVX2 (no FMA: a product and a sum, each rounded, as tract's ops).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rescale_avx2(acc: &[i32], scale: &[f32], bias: &[f32], ys: &mut [f32]) {
    rescale_any(acc, scale, bias, ys)
}

#[inline(always)]
fn rescale_any(acc: &[i32], scale: &[f32], bias: &[f32], ys: &mut [f32]) {
    let n = scale.len();
    for (row, out) in acc.chunks_exact(n).zip(ys.chunks_exact_mut(n)) {
        for j in 0..n {
            out[j] = row[j] as f32 * scale[j] + bias[j];
        }
    }
}

/// ONNX `DynamicQuantizeLinear` (f32 → u8, scale, zero point), bit for bit as tract-onnx
/// computes it.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct DynamicQuantize;

impl Op for DynamicQuantize {
    fn name(&self) -> StaticName {
        TRACT_OP_NAME.into()
    }

    op_as_typed_op!();
}

impl EvalOp for DynamicQuantize {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let plain = input.try_as_plain_ram()?;
        let xs = plain.as_slice::<f32>()?;
        let (scale, zero_point) = scale_and_zero_point(xs);
        let mut quantized = unsafe { Tensor::uninitialized_dt(u8::datum_type(), input.shape())? };
        let mut quantized_plain = quantized.try_as_plain_ram_mut()?;
        let ys = quantized_plain.as_slice_mut::<u8>()?;
        // The range is one pass on this thread; the values, rows shared out over `--threads`.
        let n = input.shape().last().copied().unwrap_or(1).max(1);
        par_rows(xs, ys, n, |xs, ys| quantize(xs, scale, zero_point, ys))?;
        Ok(tvec!(
            quantized.into_tvalue(),
            tensor0(scale).into_tvalue(),
            tensor0(zero_point).into_tvalue()
        ))
    }
}

impl TypedOp for DynamicQuantize {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        let mut quantized = inputs[0].without_value();
        quantized.datum_type = u8::datum_type();
        Ok(tvec!(quantized, f32::fact([0; 0]), u8::fact([0; 0])))
    }

    as_op!();
}

/// The range of `xs` widened to hold 0, as a u8 scale and zero point (the ONNX definition).
/// NaNs are passed over, as tract-onnx's fold passes them over.
pub fn scale_and_zero_point(xs: &[f32]) -> (f32, u8) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { scale_and_zero_point_avx2(xs) };
    }
    scale_and_zero_point_any(xs)
}

/// The same code compiled for AVX2 (the `dist` build targets baseline x86-64: SSE2).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scale_and_zero_point_avx2(xs: &[f32]) -> (f32, u8) {
    scale_and_zero_point_any(xs)
}

#[inline(always)]
fn scale_and_zero_point_any(xs: &[f32]) -> (f32, u8) {
    let mut lo = [0f32; LANES];
    let mut hi = [0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for i in 0..LANES {
            // Selects, not f32::min/max: the same comparisons as tract-onnx's fold (a NaN
            // compares false and is skipped), and each one a single vector instruction.
            lo[i] = if chunk[i] < lo[i] { chunk[i] } else { lo[i] };
            hi[i] = if chunk[i] > hi[i] { chunk[i] } else { hi[i] };
        }
    }
    let (mut min, mut max) = (0f32, 0f32);
    for &v in lo.iter().chain(rest) {
        min = if v < min { v } else { min };
    }
    for &v in hi.iter().chain(rest) {
        max = if v > max { v } else { max };
    }
    let scale = (max - min) / u8::MAX as f32;
    let zero_point = (-min / scale)
        .round_ties_even()
        .max(u8::MIN as f32)
        .min(u8::MAX as f32) as u8;
    (scale, zero_point)
}

/// `ys[i] = clamp(round_ties_even(xs[i] / scale) + zero_point, 0, 255)`, as tract-onnx computes
/// it (a division, not a product with the reciprocal, which would move some values by one).
pub fn quantize(xs: &[f32], scale: f32, zero_point: u8, ys: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { quantize_avx2(xs, scale, zero_point, ys) };
    }
    quantize_any(xs, scale, zero_point, ys)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn quantize_avx2(xs: &[f32], scale: f32, zero_point: u8, ys: &mut [u8]) {
    quantize_any(xs, scale, zero_point, ys)
}

#[inline(always)]
fn quantize_any(xs: &[f32], scale: f32, zero_point: u8, ys: &mut [u8]) {
    let zp = zero_point as i32;
    // i32 arithmetic as tract-onnx's (wrapping, as in its release build) on both paths.
    let store = |r: f32| (r as i32).wrapping_add(zp).clamp(0, 255) as u8;
    if scale.is_normal() {
        // Here every `x / scale` is NaN or within ±255 (the range holds 0 and spans 255
        // steps), so the rounded value, the zero point added and the clamp are exact in f32,
        // and the loop stays in vector registers (the i32 route does not vectorize: 0.60 ns
        // a value against 0.08 on AVX2). A NaN gives the zero point, as `NaN as i32` does.
        let zp = zero_point as f32;
        for (y, &x) in ys.iter_mut().zip(xs) {
            let v = (x / scale + ROUNDING) - ROUNDING + zp;
            let v = if v.is_nan() { zp } else { v };
            // SAFETY: not NaN, and within 0..=255 after the clamp: exact in i32.
            *y = unsafe { v.clamp(0.0, 255.0).to_int_unchecked::<i32>() } as u8;
        }
    } else {
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = store((x / scale).round_ties_even());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The examples of the ONNX operator documentation (DynamicQuantizeLinear).
    #[test]
    fn onnx_documentation_examples() {
        let cases: [(&[f32], f32, u8, &[u8]); 3] = [
            (
                &[0., 2., -3., -2.5, 1.34, 0.5],
                0.019_607_844,
                153,
                &[153, 255, 0, 26, 221, 179],
            ),
            (
                &[-1., -2.1, -1.3, -2.5, -3.34, -4.],
                0.015_686_275,
                255,
                &[191, 121, 172, 96, 42, 0],
            ),
            (
                &[1., 2.1, 1.3, 2.5, 3.34, 4., 1.5, 2.6, 3.9, 4., 3., 2.345],
                0.015_686_275,
                0,
                &[64, 134, 83, 159, 213, 255, 96, 166, 249, 255, 191, 149],
            ),
        ];
        for (xs, scale, zero_point, expected) in cases {
            let (s, z) = scale_and_zero_point(xs);
            assert!((s - scale).abs() < 1e-8, "{s} against {scale}");
            assert_eq!(z, zero_point);
            let mut ys = vec![0u8; xs.len()];
            quantize(xs, s, z, &mut ys);
            assert_eq!(ys, expected);
        }
    }

    /// Ties go to the even integer, both ways of zero, on the fast path.
    #[test]
    fn rounding_ties_go_to_even() {
        // scale 1 exactly: the range is [-127.5 .. 127.5] → 255 / 255.
        let xs = [-127.5f32, 127.5, 0.5, 1.5, 2.5, -0.5, -1.5, 3.49999, 0.0];
        let (scale, zero_point) = scale_and_zero_point(&xs);
        assert_eq!(scale, 1.0);
        assert_eq!(zero_point, 128); // 127.5 rounds to 128
        let mut ys = [0u8; 9];
        quantize(&xs, scale, zero_point, &mut ys);
        assert_eq!(ys, [0, 255, 128, 130, 130, 128, 126, 131, 128]);
    }
    use crate::test_onnx::{typed, value_info};
    use tract_onnx::pb::{GraphProto, NodeProto, TensorProto};

    /// One ONNX `DynamicQuantizeLinear` node of `n` values, as tract-onnx types it.
    fn stock_model(n: usize) -> TypedModel {
        let (f32_type, u8_type) = (1, 2);
        let n = n.to_string();
        let node = NodeProto {
            input: vec!["x".into()],
            output: vec!["y".into(), "scale".into(), "zero_point".into()],
            op_type: "DynamicQuantizeLinear".into(),
            ..Default::default()
        };
        let graph = GraphProto {
            input: vec![value_info("x", f32_type, &[&n])],
            output: vec![
                value_info("y", u8_type, &[&n]),
                value_info("scale", f32_type, &[]),
                value_info("zero_point", u8_type, &[]),
            ],
            ..Default::default()
        };
        typed(vec![node], graph)
    }

    fn run(model: TypedModel, xs: &[f32]) -> (Vec<u8>, f32, u8) {
        let plan = model.into_runnable().unwrap();
        let out = plan.run(tvec!(tensor1(xs).into_tvalue())).unwrap();
        let plain = |i: usize| out[i].try_as_plain_ram().unwrap();
        (
            plain(0).as_slice::<u8>().unwrap().to_vec(),
            *plain(1).to_scalar::<f32>().unwrap(),
            *plain(2).to_scalar::<u8>().unwrap(),
        )
    }

    /// Against tract-onnx's own op, byte for byte: activation-like values of many lengths
    /// (whole and partial lanes), one-signed ranges, zeros, NaNs, and the ranges whose scale
    /// leaves the fast path (subnormal, zero, infinite).
    #[test]
    fn same_bytes_as_tract_onnx() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        let mut cases: Vec<Vec<f32>> = Vec::new();
        for n in [1, 2, 15, 16, 17, 33, 384, 1536 + 7, 16 * 384] {
            // Roughly activation-like: a sum of uniforms, centred, scaled, some outliers.
            let mut v: Vec<f32> = (0..n)
                .map(|_| (uniform() + uniform() + uniform() - 1.5) * 4.0)
                .collect();
            if n > 20 {
                v[n / 3] *= 9.0;
            }
            cases.push(v.iter().map(|x| x.abs()).collect());
            cases.push(v.iter().map(|x| -x.abs()).collect());
            cases.push(v);
        }
        // Values at or next to the midpoints between two quantization steps, where a product
        // with the reciprocal instead of the division, or another tie rule, gives another byte.
        for step in [0.1f32, 0.037, 1.3] {
            let mut v: Vec<f32> = (0..255).map(|k| (k as f32 + 0.5) * step).collect();
            v.extend([0.0, 255.0 * step]);
            cases.push(v.iter().map(|x| x - 100.0 * step).collect());
            cases.push(v);
        }
        cases.push(vec![0.0; 40]);
        cases.push(vec![-0.0, 0.0, -0.0, 1e-3]);
        cases.push([1.0, f32::NAN, -2.0, 0.5].repeat(9));
        cases.push(vec![1e-43, -2e-43, 5e-44, 0.0]); // subnormal scale
        cases.push(vec![1e-45; 20]); // scale underflows to zero
        cases.push(vec![3e38, -3e38, 1.0, -1.0]); // infinite scale
        cases.push(vec![f32::INFINITY, -1.0, 2.0]);
        for xs in cases {
            let stock = stock_model(xs.len());
            let mut ours = stock.clone();
            assert_eq!(replace_in(&mut ours).unwrap(), 1);
            let (a, b) = (run(stock, &xs), run(ours, &xs));
            assert_eq!(a.0, b.0, "{xs:?}");
            assert_eq!((a.1.to_bits(), a.2), (b.1.to_bits(), b.2), "{xs:?}");
            // The portable code too, where the op took the AVX2 build of it.
            let (scale, zero_point) = scale_and_zero_point_any(&xs);
            let mut ys = vec![0u8; xs.len()];
            quantize_any(&xs, scale, zero_point, &mut ys);
            assert_eq!((ys, scale.to_bits(), zero_point), (a.0, a.1.to_bits(), a.2));
        }
    }

    /// One ONNX `MatMulInteger` node: `a` u8 `[S, k]` and its zero point as inputs, `b` an i8
    /// `[k, n]` constant with a per-column zero point `b0` of one value throughout.
    fn matmul_integer_model(b: &[i8], b0: i8, k: usize, n: usize) -> TypedModel {
        let (u8_type, i8_type, i32_type) = (2, 3, 6);
        let (k_dim, n_dim) = (k.to_string(), n.to_string());
        let constant = |name: &str, dims: Vec<i64>, bytes: Vec<u8>| TensorProto {
            name: name.into(),
            dims,
            data_type: i8_type,
            raw_data: bytes,
            ..Default::default()
        };
        let node = NodeProto {
            input: vec!["a".into(), "b".into(), "a0".into(), "b0".into()],
            output: vec!["c".into()],
            op_type: "MatMulInteger".into(),
            ..Default::default()
        };
        let graph = GraphProto {
            initializer: vec![
                constant(
                    "b",
                    vec![k as i64, n as i64],
                    b.iter().map(|&v| v as u8).collect(),
                ),
                constant("b0", vec![n as i64], vec![b0 as u8; n]),
            ],
            input: vec![
                value_info("a", u8_type, &["S", &k_dim]),
                value_info("a0", u8_type, &[]),
            ],
            output: vec![value_info("c", i32_type, &["S", &n_dim])],
            ..Default::default()
        };
        let mut model = typed(vec![node], graph);
        model.declutter().unwrap();
        model
    }

    /// Both rewrites compute `Σₖ (a − a0)(b − b0)` exactly, as written out here, and leave no
    /// generic per-element op over the `[S, n]` output in the plan (tract's own lowering has
    /// several): weights' zero point 0 (the plain product) and one other value throughout (made
    /// a scalar), with activations' zero points across the u8 range.
    #[test]
    fn int8_products_compute_the_same_integers() {
        // Whole panels of this crate's AVX2 product (16 columns) and pairs of k, then neither.
        for (k, n) in [(48, 48), (47, 40)] {
            products_compute_the_same_integers(k, n);
        }
    }

    fn products_compute_the_same_integers(k: usize, n: usize) {
        let rows = 7;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u32
        };
        // Weights in [-127, 127], as symmetric int8 quantization writes them.
        let b: Vec<i8> = (0..k * n)
            .map(|_| ((next() % 255) as i32 - 127) as i8)
            .collect();
        let a: Vec<u8> = (0..rows * k).map(|_| next() as u8).collect();
        let cases = [(0i8, 131u8), (0, 0), (3, 255), (-5, 7)];
        for ((b0, a0), products) in cases.into_iter().flat_map(|case| {
            [ProductKernel::Tract, ProductKernel::WidenedAvx2].map(|products| (case, products))
        }) {
            let stock = matmul_integer_model(&b, b0, k, n);
            let mut ours = stock.clone();
            let done = simplify_int8_products(&mut ours, products).unwrap();
            assert_eq!(done.products, 1);
            // This crate's op takes the plain product only, its weights one byte more each.
            let own = b0 == 0 && products == ProductKernel::WidenedAvx2;
            // i16 weights (2 bytes instead of 1, k and n rounded up to pairs and panels) and an
            // i32 sum per column of the panels.
            let (k2, n16) = (k.div_ceil(2) * 2, n.div_ceil(16) * 16);
            let bytes = 2 * k2 * n16 + 4 * n16 - k * n;
            assert_eq!(done.widened_bytes, if own { bytes as u64 } else { 0 });
            let ops = ours
                .nodes()
                .iter()
                .filter(|n| n.op_is::<crate::int8_product::Int8Product>())
                .count();
            assert_eq!(ops, own as usize, "b0 {b0}, {products:?}");
            assert_eq!(
                int8_products_left(&ours),
                !own as usize,
                "b0 {b0}, {products:?}"
            );
            // Weights' zero point 0: a plain product, no quantized one left to tract's lowering.
            let quantized = ours
                .nodes()
                .iter()
                .filter_map(|n| n.op_as::<tract_onnx::tract_core::ops::einsum::EinSum>())
                .filter(|op| op.q_params.is_some())
                .count();
            assert_eq!(quantized, (b0 != 0) as usize, "b0 {b0}");
            let run = |model: TypedModel| -> (Vec<i32>, usize) {
                let model = model.into_optimized().unwrap();
                let generic = crate::encoder::generic_binary_nodes(&model);
                let plan = model.into_runnable().unwrap();
                let a = Tensor::from_shape(&[rows, k], &a).unwrap();
                let out = plan
                    .run(tvec!(a.into_tvalue(), tensor0(a0).into_tvalue()))
                    .unwrap();
                let plain = out[0].try_as_plain_ram().unwrap();
                (plain.as_slice::<i32>().unwrap().to_vec(), generic)
            };
            let ((stock_c, stock_generic), (our_c, our_generic)) = (run(stock), run(ours));
            let expected: Vec<i32> = (0..rows * n)
                .map(|ij| {
                    let (i, j) = (ij / n, ij % n);
                    (0..k)
                        .map(|l| {
                            (a[i * k + l] as i32 - a0 as i32) * (b[l * n + j] as i32 - b0 as i32)
                        })
                        .sum()
                })
                .collect();
            assert_eq!(our_c, expected, "b0 {b0}, a0 {a0}, {products:?}");
            assert_eq!(stock_c, expected, "b0 {b0}, a0 {a0}");
            assert_eq!(our_generic, 0, "b0 {b0}");
            assert!(
                stock_generic > 0,
                "b0 {b0}: tract's lowering changed; is the rewrite still needed?"
            );
        }
    }

    /// `Add(Mul(Cast(acc → f32), scale), bias)` as the shipped model writes it after each
    /// `MatMulInteger`: `acc` i32 `[S, n]` and `scale` `[n]` inputs, `bias` an `[n]` constant.
    fn rescale_model(bias: &[f32]) -> TypedModel {
        use tract_onnx::pb::{attribute_proto::AttributeType, AttributeProto};
        let (f32_type, i32_type) = (1, 6);
        let n = bias.len().to_string();
        let node = |op: &str, inputs: &[&str], output: &str| NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            op_type: op.into(),
            ..Default::default()
        };
        let mut cast = node("Cast", &["acc"], "c");
        cast.attribute = vec![AttributeProto {
            name: "to".into(),
            r#type: AttributeType::Int as i32,
            i: f32_type as i64,
            ..Default::default()
        }];
        let nodes = vec![
            cast,
            node("Mul", &["c", "scale"], "m"),
            node("Add", &["m", "bias"], "y"),
        ];
        let graph = GraphProto {
            initializer: vec![TensorProto {
                name: "bias".into(),
                dims: vec![bias.len() as i64],
                data_type: f32_type,
                float_data: bias.to_vec(),
                ..Default::default()
            }],
            input: vec![
                value_info("acc", i32_type, &["S", &n]),
                value_info("scale", f32_type, &[&n]),
            ],
            output: vec![value_info("y", f32_type, &["S", &n])],
            ..Default::default()
        };
        let mut model = typed(nodes, graph);
        model.declutter().unwrap();
        model
    }

    /// The fused op gives tract's bits: accumulators across the i32 range (where the cast
    /// rounds), scales of activation-like sizes, and the bias added after the product, not fused
    /// into it.
    #[test]
    fn rescale_gives_the_bits_of_cast_mul_add() {
        let n = 37;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let bias: Vec<f32> = (0..n).map(|_| (next() >> 40) as f32 / 1e6 - 8.0).collect();
        let scale: Vec<f32> = (0..n)
            .map(|_| (next() >> 40) as f32 * 1e-11 + 1e-6)
            .collect();
        let rows = 5;
        let mut acc: Vec<i32> = (0..rows * n)
            .map(|_| next() as i32 >> (next() % 31))
            .collect();
        acc[..4].copy_from_slice(&[i32::MAX, i32::MIN, 16_777_217, -16_777_219]);
        let stock = rescale_model(&bias);
        let mut ours = stock.clone();
        assert_eq!(fuse_rescales(&mut ours).unwrap(), 1);
        assert!(ours.nodes().iter().any(|n| n.op_is::<Rescale>()));
        let run = |model: TypedModel| -> Vec<u32> {
            let plan = model.into_optimized().unwrap().into_runnable().unwrap();
            let acc = Tensor::from_shape(&[rows, n], &acc).unwrap();
            let out = plan
                .run(tvec!(acc.into_tvalue(), tensor1(&scale).into_tvalue()))
                .unwrap();
            let plain = out[0].try_as_plain_ram().unwrap();
            plain
                .as_slice::<f32>()
                .unwrap()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        let (a, b) = (run(stock), run(ours));
        assert_eq!(a, b);
        // And as written out.
        let expected: Vec<u32> = (0..rows * n)
            .map(|i| (acc[i] as f32 * scale[i % n] + bias[i % n]).to_bits())
            .collect();
        assert_eq!(b, expected);
    }
}
