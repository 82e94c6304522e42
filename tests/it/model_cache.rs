//! The model cache (src/model_cache.rs): a load from the cache computes exactly what the load
//! from the ONNX file computes, in both forms, and a cache file that is damaged or made for
//! another setting or form never changes an answer.

use std::path::{Path, PathBuf};

use attnprompt::config::Layers;
use attnprompt::encoder::{Encoder, EncoderSpec};
use attnprompt::{Config, Pipeline, Precision};

use crate::common::{emulated, shipped_model_dir};

fn cache_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("model-cache-{test}"));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn cache_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// The f32 form, the last layer's attention, and the cache in `dir`.
fn spec(dir: &Path, layers: Layers) -> EncoderSpec {
    EncoderSpec {
        precision: Precision::F32,
        layers: Some(layers),
        cache_dir: Some(dir.to_path_buf()),
        ..EncoderSpec::new(32)
    }
}

/// "the scheduler places containers on nodes" as the shipped tokenizer gives it ([CLS] … [SEP]).
const IDS: [u32; 9] = [101, 1996, 6134, 2099, 3182, 16143, 2006, 14164, 102];

fn attention(encoder: &mut Encoder) -> Vec<f32> {
    let out = encoder.run(&IDS).unwrap();
    out.attention
        .iter()
        .flat_map(|t| {
            t.try_as_plain_ram()
                .unwrap()
                .as_slice::<f32>()
                .unwrap()
                .to_vec()
        })
        .collect()
}

/// How many nodes of this crate's ops and of tract's products the plan runs.
fn ops_that_matter(encoder: &mut Encoder) -> Vec<(String, usize)> {
    let mut ops = Vec::new();
    encoder.profile(&IDS, &mut ops).unwrap();
    let mut counts: Vec<(String, usize)> = ops
        .into_iter()
        .filter(|o| {
            [
                "DynamicQuantizeLinear",
                "Rescale",
                "NanToZero",
                "OptMatMul",
                "MoveAxis",
            ]
            .contains(&o.op.as_str())
        })
        .map(|o| (o.op, o.nodes))
        .collect();
    counts.sort();
    counts
}

#[test]
fn a_load_from_the_cache_computes_what_the_onnx_load_computes() {
    load_twice_and_compare("same", Precision::F32);
}

/// The int8 form's graph goes through the cache with its products whole, and the identity casts
/// tract-nnef's loader adds are taken out when it is read, so this crate's rewrites
/// (`quantize.rs`) find it as they find the ONNX load's.
#[test]
fn an_int8_load_from_the_cache_computes_what_the_onnx_load_computes() {
    if emulated() {
        eprintln!("skipped under emulation: the graph written and read is the host's code; the f32 test runs there");
        return;
    }
    load_twice_and_compare("same-int8", Precision::Int8);
}

fn load_twice_and_compare(test: &str, precision: Precision) {
    let dir = cache_dir(test);
    let model = shipped_model_dir().join("model.onnx");
    let spec = EncoderSpec {
        precision,
        ..spec(&dir, Layers::All)
    };

    let mut from_onnx = Encoder::load(&model, &spec).unwrap();
    assert!(!from_onnx.facts().from_cache);
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "one cache file written: {files:?}");
    let mut from_cache = Encoder::load(&model, &spec).unwrap();
    assert!(
        from_cache.facts().from_cache,
        "the second load reads the cache"
    );

    // What the load learnt, as the ONNX load learnt it.
    let (a, b) = (from_onnx.facts(), from_cache.facts());
    assert_eq!(
        (&a.attention_nodes, a.layers, &a.read_layers, a.heads),
        (&b.attention_nodes, b.layers, &b.read_layers, b.heads)
    );
    assert_eq!(
        (a.int8_ops, a.dequantized_matmuls, a.has_token_type_ids),
        (b.int8_ops, b.dequantized_matmuls, b.has_token_type_ids)
    );
    assert_eq!(
        (
            a.weight_bytes,
            a.load_peak_bytes,
            a.activations_bytes,
            a.file_bytes
        ),
        (
            b.weight_bytes,
            b.load_peak_bytes,
            b.activations_bytes,
            b.file_bytes
        )
    );
    assert_eq!(a.precision.precision, b.precision.precision);
    assert_eq!(a.kernels, b.kernels);
    assert_eq!((a.generic_binary_nodes, b.generic_binary_nodes), (0, 0));

    // The same graph: the same numbers, to the bit (the embedding's int8 dequantization is
    // written as the op it is, not re-expressed).
    let (x, y) = (attention(&mut from_onnx), attention(&mut from_cache));
    assert_eq!(x.len(), 6 * 12 * IDS.len() * IDS.len());
    let differ = x
        .iter()
        .zip(&y)
        .filter(|(p, q)| p.to_bits() != q.to_bits())
        .count();
    assert_eq!(differ, 0, "{differ} of {} attention values differ", x.len());

    // The same ops of this crate and the same number of products: a graph that computes the
    // same values on a slower path (an int8 product's rescale as tract's cast, multiply and add
    // instead of this crate's one op, as tract-nnef's graph gives with its identity casts
    // in), or with axis moves around each f32 product (as tract-nnef's writer leaves them when a
    // product is not written whole), is not the same load. (The node counts differ: tract-nnef
    // merges equal constants.)
    assert_eq!(
        ops_that_matter(&mut from_onnx),
        ops_that_matter(&mut from_cache)
    );
}

