//! The model cache: a model's graph in the form chosen (f32 or int8) as tract has decluttered
//! it, kept as NNEF so that the next load skips what costs most of a cold start (decoding the
//! protobuf, dequantizing the weights, building, typing and decluttering the graph:
//! BENCHMARKS.md, "Cold start"). Only tract's `optimize` is left, which depends on the CPU and
//! so is never cached; from a graph read back, the identity casts tract-nnef adds are taken out.
//!
//! One file per model file, form and setting, named
//! `<model dir>-<path hash>-<form>-<key hash>.nnef.tar`. The key holds this crate's and tract's
//! versions, the model file's path, size and modification time, and the settings that shape the
//! graph (the layers read, the model's own outputs kept, the form); it is stored in the file too
//! and checked on read. A new key for the same model file and form replaces the old file; the
//! two forms are kept side by side, so loads that alternate them (`bench --compare`, or one cache
//! directory shared by an AVX2 machine and a VNNI one) do not rewrite each other's file on every
//! start. A file that does not read, or whose key differs, is
//! ignored with a warning and replaced: the cache is never needed for a right answer, and a
//! failure to write it only costs the next start its speed.
//!
//! Serializers here: this crate's quantizing op (the int8 form), and every product written whole
//! as tract's `tract_core_einsum` / `tract_core_einsum_q` (`WholeProduct`). Not cached:
//! a load under a memory budget (its plan bounds the ONNX load, which is what it measured) or an
//! embedded model (`files.rs`).

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tract_nnef::internal::*;
use tract_nnef::ser::{datum_type, invocation, numeric, string};
use tract_onnx::tract_core::ops::einsum::EinSum;
use tract_onnx::tract_core::ops::quant::DequantizeLinearF32;
use tract_onnx::WithOnnx;

use crate::encoder::{EncoderSpec, StoredFacts};
use crate::precision;
use crate::quantize::DynamicQuantize;

/// The environment variable that sets the cache directory (`off`: no cache).
pub const CACHE_ENV: &str = "ATTNPROMPT_MODEL_CACHE";

/// What the cache directory may be set to, to turn the cache off.
pub const OFF: &str = "off";

/// Where the cache lives unless told: `$XDG_CACHE_HOME/attnprompt`, else
/// `$HOME/.cache/attnprompt`; `None` when neither variable is set.
pub fn default_dir() -> Option<PathBuf> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    nonempty("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| nonempty("HOME").map(|home| Path::new(&home).join(".cache")))
        .map(|dir| dir.join("attnprompt"))
}

/// The cache file for one model file, form and setting.
pub struct Entry {
    file: PathBuf,
    /// Every cache file of the same model file starts with it.
    model_prefix: String,
    /// The form's name in the file name: `int8` or `f32`.
    form: &'static str,
    key: String,
}

/// The forms a cache file can hold, as its name spells them after the model prefix.
const FORMS: [&str; 2] = ["int8", "f32"];

/// The property names the facts are stored under in the NNEF file.
const KEY: &str = "attnprompt.cache_key";
const FACTS: &str = "attnprompt.facts";
const FACT_NAMES: [&str; 9] = [
    "layers",
    "heads",
    "int8_ops",
    "dequantized_matmuls",
    "has_token_type_ids",
    "weight_bytes",
    "load_peak_bytes",
    "extra_outputs",
    "embedding_rows",
];
/// Followed by the layer number: the graph name of that layer's attention Softmax.
const ATTENTION_NODE: &str = "attnprompt.attention_node.";

