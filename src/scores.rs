//! Stage 3: attention probabilities → one score per token.
//!
//! Every strategy looks only at the `n` real tokens: padding rows and columns are ignored.

use tract_onnx::prelude::tract_ndarray::ArrayView3;

use crate::config::Strategy;
use crate::encoder::EncoderOutput;
use crate::error::Result;

/// Attention each token receives in one layer: for token j, the mean over heads of
/// Σ_{i<n} A[h, i, j].
pub fn received(attn: &ArrayView3<f32>, n: usize, out: &mut [f32]) {
    let heads = attn.shape()[0];
    out[..n].fill(0.0);
    for h in 0..heads {
        for i in 0..n {
            let row = attn.slice(tract_onnx::prelude::tract_ndarray::s![h, i, ..n]);
            for (o, a) in out[..n].iter_mut().zip(row.iter()) {
                *o += a;
            }
        }
    }
    let inv = 1.0 / heads as f32;
    out[..n].iter_mut().for_each(|o| *o *= inv);
}

/// How much [CLS] attends to each token in one layer: the mean over heads of A[h, 0, j].
pub fn cls(attn: &ArrayView3<f32>, n: usize, out: &mut [f32]) {
    let heads = attn.shape()[0];
    out[..n].fill(0.0);
    for h in 0..heads {
        let row = attn.slice(tract_onnx::prelude::tract_ndarray::s![h, 0, ..n]);
        for (o, a) in out[..n].iter_mut().zip(row.iter()) {
            *o += a;
        }
    }
    let inv = 1.0 / heads as f32;
    out[..n].iter_mut().for_each(|o| *o *= inv);
}

/// Attention rollout (Abnar & Zuidema, 2020), [CLS] row. Per layer
/// M = rownorm(0.5 · mean_h A + 0.5 · I) over the real tokens, and R = M_last ⋯ M_first.
/// Only the [CLS] row of R is needed, so it is carried as a row vector from the last layer
/// down: O(layers · heads · n²) instead of a chain of n×n matrix products.
pub fn rollout(layers: &[ArrayView3<f32>], n: usize, out: &mut [f32], scratch: &mut Vec<f32>) {
    // scratch: [row mean over heads (n)] [next vector (n)]
    scratch.clear();
    scratch.resize(2 * n, 0.0);
    let (mean_row, next) = scratch.split_at_mut(n);
    let mut first = true;
    for attn in layers.iter().rev() {
        let heads = attn.shape()[0];
        let inv = 1.0 / heads as f32;
        if first {
            // v = M_last[0, :]
            mixed_row(attn, 0, n, inv, mean_row);
            out[..n].copy_from_slice(mean_row);
            first = false;
            continue;
        }
        // v ← v · M
        next.fill(0.0);
        for (i, &vi) in out[..n].iter().enumerate() {
            if vi == 0.0 {
                continue;
            }
            mixed_row(attn, i, n, inv, mean_row);
            for (nx, m) in next.iter_mut().zip(mean_row.iter()) {
                *nx += vi * m;
            }
        }
        out[..n].copy_from_slice(next);
    }
}

/// Row `i` of rownorm(0.5 · mean_h A + 0.5 · I), restricted to the first `n` columns.
fn mixed_row(attn: &ArrayView3<f32>, i: usize, n: usize, inv_heads: f32, row: &mut [f32]) {
    let heads = attn.shape()[0];
    row.fill(0.0);
    for h in 0..heads {
        let a = attn.slice(tract_onnx::prelude::tract_ndarray::s![h, i, ..n]);
        for (r, x) in row.iter_mut().zip(a.iter()) {
            *r += x;
        }
    }
    let mut sum = 0.0;
    for r in row.iter_mut() {
        *r *= 0.5 * inv_heads;
        sum += *r;
    }
    row[i] += 0.5;
    sum += 0.5;
    let inv_sum = 1.0 / sum;
    row.iter_mut().for_each(|r| *r *= inv_sum);
}

