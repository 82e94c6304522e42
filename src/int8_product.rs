//! The int8 products on x86 CPUs without int8 dot products (AVX2 only: Zen 2 and 3, Intel
//! before Ice Lake), as an op of this crate.
//!
//! Why: there tract 0.23.9 runs an int8 product on `avx2_mmm_i32_8x8`, which widens both
//! operands to 16 bits, multiplies with `vpmullw` and carries the SSE/AVX transition reported in
//! BENCHMARKS.md ("Upstream report"): 42–47× slower than f32 on a Zen 3. AVX2 has a better
//! instruction for it, `vpmaddwd`: sixteen 16-bit products summed in pairs into eight exact
//! 32-bit lanes, twice the multiply-adds of an f32 FMA per instruction. So the weights are
//! widened to i16 once, at load, and laid out in pairs of k; each run widens the u8 activations
//! to i16 ([`WidenToI16`], a tensor of the graph, so the memory plan counts it and the three
//! products of one input share it) and multiplies. `u8 · i8` pairs sum to at most
//! 2 · 255 · 128, so no lane saturates (unlike `vpmaddubsw`, which onnxruntime uses): the i32
//! results are exactly tract's.
//!
//! [`Int8Product`] computes `Σₖ (a − a0) · b` for u8 activations `a` (last axis k; given widened
//! to i16), their zero point `a0` and constant i8 weights `b` (`[k, n]`), i32 out: what tract's
//! `EinSum` of an ONNX `MatMulInteger` with zero weight zero points computes.
//! `quantize::simplify_int8_products` puts it in the graph where [`applies`] says so.

use std::fmt;
use std::sync::Arc;

use tract_linalg::multithread;
use tract_onnx::prelude::*;
use tract_onnx::tract_core::internal::*;

/// Columns per panel of the packed weights: two AVX2 registers of eight i32 results.
const PANEL: usize = 16;

/// The kernel's name where `inspect` and `bench` list tract's kernels.
pub const KERNEL: &str = "attnprompt_avx2_vpmaddwd_mmm_i32_6x16";

/// Whether this op runs the int8 products on this CPU: x86-64 with AVX2 where tract's own int8
/// kernel (`kernel`, by name) is its AVX2 one, without dot-product instructions.
pub fn applies(kernel: &str) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && kernel.starts_with("avx2_mmm_i32")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kernel;
        false
    }
}

/// Whether the op can take a product of `k` by `n`: any size (an odd k takes a zero for a
/// pair, a last panel of fewer than 16 columns zeros for the rest).
pub fn fits(k: usize, n: usize) -> bool {
    k > 0 && n > 0
}

/// `Σₖ (a − a0) · b`: `a` (`[…, k]`, u8 values widened to i16 by [`WidenToI16`]), u8 scalar
/// `a0`, the weights `b` (`[k, n]`, i8) packed in the op; i32 `[…, n]` out.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Int8Product {
    k: usize,
    n: usize,
    /// Leading unit axes of `a` the output goes without.
    dropped: usize,
    /// `b` widened to i16: panel by panel (`PANEL` columns), pair of k by pair, column by column,
    /// the two k of a pair side by side (what `vpmaddwd` multiplies with a broadcast pair of `a`);
    /// zeros past k and n.
    packed: Arc<Vec<i16>>,
    /// `Σₖ b` per column of the panels (0 past n): the zero point's term.
    sums: Arc<Vec<i32>>,
}

impl fmt::Debug for Int8Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Int8Product({}×{})", self.k, self.n)
    }
}

impl Int8Product {
    /// Packs `weights` (`[k, n]`, i8, row-major); `None` unless [`fits`]. The output is `a`'s
    /// shape without its first `dropped` axes (unit axes), n in place of k.
    pub fn new(weights: &[i8], k: usize, n: usize, dropped: usize) -> Option<Self> {
        if !fits(k, n) || weights.len() != k * n {
            return None;
        }
        let (pairs, panels) = (k.div_ceil(2), n.div_ceil(PANEL));
        let weight = |row: usize, col: usize| match row < k && col < n {
            true => weights[row * n + col] as i16,
            false => 0,
        };
        let mut packed = Vec::with_capacity(panels * PANEL * 2 * pairs);
        for panel in 0..panels {
            for pair in 0..pairs {
                for col in panel * PANEL..(panel + 1) * PANEL {
                    packed.push(weight(2 * pair, col));
                    packed.push(weight(2 * pair + 1, col));
                }
            }
        }
        let sums = (0..panels * PANEL)
            .map(|col| (0..k).map(|row| weight(row, col) as i32).sum())
            .collect();
        Some(Int8Product {
            k,
            n,
            dropped,
            packed: Arc::new(packed),
            sums: Arc::new(sums),
        })
    }