#[test]
fn a_damaged_or_outdated_cache_file_is_replaced_and_never_changes_an_answer() {
    if emulated() {
        // File handling only, the same code on every target; the load from the cache itself
        // runs under emulation in the test above.
        eprintln!("skipped under emulation: file handling, tested on the host");
        return;
    }
    let dir = cache_dir("damaged");
    let config = Config {
        precision: Precision::F32,
        model_cache: Some(dir.clone()),
        ..Config::new(shipped_model_dir())
    };
    let text = "Kubernetes schedules containers onto the nodes of a cluster.";
    let answer = |pipeline: &mut Pipeline| {
        let out = pipeline.run(text).unwrap();
        (format!("{:?}", out.keywords), out.prompt)
    };
    let mut first = Pipeline::load(config.clone()).unwrap();
    let expected = answer(&mut first);
    drop(first);
    let file = cache_files(&dir).pop().expect("a cache file");

    // Cut in half: ignored (with a warning), the ONNX file loaded, a whole file written again.
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let mut after_damage = Pipeline::load(config.clone()).unwrap();
    assert!(!after_damage.model_facts().from_cache);
    assert_eq!(answer(&mut after_damage), expected);
    assert_eq!(std::fs::read(&file).unwrap().len(), bytes.len());
    drop(after_damage);

    // Garbage of the right name: the same.
    std::fs::write(&file, b"not a tar file").unwrap();
    let mut after_garbage = Pipeline::load(config.clone()).unwrap();
    assert!(!after_garbage.model_facts().from_cache);
    assert_eq!(answer(&mut after_garbage), expected);
    drop(after_garbage);

    // A whole file again: read from the cache, the same answer.
    let mut cached = Pipeline::load(config.clone()).unwrap();
    assert!(cached.model_facts().from_cache);
    assert_eq!(answer(&mut cached), expected);
    drop(cached);

    // Another setting of the same model file (every layer read): a file of its own, which
    // replaces the first.
    let all_layers = Config {
        layers: Some(Layers::All),
        ..config.clone()
    };
    let loaded = Pipeline::load(all_layers).unwrap();
    assert!(!loaded.model_facts().from_cache);
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_ne!(files[0], file);
}

#[test]
fn the_two_forms_are_kept_side_by_side_and_a_memory_budget_is_never_cached() {
    if emulated() {
        eprintln!("skipped under emulation: which loads are cached is decided on the host's code");
        return;
    }
    let dir = cache_dir("apart");
    let model = shipped_model_dir().join("model.onnx");
    let budget = EncoderSpec {
        load_budget: Some(1 << 30),
        ..spec(&dir, Layers::Last)
    };
    assert!(!Encoder::load(&model, &budget).unwrap().facts().from_cache);
    assert!(cache_files(&dir).is_empty(), "{:?}", cache_files(&dir));

    // The int8 form writes its own file; the f32 form of the same file and setting does not
    // read it, and writes its own beside it.
    let int8 = EncoderSpec {
        precision: Precision::Int8,
        ..spec(&dir, Layers::Last)
    };
    assert!(!Encoder::load(&model, &int8).unwrap().facts().from_cache);
    let int8_file = cache_files(&dir);
    assert_eq!(int8_file.len(), 1, "{int8_file:?}");
    // A file of this model named before the forms were kept apart (no form in its name).
    let name = int8_file[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let form_at = name.rfind("-int8-").expect(&name);
    let old_layout = dir.join(format!("{}{}", &name[..form_at], &name[form_at + 5..]));
    std::fs::write(&old_layout, b"written by an older attnprompt").unwrap();
    let f32 = Encoder::load(&model, &spec(&dir, Layers::Last)).unwrap();
    assert!(!f32.facts().from_cache);
    assert!(!f32.facts().precision.is_int8());
    let both = cache_files(&dir);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.contains(&int8_file[0]), "{both:?}");
    assert!(!old_layout.exists(), "{both:?}");

    // Alternating the forms, each start reads its own file.
    assert!(Encoder::load(&model, &int8).unwrap().facts().from_cache);
    assert!(
        Encoder::load(&model, &spec(&dir, Layers::Last))
            .unwrap()
            .facts()
            .from_cache
    );
    assert_eq!(cache_files(&dir), both);

    // Another setting of one form replaces that form's file only.
    let all_layers = Encoder::load(&model, &spec(&dir, Layers::All)).unwrap();
    assert!(!all_layers.facts().from_cache);
    let now = cache_files(&dir);
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.contains(&int8_file[0]), "{now:?}");
    assert!(
        now.iter()
            .all(|file| both.contains(file) == (file == &int8_file[0])),
        "{now:?}"
    );
}
