//! Which precision the encoder computes in: int8 where tract's int8 path is the faster form on
//! this CPU, f32 elsewhere.
//!
//! int8 matrix products can only be fast on a CPU that multiplies and adds four int8 pairs in one
//! instruction (x86 VNNI, AVX-VNNI, AMX; ARM SDOT). Without one, tract's int8 kernels widen to
//! 16 bits and do a quarter of the work per instruction that its f32 FMA kernels do, and the
//! dynamic quantization of every activation comes on top: on an AVX2-only x86 the shipped int8
//! model ran 33 times slower than its f32 form (so there, since 2026-12-06, this crate's own
//! AVX2 product, `int8_product.rs`, runs the int8 products: exact 16-bit pairs with `vpmaddwd`,
//! twice an f32 FMA's multiply-adds per instruction). With one, the products are faster, and what the
//! int8 form adds around them (quantizing each activation, the zero-point terms) now costs less
//! than they save: `quantize.rs` does both without tract's per-element paths, and the int8 form
//! runs 1.1–1.5× faster than f32 on the x86 dot-product classes measured (BENCHMARKS.md; before
//! it, f32 was 1.1–2.1× faster there). So `auto` asks tract which kernel its int8 products would
//! get on this CPU and reads its name:
//!
//! | int8 kernel tract picks | instruction | CPUs | auto | from |
//! | --- | --- | --- | --- | --- |
//! | `avx512vnni_mmm_i32_*` | VPDPBUSD (AVX-512 VNNI) | Xeon since Cascade Lake, Zen 4 | int8 | measured: int8 1.2× faster |
//! | `avxvnni_mmm_i32_*` | VPDPBUSD (AVX-VNNI) | Core since Alder Lake | int8 | measured: 1.5× (AVX-512 CPU, upper tiers hidden) |
//! | `avx512amx_mmm_i32_*` | TDPBSSD (AMX-INT8) | Xeon since Sapphire Rapids | int8 | measured: int8 1.9–2.5× faster (2026-12-07) |
//! | `avx2_mmm_i32_8x8` | VPMADDWD in this crate's op (`int8_product.rs`), not tract's kernel | AVX2-only x86 (Zen 2/3, Intel Haswell to Comet Lake) | int8 | measured: int8 1.37–1.43× faster (AVX-512 Zen 4, upper tiers hidden); estimate: about f32's speed on Haswell and Broadwell, which issue `vpmaddwd` once a cycle; tract's own kernel was 42–47× slower than f32 (Zen 3) |
//! | `avx_mmm_i32_8x4` | VPMULLW (16-bit) | x86 with AVX, no AVX2 | f32 | tract's kernel, as on AVX2 before |
//! | `arm64simd_mmm_i32_*_dot` | SDOT | Cortex-A55/A76/A78 (Pi 5, Jetson Orin) | int8 | estimate: int8 faster |
//! | `sme_qmmm_i32_*` | SME outer products | Armv9 with SME | int8 | not measured |
//! | `arm64simd_mmm_i32_8x8` | SMLAL (16-bit) | Cortex-A72 (Pi 4), A53 | f32 | estimate: f32 about 2× faster |
//! | `sve_mmm_i32_*` | SVE widening multiply-add | Armv9 with SVE2 | f32 | not measured |
//! | `armv7neon_mmm_i32_*` | VMLAL (16-bit) | 32-bit ARM | f32 | not measured |
//! | `generic_*` | portable Rust | anything else | f32 | not measured |
//!
//! The ARM rows are estimates (no board was at hand; BENCHMARKS.md, "ARM"): an A76 issues SDOT
//! at four times the multiply-adds per cycle of its f32 FMA, against two to four times on the x86
//! classes; an A72's NEON unit issues two 4-wide f32 FMAs per cycle but one 4-wide SMLAL, so
//! tract's f32 products do about twice the multiply-adds per cycle of its int8 ones before the
//! quantization costs anything. `attnprompt bench --compare` measures both forms on the board
//! at hand.