impl Entry {
    /// The cache file for loading `model` with `spec`, or `None` when this load is not cached:
    /// no cache directory, a memory budget, a precision forced by the budget, an embedded model,
    /// or a model file that cannot be looked at.
    pub fn for_load(model: &Path, spec: &EncoderSpec, embedded: bool) -> Option<Entry> {
        let dir = spec.cache_dir.as_ref()?;
        if spec.load_budget.is_some() || spec.precision_reason.is_some() || embedded {
            return None;
        }
        // The form the graph takes if the file holds int8 weights (an f32 file is f32 anyway).
        let form = precision::choose(spec.precision, true).ok()?.precision;
        let path = std::fs::canonicalize(model).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(UNIX_EPOCH)
            .ok()?
            .as_nanos();
        let key = format!(
            "attnprompt {} tract {} | {} | {} bytes | modified {} ns | layers {:?} | model \
             outputs {} | form {:?}",
            env!("CARGO_PKG_VERSION"),
            env!("ATTNPROMPT_TRACT_VERSION"),
            path.display(),
            meta.len(),
            modified,
            spec.layers,
            spec.keep_model_outputs,
            form
        );
        let name: String = path
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(64)
            .collect();
        let model_prefix = format!(
            "{name}-{:016x}-",
            fnv1a(path.as_os_str().as_encoded_bytes())
        );
        let file = dir.join(format!(
            "{model_prefix}{form}-{:016x}.nnef.tar",
            fnv1a(key.as_bytes())
        ));
        Some(Entry {
            file,
            model_prefix,
            form,
            key,
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The cached model and its facts; `None` when there is no usable file (one that does not
    /// read or has another key is removed, with a warning).
    pub fn read(&self) -> Option<(TypedModel, StoredFacts)> {
        let file = File::open(&self.file).ok()?;
        match self.read_from(file) {
            Ok(found) => Some(found),
            Err(e) => {
                log::warn!(
                    "ignoring the model cache {}: {e:#}; loading the ONNX file instead",
                    self.file.display()
                );
                let _ = std::fs::remove_file(&self.file);
                None
            }
        }
    }

    fn read_from(&self, file: File) -> TractResult<(TypedModel, StoredFacts)> {
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut model = nnef().model_for_read(&mut reader)?;
        let prop = |name: &str| {
            model
                .properties
                .get(name)
                .with_context(|| format!("no property {name}"))
        };
        let text = |name: &str| -> TractResult<String> {
            Ok(prop(name)?
                .try_as_plain_ram()?
                .to_scalar::<String>()?
                .clone())
        };
        let key = text(KEY)?;
        if key != self.key {
            bail!("made for another model file or setting ({key})");
        }
        // Numbers as text (`name=value;…`): an NNEF literal may pass through f32 on its way
        // back, and a line break does not survive tract's string escaping.
        let numbers = text(FACTS)?;
        let mut n = [0i64; FACT_NAMES.len()];
        for (value, name) in n.iter_mut().zip(FACT_NAMES) {
            *value = numbers
                .split(';')
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .with_context(|| format!("no fact {name}"))?
                .parse()?;
        }
        let size = |v: i64| usize::try_from(v).context("a negative count");
        let attention_nodes = (0..size(n[0])?)
            .map(|layer| text(&format!("{ATTENTION_NODE}{layer}")))
            .collect::<TractResult<Vec<String>>>()?;
        let facts = StoredFacts {
            layers: size(n[0])?,
            heads: size(n[1])?,
            int8_ops: size(n[2])?,
            dequantized_matmuls: size(n[3])?,
            has_token_type_ids: n[4] != 0,
            weight_bytes: n[5] as u64,
            load_peak_bytes: n[6] as u64,
            extra_outputs: size(n[7])?,
            embedding_rows: usize::try_from(n[8]).ok(),
            attention_nodes,
        };
        // tract-nnef's loader puts a cast before each binary op's inputs, f32 to f32; between an
        // int8 product and its scale these hide the rescale from `quantize::fuse_rescales`.
        // Only they are taken out (under 1 ms; a whole declutter took 38-50 ms of a start).
        let started = std::time::Instant::now();
        let dropped = drop_identity_casts(&mut model)?;
        log::debug!(
            "load: {dropped} identity casts taken out of the graph read in {:.1} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        Ok((model, facts))
    }

    /// Writes `model` (decluttered, not optimized) and `facts`; a failure is logged, not
    /// returned. The file appears whole or not at all (written beside, then renamed).
    pub fn write(&self, model: &TypedModel, facts: &StoredFacts) {
        let started = std::time::Instant::now();
        match self.write_file(model, facts) {
            Ok(bytes) => log::info!(
                "wrote the model cache {} ({:.1} MiB, {:.0} ms); the next load reads it",
                self.file.display(),
                bytes as f64 / (1 << 20) as f64,
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => log::info!("model cache not written ({}): {e:#}", self.file.display()),
        }
    }

    fn write_file(&self, model: &TypedModel, facts: &StoredFacts) -> TractResult<u64> {
        let dir = self.file.parent().context("no directory")?;
        std::fs::create_dir_all(dir)?;
        let mut model = model.clone();
        keep_products_whole(&mut model);
        let props = &mut model.properties;
        props.insert(KEY.into(), rctensor0(self.key.clone()));
        let n = [
            facts.layers as i64,
            facts.heads as i64,
            facts.int8_ops as i64,
            facts.dequantized_matmuls as i64,
            i64::from(facts.has_token_type_ids),
            facts.weight_bytes as i64,
            facts.load_peak_bytes as i64,
            facts.extra_outputs as i64,
            facts.embedding_rows.map_or(-1, |r| r as i64),
        ];
        let numbers: String = n
            .iter()
            .zip(FACT_NAMES)
            .map(|(value, name)| format!("{name}={value};"))
            .collect();
        props.insert(FACTS.into(), rctensor0(numbers));
        for (layer, name) in facts.attention_nodes.iter().enumerate() {
            props.insert(format!("{ATTENTION_NODE}{layer}"), rctensor0(name.clone()));
        }
        let partial = self
            .file
            .with_extension(format!("tar.partial-{}", std::process::id()));
        let written = (|| -> TractResult<u64> {
            let out = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
            let mut out = nnef().write_to_tar(&model, out)?;
            out.flush()?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            let bytes = file.metadata()?.len();
            std::fs::rename(&partial, &self.file)?;
            Ok(bytes)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&partial);
        } else {
            self.remove_others(dir);
        }
        written
    }

    /// Removes the files an older key of the same model file and form left, and those of the
    /// same model file named before the forms were kept apart (no form in the name). The other
    /// form's file stays.
    fn remove_others(&self, dir: &Path) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some(rest) = name.strip_prefix(&self.model_prefix) else {
                continue;
            };
            let other_form = FORMS
                .iter()
                .any(|&form| form != self.form && rest.starts_with(&format!("{form}-")));
            if path != self.file && name.ends_with(".nnef.tar") && !other_form {
                log::debug!("removing the outdated model cache {}", path.display());
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// FNV-1a, 64 bits: a file name from a key (the key itself is checked on read).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// tract's NNEF with the ONNX extensions, and the ops of our graphs it has no serializer for,
/// each kept as the same op so the graph computes exactly what the ONNX load gives: the
/// dequantization of an int8 embedding table's rows (the table stays int8 in the f32 form, a
/// quarter of the memory), this crate's quantizing op, and the int8 products whole.
fn nnef() -> tract_nnef::framework::Nnef {
    let mut registry = Registry::new("attnprompt");
    registry.register_dumper(dump_dequantize);
    registry.register_dumper(dump_product);
    registry.register_dumper(dump_quantize);
    registry.register_primitive(
        "attnprompt_dynamic_quantize",
        &[TypeName::Scalar.tensor().named("input")],
        &[
            ("output", TypeName::Integer.tensor()),
            ("scale", TypeName::Scalar.tensor()),
            ("zero_point", TypeName::Integer.tensor()),
        ],
        load_quantize,
    );
    registry.register_primitive(
        "attnprompt_dequantize_linear_f32",
        &[
            TypeName::Scalar.tensor().named("input"),
            TypeName::Scalar.named("scale"),
            TypeName::Integer.named("zero_point"),
        ],
        &[("output", TypeName::Scalar.tensor())],
        load_dequantize,
    );
    tract_nnef::nnef().with_onnx().with_registry(registry)
}

fn dump_dequantize(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &DequantizeLinearF32,
) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    Ok(Some(invocation(
        "attnprompt_dequantize_linear_f32",
        &[input],
        &[
            ("scale", numeric(op.scale)),
            ("zero_point", numeric(op.zero_point)),
        ],
    )))
}

fn load_dequantize(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    let scale: f32 = invocation.named_arg_as(builder, "scale")?;
    let zero_point: i64 = invocation.named_arg_as(builder, "zero_point")?;
    builder.wire(
        DequantizeLinearF32 {
            scale,
            zero_point: i32::try_from(zero_point)?,
        },
        &[input],
    )
}

/// A product (`EinSum`) as the NNEF writer must see it to keep it whole: the writer first
/// rewrites every `EinSum` into tract's prefix matmul, which spells an int8 one out as casts and
/// plain ops (read back, not the graph `quantize::simplify_int8_products` and `fuse_rescales`
/// rewrite) and puts axis moves around an f32 one (read back into the int8 form's graph, 22
/// `MoveAxis` nodes that only a whole declutter, 40-50 ms of a start, took out again). Written
/// as tract's own `tract_core_einsum(_q)`, it reads back as the same `EinSum`.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct WholeProduct(EinSum);

impl Op for WholeProduct {
    fn name(&self) -> StaticName {
        "WholeProduct".into()
    }

    op_as_typed_op!();
}

impl EvalOp for WholeProduct {
    op_out_of_plan!();

    fn eval(&self, ctx: &EvalContext, inputs: TVec<TValue>) -> TractResult<TVec<TValue>> {
        self.0.eval(ctx, inputs)
    }
}

impl TypedOp for WholeProduct {
    fn output_facts(&self, inputs: &[&TypedFact]) -> TractResult<TVec<TypedFact>> {
        self.0.output_facts(inputs)
    }

    as_op!();
}

/// Shunts every cast to the type its input already has (what tract's declutter does with one,
/// without the rest of the pass); returns how many.
fn drop_identity_casts(model: &mut TypedModel) -> TractResult<usize> {
    use tract_onnx::tract_core::ops::cast::Cast;
    let mut dropped = 0;
    for id in 0..model.nodes().len() {
        let node = model.node(id);
        let Some(cast) = node.op_as::<Cast>() else {
            continue;
        };
        if model.outlet_fact(node.inputs[0])?.datum_type != cast.to {
            continue;
        }
        if let Some(patch) = TypedModelPatch::shunt_one_op(model, node)? {
            patch.apply(model)?;
            dropped += 1;
        }
    }
    Ok(dropped)
}

fn keep_products_whole(model: &mut TypedModel) {
    for id in 0..model.nodes().len() {
        if let Some(op) = model.node(id).op_as::<EinSum>() {
            let op = op.clone();
            model.node_mut(id).op = Box::new(WholeProduct(op));
        }
    }
}

/// The layouts of tract-nnef's own serializers for an `EinSum` (`ser_einsum` and
/// `ser_einsum_q`, not public), which its loaders `de_einsum` and `de_einsum_q` read back.
fn dump_product(
    ast: &mut IntoAst,
    node: &TypedNode,
    op: &WholeProduct,
) -> TractResult<Option<Arc<RValue>>> {
    let EinSum {
        axes,
        operating_dt,
        q_params,
    } = &op.0;
    let inputs: Vec<RValue> = node
        .inputs
        .iter()
        .map(|i| (*ast.mapping[i]).clone())
        .collect();
    let Some(output) = q_params else {
        return Ok(Some(invocation(
            "tract_core_einsum",
            &[Arc::new(RValue::Array(inputs))],
            &[
                ("expr", string(axes.to_string())),
                ("acc", datum_type(*operating_dt)),
                ("output", string("")),
            ],
        )));
    };
    ensure!(
        inputs.len() == 9,
        "an int8 product with {} inputs",
        inputs.len()
    );
    let named = ["bias", "a0", "a_scale", "b0", "b_scale", "c0", "c_scale"];
    let mut attributes = vec![
        ("expr", string(axes.to_string())),
        ("acc", datum_type(*operating_dt)),
        ("output", datum_type(*output)),
    ];
    attributes.extend(named.into_iter().zip(inputs[2..].iter().cloned()));
    Ok(Some(invocation(
        "tract_core_einsum_q",
        &[Arc::new(RValue::Array(inputs[..2].to_vec()))],
        &attributes,
    )))
}

fn dump_quantize(
    ast: &mut IntoAst,
    node: &TypedNode,
    _op: &DynamicQuantize,
) -> TractResult<Option<Arc<RValue>>> {
    let input = ast.mapping[&node.inputs[0]].clone();
    Ok(Some(invocation(
        "attnprompt_dynamic_quantize",
        &[input],
        &[],
    )))
}

fn load_quantize(
    builder: &mut ModelBuilder,
    invocation: &ResolvedInvocation,
) -> TractResult<Value> {
    let input = invocation.named_arg_as(builder, "input")?;
    builder.wire(DynamicQuantize, &[input])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        // From the FNV reference (draft-eastlake-fnv): "" and "a".
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