/// Token scores for the `n` real tokens of one run, with the given strategy and layers
/// (already resolved against the model). `received` and `cls` average the per-layer vectors.
pub fn token_scores(
    output: &EncoderOutput,
    n: usize,
    strategy: Strategy,
    layers: &[usize],
    scores: &mut Vec<f32>,
    scratch: &mut Vec<f32>,
) -> Result<()> {
    scores.clear();
    scores.resize(n, 0.0);
    match strategy {
        Strategy::Received | Strategy::Cls => {
            scratch.clear();
            scratch.resize(n, 0.0);
            for &l in layers {
                let attn = output.layer(l)?;
                if strategy == Strategy::Received {
                    received(&attn, n, scratch);
                } else {
                    cls(&attn, n, scratch);
                }
                for (s, x) in scores.iter_mut().zip(scratch.iter()) {
                    *s += x;
                }
            }
            let inv = 1.0 / layers.len() as f32;
            scores.iter_mut().for_each(|s| *s *= inv);
        }
        Strategy::Rollout => {
            let views = layers
                .iter()
                .map(|&l| output.layer(l))
                .collect::<Result<Vec<_>>>()?;
            rollout(&views, n, scores, scratch);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tract_onnx::prelude::tract_ndarray::Array3;

    /// Two heads over 3 real tokens plus one pad column/row that must be ignored.
    fn toy() -> Array3<f32> {
        Array3::from_shape_vec(
            (2, 4, 4),
            vec![
                // head 0
                0.5, 0.25, 0.25, 0.0, //
                0.1, 0.8, 0.1, 0.0, //
                0.2, 0.2, 0.6, 0.0, //
                9.0, 9.0, 9.0, 9.0, // pad row
                // head 1
                0.0, 1.0, 0.0, 0.0, //
                0.3, 0.3, 0.4, 0.0, //
                0.5, 0.0, 0.5, 0.0, //
                9.0, 9.0, 9.0, 9.0,
            ],
        )
        .unwrap()
    }

    #[test]
    fn received_sums_columns_over_real_rows_and_averages_heads() {
        let a = toy();
        let mut out = vec![0.0; 3];
        received(&a.view(), 3, &mut out);
        // head0 columns: 0.8, 1.25, 0.95; head1: 0.8, 1.3, 0.9
        let expect = [0.8, 1.275, 0.925];
        for (o, e) in out.iter().zip(expect) {
            assert!((o - e).abs() < 1e-6, "{out:?}");
        }
    }

    #[test]
    fn cls_is_mean_of_first_rows() {
        let a = toy();
        let mut out = vec![0.0; 3];
        cls(&a.view(), 3, &mut out);
        let expect = [0.25, 0.625, 0.125];
        for (o, e) in out.iter().zip(expect) {
            assert!((o - e).abs() < 1e-6, "{out:?}");
        }
    }

    /// Rollout against the plain definition: explicit matrices and a full matrix product.
    #[test]
    fn rollout_matches_matrix_product() {
        let a = toy();
        let b = {
            let mut b = toy();
            b.swap_axes(1, 2); // a different, still valid-looking layer
            b.as_standard_layout().to_owned()
        };
        let n = 3;
        let m = |x: &Array3<f32>| {
            let mut m = vec![vec![0.0f64; n]; n];
            for (i, row) in m.iter_mut().enumerate() {
                for (j, v) in row.iter_mut().enumerate() {
                    let mean = (x[[0, i, j]] + x[[1, i, j]]) as f64 / 2.0;
                    *v = 0.5 * mean + if i == j { 0.5 } else { 0.0 };
                }
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            m
        };
        let (m1, m2) = (m(&a), m(&b));
        // R = M2 · M1, take row 0
        let mut expect = [0.0f64; 3];
        for (j, e) in expect.iter_mut().enumerate() {
            for k in 0..n {
                *e += m2[0][k] * m1[k][j];
            }
        }
        let mut out = vec![0.0; n];
        let mut scratch = Vec::new();
        rollout(&[a.view(), b.view()], n, &mut out, &mut scratch);
        for (o, e) in out.iter().zip(expect) {
            assert!((*o as f64 - e).abs() < 1e-6, "{out:?} vs {expect:?}");
        }
        assert!((out.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    }
}