use tract_linalg::mmm::Query;
use tract_linalg::MmmDispatch;
use tract_onnx::prelude::DatumType;

use crate::error::{Error, Result};

pub use crate::config::Precision;

/// The precision the encoder runs in, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Choice {
    /// `int8` or `f32`, never `auto`.
    pub precision: &'static str,
    /// Why, in a sentence, for `inspect`, `bench`, `--json` and the log.
    pub reason: String,
    /// The kernel tract's int8 matrix products get on this CPU (what `auto` reads).
    pub int8_kernel: String,
    /// `auto` took this form because the faster one did not fit the memory budget.
    pub for_memory: bool,
}

impl Choice {
    pub fn is_int8(&self) -> bool {
        self.precision == "int8"
    }
}

/// The kernel tract would run an int8 matrix product of `m × k` by `k × n` with, on this CPU
/// (tract-linalg's own dispatch: the instruction sets it detects, then its preference among the
/// kernels it built for them). `None` only if tract has no int8 kernel at all.
pub fn int8_kernel(m: usize, k: usize, n: usize) -> Option<String> {
    MmmDispatch::native()
        .pick(&Query::plain(DatumType::I32, Some(m), Some(k), Some(n)))
        .map(|(kernel, _, _)| kernel.name().to_string())
}

/// Whether a kernel (by tract-linalg's name) multiplies int8 with dot-product instructions.
pub fn is_dot_product_kernel(name: &str) -> bool {
    is_x86_dot_product_kernel(name) || is_arm_dot_product_kernel(name)
}

fn is_x86_dot_product_kernel(name: &str) -> bool {
    name.contains("vnni") || name.contains("amx")
}

fn is_arm_dot_product_kernel(name: &str) -> bool {
    name.ends_with("_dot") || name.starts_with("sme_")
}

/// Whether `auto` runs int8 with this int8 kernel on this CPU (the table above), and why, in a
/// clause.
pub fn auto_takes_int8(kernel: &str) -> (bool, String) {
    auto_rule(kernel, crate::int8_product::applies(kernel))
}

/// The table: `own_avx2` says whether this crate's AVX2 product takes the int8 products.
fn auto_rule(kernel: &str, own_avx2: bool) -> (bool, String) {
    if is_dot_product_kernel(kernel) {
        (
            true,
            format!("tract's int8 kernel on this CPU, {kernel}, uses dot-product instructions"),
        )
    } else if own_avx2 {
        (
            true,
            format!(
                "tract's int8 kernel on this CPU, {kernel}, has no dot-product instructions; this \
                 crate's AVX2 product ({}) runs the int8 products instead",
                crate::int8_product::KERNEL
            ),
        )
    } else {
        (
            false,
            format!(
                "tract's int8 kernel on this CPU, {kernel}, has no dot-product instructions, so \
                 f32 is faster"
            ),
        )
    }
}

/// The shape `auto` asks about: a BERT projection at the default sequence length (hidden 384,
/// 128 tokens). The kernel family does not depend on it; tract only picks a GEMV kernel for
/// a single column.
const PROBE: (usize, usize, usize) = (384, 384, 128);