    /// Bytes the op holds: its i16 weights and column sums.
    pub fn weight_bytes(&self) -> u64 {
        (self.packed.len() * 2 + self.sums.len() * 4) as u64
    }

    /// Values in a row of the widened activations: k, made even ([`WidenToI16`] pads it).
    fn row_len(&self) -> usize {
        self.k + self.k % 2
    }

    /// `ys` (rows of n) from `xs` (rows of k made even, u8 values as i16); `a0` the zero point
    /// of `xs`.
    pub fn run(&self, xs: &[i16], a0: u8, ys: &mut [i32]) -> TractResult<()> {
        let (k, n) = (self.row_len(), self.n);
        ensure!(xs.len() % k == 0 && ys.len() == xs.len() / k * n);
        // Shared out past tract's threshold for row-wise ops (32,768 values by default): an
        // output value costs k multiply-adds, counted as k / 8 values.
        let work = ys.len().saturating_mul(k / 8);
        multithread::par_chunks_mut(ys, n, work, |row, ys| {
            let rows = ys.len() / n;
            self.rows(&xs[row * k..(row + rows) * k], a0, ys);
            Ok(())
        })
    }

    fn rows(&self, xs: &[i16], a0: u8, ys: &mut [i32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked above); the sizes are checked in `run`.
            return unsafe { avx2::rows(self, xs, a0, ys) };
        }
        self.rows_any(xs, a0, ys)
    }

    /// The same integers, one at a time (CPUs without AVX2, and the tests' reference).
    fn rows_any(&self, xs: &[i16], a0: u8, ys: &mut [i32]) {
        let (k, row_len, n) = (self.k, self.row_len(), self.n);
        for (x, y) in xs.chunks_exact(row_len).zip(ys.chunks_exact_mut(n)) {
            for (col, out) in y.iter_mut().enumerate() {
                let (panel, c) = (col / PANEL, col % PANEL);
                let weights = &self.packed[panel * row_len * PANEL..];
                let mut acc = -(a0 as i32) * self.sums[col];
                for kk in 0..k {
                    let w = weights[(kk / 2) * 2 * PANEL + 2 * c + kk % 2];
                    acc += x[kk] as i32 * w as i32;
                }
                *out = acc;
            }
        }
    }
}

/// u8 to i16, value for value: the activations as [`Int8Product`] reads them. `padded`: a
/// zero after each row (last axis), for an odd k.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WidenToI16 {
    pub padded: bool,
}

impl Op for WidenToI16 {
    fn name(&self) -> StaticName {
        "WidenToI16".into()
    }

    op_as_typed_op!();
}

impl EvalOp for WidenToI16 {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let input = args_1!(inputs);
        let mut shape: TVec<usize> = input.shape().into();
        let k = shape.last().copied().unwrap_or(1).max(1);
        if let Some(last) = shape.last_mut() {
            *last += self.padded as usize;
        }
        let mut out = unsafe { Tensor::uninitialized_dt(i16::datum_type(), &shape)? };
        let input = input.try_as_plain_ram()?;
        let mut out_plain = out.try_as_plain_ram_mut()?;
        let ys = out_plain.as_slice_mut::<i16>()?;
        widen_rows(input.as_slice::<u8>()?, k, self.padded, ys);
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for WidenToI16 {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == u8::datum_type() && inputs[0].rank() > 0);
        let mut shape = inputs[0].shape.to_tvec();
        if let Some(last) = shape.last_mut() {
            *last = last.clone() + self.padded as usize;
        }
        Ok(tvec!(i16::fact(shape)))
    }

    as_op!();
}

