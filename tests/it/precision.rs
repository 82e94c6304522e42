//! Which int8 kernel tract picks on this CPU and which precision `auto` makes of it, checked
//! against what the CPU is, read independently of tract: the `QEMU_CPU` model that
//! `scripts/cross-test` runs under, or the flags of `/proc/cpuinfo` on x86-64. Then the loaded
//! pipeline: the kernels in its plan are the precision's (no int8 product left in the f32 form,
//! the weight products int8 in the int8 form), and this crate's AVX2 product computes what
//! tract's int8 kernels compute.

use attnprompt::config::Layers;
use attnprompt::encoder::{Encoder, EncoderSpec};
use attnprompt::int8_product;
use attnprompt::precision::{choose, int8_kernel};
use attnprompt::quantize::ProductKernel;
use attnprompt::{Config, Pipeline, Precision};

use crate::common::{binary, emulated, shipped_model_dir};

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
                    // tract's kernel, but this crate's AVX2 product runs the int8 form.
                    ("avx2_mmm_i32_8x8", true)
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
fn auto_picks_int8_where_the_int8_products_are_the_faster() {
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

/// This crate's AVX2 int8 product (`int8_product.rs`, what the int8 form runs on AVX2-only x86)
/// gives the attention of tract's int8 kernels to the bit, every layer, the shipped model: both
/// sum the same integers exactly. Host x86-64 with AVX2 only (whatever its int8 kernel: here
/// both are asked for); the op's portable code, for other CPUs, is checked by its unit tests.
#[test]
fn the_avx2_int8_product_gives_tracts_int8_attention_to_the_bit() {
    if emulated() || !int8_product::applies("avx2_mmm_i32_8x8") {
        eprintln!("skipped: needs x86-64 with AVX2, not emulated");
        return;
    }
    let model = shipped_model_dir().join("model.onnx");
    let load = |products| {
        let spec = EncoderSpec {
            precision: Precision::Int8,
            layers: Some(Layers::All),
            int8_products: Some(products),
            ..EncoderSpec::new(32)
        };
        Encoder::load(&model, &spec).unwrap()
    };
    let (mut tract, mut ours) = (load(ProductKernel::Tract), load(ProductKernel::WidenedAvx2));
    // Every layer read: the 32 products the attention needs (the last layer's values and
    // feed-forward are pruned), all of them on this crate's op.
    let own = |e: &Encoder| {
        e.facts()
            .kernels
            .iter()
            .find(|(k, _)| k == int8_product::KERNEL)
            .map_or(0, |&(_, n)| n)
    };
    assert_eq!(
        (own(&tract), own(&ours)),
        (0, 32),
        "{:?}",
        ours.facts().kernels
    );
    // Its i16 weights are counted: one byte more per int8 weight, and 4 per column for its sums
    // (5 whole layers, then the last layer's queries and keys).
    let per_layer = 4 * 384 * 384 + 2 * 384 * 1536 + 4 * (5 * 384 + 1536);
    let products_weights: u64 = 5 * per_layer + 2 * (384 * 384 + 4 * 384);
    assert_eq!(
        ours.facts().weight_bytes,
        tract.facts().weight_bytes + products_weights
    );
    // "the scheduler places containers on nodes", and a text of 29 tokens.
    let short: Vec<u32> = vec![101, 1996, 6134, 2099, 3182, 16143, 2006, 14164, 102];
    let long: Vec<u32> = std::iter::once(101)
        .chain((0..27).map(|i| 2000 + 37 * i))
        .chain(std::iter::once(102))
        .collect();
    for ids in [short, long] {
        let bits = |e: &mut Encoder| -> Vec<u32> {
            let out = e.run(&ids).unwrap();
            out.attention
                .iter()
                .flat_map(|t| {
                    let plain = t.try_as_plain_ram().unwrap();
                    plain
                        .as_slice::<f32>()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        let (want, got) = (bits(&mut tract), bits(&mut ours));
        assert_eq!(want.len(), 6 * 12 * ids.len() * ids.len());
        assert!(want == got, "{} tokens: the attention differs", ids.len());
    }
}

/// Where `auto` takes int8 for this crate's AVX2 product, a model with an int8 product the op
/// does not take (the shipped one with one weight's zero point made 1) runs in f32 instead, and
/// says why: tract's AVX2 int8 kernel would run that product slower than f32. The binary runs
/// with tract's upper x86 tiers hidden (tract reads the switch once per process), so that its
/// int8 kernel is the AVX2 one; the shipped model under the same switch keeps int8. x86-64 with
/// AVX2 only, not emulated.
#[test]
fn auto_runs_f32_where_tracts_avx2_kernel_would_get_an_int8_product() {
    use prost::Message;
    if emulated() || !int8_product::applies("avx2_mmm_i32_8x8") {
        eprintln!("skipped: needs x86-64 with AVX2, not emulated");
        return;
    }
    let shipped = shipped_model_dir();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("zero-point-one");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(shipped.join("tokenizer.json"), dir.join("tokenizer.json")).unwrap();
    let bytes = std::fs::read(shipped.join("model.onnx")).unwrap();
    let mut model = tract_onnx::pb::ModelProto::decode(&bytes[..]).unwrap();
    let graph = model.graph.as_mut().unwrap();
    let first = graph
        .node
        .iter()
        .find(|n| n.op_type == "MatMulInteger")
        .unwrap();
    let zero_point = first.input[3].clone();
    let init = graph
        .initializer
        .iter_mut()
        .find(|t| t.name == zero_point)
        .unwrap();
    // 384 zeros, as raw bytes or (the ONNX form for small int types) one i32 each.
    match init.raw_data.is_empty() {
        true => {
            assert!(init.int32_data.len() == 384 && init.int32_data.iter().all(|&v| v == 0));
            init.int32_data[0] = 1;
        }
        false => {
            assert!(init.raw_data.len() == 384 && init.raw_data.iter().all(|&b| b == 0));
            init.raw_data[0] = 1;
        }
    }
    std::fs::write(dir.join("model.onnx"), model.encode_to_vec()).unwrap();

    let inspect = |model_dir: &std::path::Path| -> String {
        let out = binary()
            .args(["inspect", "--model"])
            .arg(model_dir)
            .env(
                "TRACT_CPU_ISA",
                "-amx-int8,-amx-bf16,-avx512vnni,-avxvnni,-avx512f,-avx512fp16",
            )
            .env_remove(attnprompt::config::PRECISION_ENV)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let precision = |text: &str| -> String {
        text.lines()
            .find(|l| l.starts_with("precision"))
            .unwrap_or_default()
            .to_string()
    };
    let shipped_line = precision(&inspect(&shipped));
    assert!(shipped_line.contains("int8 (auto"), "{shipped_line}");
    let changed = inspect(&dir);
    let line = precision(&changed);
    assert!(line.contains("f32 (auto"), "{line}");
    assert!(line.contains("1 of this model's int8 products"), "{line}");
    assert!(!changed.contains(int8_product::KERNEL), "{changed}");
}