/// Resolves `asked` for a model: `int8_model` says whether its matrix products are int8.
pub fn choose(asked: Precision, int8_model: bool) -> Result<Choice> {
    let kernel = int8_kernel(PROBE.0, PROBE.1, PROBE.2).unwrap_or_else(|| "none".into());
    let (int8_faster, why) = auto_takes_int8(&kernel);
    let (precision, reason) = match (asked, int8_model) {
        (Precision::Int8, false) => {
            return Err(Error::Config(
                "--precision int8 needs a model with int8 weights (MatMulInteger); this one \
                 computes in float: use --precision f32 or auto"
                    .into(),
            ))
        }
        (Precision::Int8, true) => ("int8", "asked for (--precision int8)".to_string()),
        (Precision::F32, true) => (
            "f32",
            "asked for (--precision f32): int8 weights dequantized to f32 at load".to_string(),
        ),
        (_, false) => ("f32", "the model computes in float".to_string()),
        (Precision::Auto, true) if int8_faster => ("int8", format!("auto: {why}")),
        (Precision::Auto, true) => (
            "f32",
            format!("auto: {why}; int8 weights dequantized to f32 at load"),
        ),
    };
    Ok(Choice {
        precision,
        reason,
        int8_kernel: kernel,
        for_memory: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in Precision::NAMES {
            assert_eq!(name.parse::<Precision>().unwrap().name(), name);
        }
        assert!("fp16".parse::<Precision>().is_err());
    }

    #[test]
    fn dot_product_kernels_by_name() {
        for dot in [
            "avx512vnni_mmm_i32_16x16",
            "avx512vnni_mmm_i32_8x8",
            "avxvnni_mmm_i32_8x8",
            "avx512amx_mmm_i32_16x16",
            "arm64simd_mmm_i32_8x8_dot",
            "sme_qmmm_i32_32x32",
        ] {
            assert!(is_dot_product_kernel(dot), "{dot}");
        }
        for plain in [
            "avx2_mmm_i32_8x8",
            "avx_mmm_i32_8x4",
            "arm64simd_mmm_i32_8x8",
            "arm64simd_mmm_i32_64x1",
            "sve_mmm_i32_8x8",
            "armv7neon_mmm_i32_8x4",
            "generic_i32_4x4",
        ] {
            assert!(!is_dot_product_kernel(plain), "{plain}");
        }
    }

    /// The table: int8 on the dot-product kernels, x86 and ARM.
    #[test]
    fn auto_takes_int8_on_dot_product_kernels() {
        for (kernel, own_avx2, int8) in [
            ("avx512amx_mmm_i32_16x16", false, true),
            ("avx512vnni_mmm_i32_16x16", false, true),
            ("avxvnni_mmm_i32_8x8", false, true),
            ("avx2_mmm_i32_8x8", true, true),
            ("avx2_mmm_i32_8x8", false, false),
            ("avx_mmm_i32_8x4", false, false),
            ("arm64simd_mmm_i32_8x8_dot", false, true),
            ("sme_qmmm_i32_32x32", false, true),
            ("arm64simd_mmm_i32_8x8", false, false),
            ("armv7neon_mmm_i32_8x4", false, false),
            ("generic_i32_4x4", false, false),
        ] {
            let (takes, why) = auto_rule(kernel, own_avx2);
            assert_eq!(takes, int8, "{kernel}");
            assert!(why.contains(kernel), "{why}");
            assert_eq!(why.contains("vpmaddwd"), own_avx2, "{why}");
        }
        // This crate's AVX2 product takes over where tract's int8 kernel is AVX2's, on x86-64
        // with AVX2 only.
        let x86_avx2 = {
            #[cfg(target_arch = "x86_64")]
            {
                std::arch::is_x86_feature_detected!("avx2")
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                false
            }
        };
        assert_eq!(crate::int8_product::applies("avx2_mmm_i32_8x8"), x86_avx2);
        assert!(!crate::int8_product::applies("avx512vnni_mmm_i32_8x8"));
        assert!(!crate::int8_product::applies("arm64simd_mmm_i32_8x8"));
    }

    /// `auto` follows the kernel tract picks on the CPU running the test, whatever it is, and
    /// an explicit choice is kept; a float model has only f32.
    #[test]
    fn auto_follows_the_kernel_and_explicit_choices_hold() {
        let kernel = int8_kernel(384, 384, 128).expect("tract has an int8 kernel");
        let auto = choose(Precision::Auto, true).unwrap();
        assert_eq!(auto.int8_kernel, kernel);
        assert_eq!(auto.is_int8(), auto_takes_int8(&kernel).0, "{auto:?}");
        assert!(choose(Precision::Int8, true).unwrap().is_int8());
        assert!(!choose(Precision::F32, true).unwrap().is_int8());
        assert!(!choose(Precision::Auto, false).unwrap().is_int8());
        assert!(choose(Precision::Int8, false).is_err());
    }
}