/// Rows of `k` u8 values widened into `ys`, each followed by a zero if `padded`.
fn widen_rows(xs: &[u8], k: usize, padded: bool, ys: &mut [i16]) {
    if padded {
        for (x, y) in xs.chunks_exact(k).zip(ys.chunks_exact_mut(k + 1)) {
            widen(x, &mut y[..k]);
            y[k] = 0;
        }
    } else {
        widen(xs, ys);
    }
}

fn widen(xs: &[u8], ys: &mut [i16]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { widen_avx2(xs, ys) };
    }
    widen_any(xs, ys)
}

/// The same loop compiled for AVX2 (the `dist` build targets baseline x86-64).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn widen_avx2(xs: &[u8], ys: &mut [i16]) {
    widen_any(xs, ys)
}

#[inline(always)]
fn widen_any(xs: &[u8], ys: &mut [i16]) {
    for (y, &x) in ys.iter_mut().zip(xs) {
        *y = x as i16;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Int8Product, PANEL};
    use std::arch::x86_64::*;

    /// Pairs of k per block: a block of one panel is `KC · PANEL · 2` i16, 16 KiB, half of an
    /// L1.
    const KC: usize = 256;
    /// Rows of the activations per tile: 6 × 2 accumulators, 2 weight registers and one
    /// broadcast take 15 of AVX2's 16 registers.
    const MR: usize = 6;

    /// Every row of `xs` (i16, rows of k) by every panel, k in blocks of `KC` pairs so that a
    /// block of a panel stays in L1 while the tiles of rows pass over it.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn rows(op: &Int8Product, xs: &[i16], a0: u8, ys: &mut [i32]) {
        let (k, n) = (op.row_len(), op.n);
        let rows = xs.len() / k;
        let pairs = k / 2;
        // A panel short of 16 columns goes through `part`, so that no column past it is touched.
        let mut part = [0i32; MR * PANEL];
        for first_pair in (0..pairs).step_by(KC) {
            let block = KC.min(pairs - first_pair);
            for panel in 0..n.div_ceil(PANEL) {
                // The last panel may hold fewer than 16 of the output's columns.
                let cols = PANEL.min(n - panel * PANEL);
                let weights = op
                    .packed
                    .as_ptr()
                    .add((panel * pairs + first_pair) * 2 * PANEL);
                let sums = op.sums.as_ptr().add(panel * PANEL);
                let mut row = 0;
                while row < rows {
                    let x = xs.as_ptr().add(row * k + 2 * first_pair);
                    let start = if first_pair == 0 {
                        Some((a0, sums))
                    } else {
                        None
                    };
                    let out = ys.as_mut_ptr().add(row * n + panel * PANEL);
                    let tile_rows = MR.min(rows - row);
                    let (y, y_stride) = match (cols == PANEL, start.is_some()) {
                        (true, _) => (out, n),
                        (false, true) => (part.as_mut_ptr(), PANEL),
                        (false, false) => {
                            // What the blocks before stored.
                            for r in 0..tile_rows {
                                let to = part.as_mut_ptr().add(r * PANEL);
                                std::ptr::copy_nonoverlapping(out.add(r * n), to, cols);
                            }
                            (part.as_mut_ptr(), PANEL)
                        }
                    };
                    match tile_rows {
                        1 => tile::<1>(x, k, weights, block, y, y_stride, start),
                        2 => tile::<2>(x, k, weights, block, y, y_stride, start),
                        3 => tile::<3>(x, k, weights, block, y, y_stride, start),
                        4 => tile::<4>(x, k, weights, block, y, y_stride, start),
                        5 => tile::<5>(x, k, weights, block, y, y_stride, start),
                        _ => tile::<MR>(x, k, weights, block, y, y_stride, start),
                    }
                    if cols < PANEL {
                        for r in 0..tile_rows {
                            let from = part.as_ptr().add(r * PANEL);
                            std::ptr::copy_nonoverlapping(from, out.add(r * n), cols);
                        }
                    }
                    row += MR;
                }
            }
        }
    }

    /// `R` rows by one panel over `block` pairs of k, into 16 columns of `y` (rows `y_stride`
    /// apart). The first block starts from `−a0 · Σₖ b`, the others from what the blocks
    /// before stored.
    #[target_feature(enable = "avx2")]
    #[inline]
    unsafe fn tile<const R: usize>(
        x: *const i16,
        x_stride: usize,
        weights: *const i16,
        block: usize,
        y: *mut i32,
        y_stride: usize,
        start: Option<(u8, *const i32)>,
    ) {
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        match start {
            Some((a0, sums)) => {
                let a0 = _mm256_set1_epi32(-(a0 as i32));
                let s0 = _mm256_mullo_epi32(a0, _mm256_loadu_si256(sums as *const __m256i));
                let s1 = _mm256_mullo_epi32(a0, _mm256_loadu_si256(sums.add(8) as *const __m256i));
                for row in acc.iter_mut() {
                    *row = [s0, s1];
                }
            }
            None => {
                for (r, row) in acc.iter_mut().enumerate() {
                    let y = y.add(r * y_stride);
                    *row = [
                        _mm256_loadu_si256(y as *const __m256i),
                        _mm256_loadu_si256(y.add(8) as *const __m256i),
                    ];
                }
            }
        }
        for pair in 0..block {
            let w = weights.add(pair * 2 * PANEL);
            let w0 = _mm256_loadu_si256(w as *const __m256i);
            let w1 = _mm256_loadu_si256(w.add(16) as *const __m256i);
            for (r, row) in acc.iter_mut().enumerate() {
                let a = _mm256_set1_epi32(
                    (x.add(r * x_stride + 2 * pair) as *const i32).read_unaligned(),
                );
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(a, w0));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(a, w1));
            }
        }
        for (r, row) in acc.iter().enumerate() {
            let y = y.add(r * y_stride);
            _mm256_storeu_si256(y as *mut __m256i, row[0]);
            _mm256_storeu_si256(y.add(8) as *mut __m256i, row[1]);
        }
    }
}

