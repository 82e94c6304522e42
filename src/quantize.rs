//! ONNX `DynamicQuantizeLinear` for the int8 form: the same bytes as tract-onnx's op, in two
//! passes the compiler vectorizes.
//!
//! Every int8 product of the shipped model starts by quantizing its f32 input to u8 with a
//! scale and zero point taken from that input's range (ONNX `DynamicQuantizeLinear`). tract-onnx
//! 0.23.9 (`DynamicQuantizeLinearU8`) finds the range with a branchy fold over an ndarray view
//! and rounds each value with `round_ties_even`, a library call per value on baseline x86-64:
//! 45% of the int8 form's inference time on an AVX-512 EPYC (BENCHMARKS.md). Here the range is
//! a running min / max over 16 lanes and the rounding adds and takes away 1.5·2²³, which rounds
//! to the nearest integer, ties to even, exactly, for any value below 2²² in magnitude. The
//! quantized values `x / scale` are never above 255 in magnitude when the scale is a normal
//! float; a range whose scale is zero, subnormal or infinite takes tract-onnx's own formula.
//!
//! [`replace_in`] swaps the op into a typed graph by node, so tract's parsing of the ONNX node
//! is kept; everything else about the graph stays tract's.

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
        quantize(
            xs,
            scale,
            zero_point,
            quantized.try_as_plain_ram_mut()?.as_slice_mut::<u8>()?,
        );
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
        for (y, &x) in ys.iter_mut().zip(xs) {
            *y = store((x / scale + ROUNDING) - ROUNDING);
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
    /// One ONNX `DynamicQuantizeLinear` node of `n` values, as tract-onnx types it.
    fn stock_model(n: usize) -> TypedModel {
        use tract_onnx::pb::{
            tensor_shape_proto::{dimension, Dimension},
            type_proto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
            TypeProto, ValueInfoProto,
        };
        let info = |name: &str, elem_type: i32, dims: &[usize]| ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type,
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| Dimension {
                                value: Some(dimension::Value::DimValue(d as i64)),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (f32_type, u8_type) = (1, 2);
        let graph = GraphProto {
            node: vec![NodeProto {
                input: vec!["x".into()],
                output: vec!["y".into(), "scale".into(), "zero_point".into()],
                op_type: "DynamicQuantizeLinear".into(),
                ..Default::default()
            }],
            input: vec![info("x", f32_type, &[n])],
            output: vec![
                info("y", u8_type, &[n]),
                info("scale", f32_type, &[]),
                info("zero_point", u8_type, &[]),
            ],
            ..Default::default()
        };
        let proto = ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 13,
            }],
            graph: Some(graph),
            ..Default::default()
        };
        tract_onnx::onnx()
            .model_for_proto_model(&proto)
            .unwrap()
            .into_typed()
            .unwrap()
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
}
