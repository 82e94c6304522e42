//! Which int8 kernel tract picks on this CPU and which precision `auto` makes of it, checked
//! against what the CPU is, read independently of tract: the `QEMU_CPU` model that
//! `scripts/cross-test` runs under, or the flags of `/proc/cpuinfo` on x86-64. Then the loaded
//! pipeline: the kernels in its plan are the precision's (no int8 product left in the f32 form,
//! the weight products int8 in the int8 form).

use attnprompt::precision::{choose, int8_kernel};
use attnprompt::{Config, Pipeline, Precision};

use crate::common::shipped_model_dir;

/// The int8 kernel family this CPU must get, and whether `auto` must pick int8 there.
fn expected() -> (&'static str, bool) {
    match std::env::var("QEMU_CPU").ok().as_deref() {
        // Pi 4: no dot product, SMLAL.
        Some("cortex-a72") => ("arm64simd_mmm_i32_8x8", false),
        // Pi 5: SDOT.
        Some("cortex-a76") | Some("neoverse-n1") => ("arm64simd_mmm_i32_8x8_dot", true),
        Some("cortex-a15") | Some("cortex-a7") => ("armv7neon_mmm_i32_", false),
        Some(other) => panic!("no expectation for QEMU_CPU={other}"),
        None => {
            let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            let flags: Vec<&str> = info
                .lines()
                .find(|l| l.starts_with("flags") || l.starts_with("Features"))
                .map(|l| l.split_whitespace().collect())
                .unwrap_or_default();
            let has = |f: &str| flags.contains(&f);
            if cfg!(target_arch = "x86_64") {
                // Dot products: int8 is the faster form (measured; AMX estimated).
                if has("amx_int8") {
                    ("avx512amx_mmm_i32_", true)
                } else if has("avx512_vnni") && has("avx512f") {
                    ("avx512vnni_mmm_i32_", true)
                } else if has("avx_vnni") {
                    ("avxvnni_mmm_i32_", true)
                } else if has("avx2") {
                    ("avx2_mmm_i32_8x8", false)
                } else {
                    ("avx_mmm_i32_", false)
                }
            } else if cfg!(target_arch = "aarch64") {
                if has("asimddp") {
                    ("arm64simd_mmm_i32_8x8_dot", true)
                } else {
                    ("arm64simd_mmm_i32_8x8", false)
                }
            } else {
                panic!("no expectation for this CPU: run under scripts/cross-test's QEMU_CPU")
            }
        }
    }
}

#[test]
fn auto_picks_int8_only_where_the_int8_kernel_has_dot_products() {
    let (family, int8) = expected();
    let kernel = int8_kernel(384, 384, 128).unwrap();
    // A prefix (a tile size tract may change) or, where the dot variant matters, the full name.
    if family.ends_with('_') {
        assert!(kernel.starts_with(family), "{kernel}, expected {family}*");
    } else {
        assert_eq!(kernel, family);
    }
    let choice = choose(Precision::Auto, true).unwrap();
    assert_eq!(choice.is_int8(), int8, "{choice:?}");
    assert!(choice.reason.contains(&kernel), "{}", choice.reason);
}

/// Both forms of the shipped model load, and their plans hold the kernels of their precision:
/// the f32 form has no int8 kernel at all, nor an element-wise op on tract's generic path; the
/// int8 form runs its 36 weight products (those not
/// pruned: 32) in int8 and only the attention's activation products in f32.
#[test]
fn each_form_runs_its_own_kernels() {
    for precision in [Precision::Int8, Precision::F32] {
        let mut cfg = Config::new(shipped_model_dir());
        cfg.precision = precision;
        cfg.max_seq = 32;
        cfg.candidates = attnprompt::Candidates::Stopwords;
        let p = Pipeline::load(cfg).unwrap();
        let facts = p.model_facts();
        assert_eq!(facts.precision.precision, precision.name());
        // GELU, LayerNorm, the residual adds: on vectorized kernels though the sequence length
        // is symbolic (the f32 form runs 1.8× faster than with them on the generic path:
        // BENCHMARKS.md).
        assert_eq!(facts.generic_binary_nodes, 0);
        // Nodes per kernel; a node whose plan keeps two kernels (one for a single column)
        // names both, so the int8 products are the largest count among int8 kernels.
        let int8_nodes = facts
            .kernels
            .iter()
            .filter(|(k, _)| k.contains("_i32_"))
            .map(|&(_, n)| n)
            .max()
            .unwrap_or(0);
        match precision {
            Precision::F32 => {
                assert_eq!(int8_nodes, 0, "{:?}", facts.kernels);
                assert_eq!(facts.dequantized_matmuls, 36);
            }
            _ => {
                assert_eq!(int8_nodes, 32, "{:?}", facts.kernels);
                assert_eq!(facts.dequantized_matmuls, 0);
            }
        }
    }
}