impl Op for Int8Product {
    fn name(&self) -> StaticName {
        "Int8Product".into()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        Ok(vec![format!("{KERNEL}, k {}, n {}", self.k, self.n)])
    }

    op_as_typed_op!();
}

impl EvalOp for Int8Product {
    op_out_of_plan!();

    fn eval(&self, _ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        let (a, a0) = args_2!(inputs);
        let a0 = a0.cast_to_scalar::<u8>()?;
        ensure!(a.rank() > self.dropped && a.shape()[..self.dropped].iter().all(|&d| d == 1));
        let mut shape: TVec<usize> = a.shape()[self.dropped..].into();
        ensure!(
            shape.last() == Some(&self.row_len()),
            "Int8Product: {shape:?} by k {}",
            self.k
        );
        *shape.last_mut().unwrap() = self.n;
        let mut out = unsafe { Tensor::uninitialized_dt(i32::datum_type(), &shape)? };
        let a_plain = a.try_as_plain_ram()?;
        let mut out_plain = out.try_as_plain_ram_mut()?;
        self.run(
            a_plain.as_slice::<i16>()?,
            a0,
            out_plain.as_slice_mut::<i32>()?,
        )?;
        Ok(tvec!(out.into_tvalue()))
    }
}

impl TypedOp for Int8Product {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        ensure!(inputs[0].datum_type == i16::datum_type() && inputs[0].rank() > self.dropped);
        let mut shape: TVec<TDim> = inputs[0].shape.iter().skip(self.dropped).cloned().collect();
        ensure!(shape.last() == Some(&self.row_len().to_dim()));
        *shape.last_mut().unwrap() = self.n.to_dim();
        Ok(tvec!(i32::fact(shape)))
    }

    as_op!();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so that a failure repeats.
    fn values(seed: u64, len: usize) -> Vec<u8> {
        let mut s = seed | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 24) as u8
            })
            .collect()
    }

    /// What [`WidenToI16`] gives for rows of `k`, by its own code, checked value by value.
    fn widened(a: &[u8], k: usize) -> Vec<i16> {
        let row_len = k + k % 2;
        let mut wide = vec![-1; a.len() / k * row_len];
        widen_rows(a, k, k % 2 == 1, &mut wide);
        for (w, x) in wide.chunks_exact(row_len).zip(a.chunks_exact(k)) {
            assert!(w[..k].iter().zip(x).all(|(&w, &x)| w == x as i16));
            assert!(w[k..].iter().all(|&w| w == 0));
        }
        wide
    }

    /// `Σₖ (a − a0) · b` straight from the definition, in i64.
    fn reference(a: &[u8], a0: u8, b: &[i8], k: usize, n: usize) -> Vec<i32> {
        let rows = a.len() / k;
        let mut out = vec![0; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let s: i64 = (0..k)
                    .map(|kk| (a[r * k + kk] as i64 - a0 as i64) * b[kk * n + c] as i64)
                    .sum();
                out[r * n + c] = i32::try_from(s).unwrap();
            }
        }
        out
    }

    #[test]
    fn computes_the_products_exactly() {
        // Row counts around the tile (6), k across blocks (256 pairs) and odd, n in part
        // panels, extreme values too.
        for (rows, k, n, seed) in [
            (1, 2, 16, 1),
            (5, 8, 32, 2),
            (7, 384, 48, 3),
            (13, 1536, 16, 4),
            (12, 1026, 64, 5),
            (3, 1, 1, 6),
            (8, 7, 40, 7),
            (7, 515, 21, 8),
            (6, 384, 312, 9),
        ] {
            let a = values(seed, rows * k);
            let wide = widened(&a, k);
            let b: Vec<i8> = values(seed + 100, k * n).iter().map(|&v| v as i8).collect();
            for a0 in [0u8, 128, 255] {
                let op = Int8Product::new(&b, k, n, 0).unwrap();
                let want = reference(&a, a0, &b, k, n);
                let mut got = vec![0; rows * n];
                op.run(&wide, a0, &mut got).unwrap();
                assert_eq!(got, want, "rows {rows}, k {k}, n {n}, a0 {a0}");
                let mut any = vec![0; rows * n];
                op.rows_any(&wide, a0, &mut any);
                assert_eq!(any, want, "portable: rows {rows}, k {k}, n {n}, a0 {a0}");
            }
        }
        // The largest sums: every a 255 against -128, and every a 0 with a0 255.
        let (k, n) = (1536, 16);
        let b = vec![-128i8; k * n];
        let op = Int8Product::new(&b, k, n, 0).unwrap();
        for (a, a0) in [(255u8, 0u8), (0, 255)] {
            let mut got = vec![0; n];
            op.run(&widened(&vec![a; k], k), a0, &mut got).unwrap();
            assert_eq!(got, reference(&vec![a; k], a0, &b, k, n));
        }
    }

    #[test]
    fn takes_any_shape_with_weights_to_match() {
        assert!(Int8Product::new(&[0; 3 * 16], 3, 16, 0).is_some());
        assert!(Int8Product::new(&[0; 4 * 12], 4, 12, 0).is_some());
        assert!(Int8Product::new(&[0; 4 * 12], 4, 13, 0).is_none());
        assert!(Int8Product::new(&[], 0, 16, 0).is_none());
        assert!(!applies("avx512vnni_mmm_i32_8x8"));
        assert!(!applies("avx_mmm_i32_8x4"));
        assert!(!applies("arm64simd_mmm_i32_8x8"));
    }

    /// Throughput against the arithmetic peak (`cargo test --release -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn throughput() {
        for (rows, k, n) in [
            (128, 384, 384),
            (128, 384, 1536),
            (128, 1536, 384),
            (32, 384, 1536),
        ] {
            let a = widened(&values(7, rows * k), k);
            let b: Vec<i8> = values(8, k * n).iter().map(|&v| v as i8).collect();
            let op = Int8Product::new(&b, k, n, 0).unwrap();
            let mut y = vec![0; rows * n];
            let runs = 200;
            let started = std::time::Instant::now();
            for _ in 0..runs {
                op.run(&a, 3, &mut y).unwrap();
            }
            let s = started.elapsed().as_secs_f64() / runs as f64;
            eprintln!(
                "{rows}×{k}×{n}: {:.1} µs, {:.1} GMAC/s",
                s * 1e6,
                (rows * k * n) as f64 / s / 1e9
            );
        }
    }
}
