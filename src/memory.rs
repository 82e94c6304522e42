//! The memory plan: what the pipeline holds, part by part, computed at load for the chosen
//! model, sequence length and threads, and checked against the budget before any text is run.

use std::collections::HashMap;

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::internal::SymbolValues;

use crate::error::{Error, Result};

/// One part of the plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryPart {
    pub name: &'static str,
    pub bytes: u64,
    /// How the figure was obtained.
    pub how: &'static str,
}

/// What the process holds resident besides the pipeline's heap: the binary's code and data as
/// loading and running touch them, the C library, thread stacks, and what the allocator keeps of
/// memory freed during the load. Peak RSS minus peak heap, one thread, seq 32, x86_64 AMD EPYC,
/// glibc 2.36 (2026-12-03): the release binary 23.1 MiB int8, 17.0 MiB f32; the test build
/// (`target/debug`, larger code) 29.6 MiB int8, 23.3 MiB f32; `--version` alone 7–10 MiB.
/// Rounded up from the largest. Not measurable under emulation (qemu's RSS is the emulator's).
pub const PROCESS_RESIDENT_BYTES: u64 = 32 << 20;

/// Heap the model takes at the peak of its load, for a model file of `file_bytes` whose
/// constants take `proto_weight_bytes` in the decoded protobuf (after the f32 rewrite, for the
/// f32 form) and `final_weight_bytes` once tract has folded and packed them, the largest folded
/// constant (an int8 table that a `DequantizeLinear` widens to f32) taking
/// `largest_folded_bytes` as stored. Three moments: decoding holds the file (mapped or read) and
/// the protobuf at once; parsing holds the protobuf and tract's copies of its constants, still
/// in their stored types, at once; after the protobuf is gone, folding and packing hold the
/// final weights and the constant being folded. Measured with the parts loaded one after the
/// other (as under a budget), 2026-12-05, x86_64 AMD EPYC: the Chinese model's parse took its
/// stored constants twice plus 3.9 MB, in int8 (78.8 MB of constants) and in f32 (163.7 MB);
/// the folding of its 15.9 MB int8 embedding showed up to 15.8 MB over the final weights.
/// Plus [`LOAD_STRUCTURES_BYTES`].
pub fn model_load_peak(
    file_bytes: u64,
    proto_weight_bytes: u64,
    final_weight_bytes: u64,
    largest_folded_bytes: u64,
) -> u64 {
    (2 * file_bytes)
        .max(2 * proto_weight_bytes)
        .max(final_weight_bytes + largest_folded_bytes)
        + LOAD_STRUCTURES_BYTES
}

/// Heap a model's load holds beside its constants: the protobuf's nodes, attributes and names,
/// and tract's graph as it is built. The Chinese model's (12 layers) parse peaked 3.9 MB over
/// twice its constants (x86_64, AMD EPYC, 2026-12-05; the English model's 6 layers, 0.8 MiB
/// over twice its file); rounded up.
pub const LOAD_STRUCTURES_BYTES: u64 = 4 << 20;

/// The memory a loaded pipeline holds, at its peak while running a text, and what loading it
/// and the process around it take.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MemoryPlan {
    pub max_seq: usize,
    pub threads: usize,
    /// The heap of the loaded pipeline, part by part, at its peak while running a text.
    pub parts: Vec<MemoryPart>,
    /// Heap at the peak of the load: the parts loaded before the model, plus
    /// [`model_load_peak`].
    pub load_peak: u64,
    /// Resident besides the heap ([`PROCESS_RESIDENT_BYTES`]).
    pub process: u64,
}

impl MemoryPlan {
    /// The heap of the loaded pipeline while running (the sum of the parts).
    pub fn total(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes).sum()
    }

    /// The process's peak resident memory, what `--memory-budget` bounds: the process besides
    /// the heap, plus the larger of the load's peak and the running pipeline.
    pub fn needed(&self) -> u64 {
        self.process + self.total().max(self.load_peak)
    }

    pub fn part(&self, name: &str) -> Option<u64> {
        self.parts.iter().find(|p| p.name == name).map(|p| p.bytes)
    }
}

/// What the `process` line of a plan says it is.
pub const PROCESS_HOW: &str = "binary, libraries, stacks, allocator: resident besides the heap";

/// One line of a printed plan: name, size, and how it was obtained.
pub fn plan_line(name: &str, bytes: u64, how: &str) -> String {
    format!("  {:<18} {:>10}  ({how})", name, format_size(bytes))
}

impl std::fmt::Display for MemoryPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for p in &self.parts {
            writeln!(f, "{}", plan_line(p.name, p.bytes, p.how))?;
        }
        let total = "the heap of the loaded pipeline, running";
        writeln!(f, "{}", plan_line("total", self.total(), total))?;
        let load = "heap while loading: the model file and its weights held twice";
        writeln!(f, "{}", plan_line("load peak", self.load_peak, load))?;
        writeln!(f, "{}", plan_line("process", self.process, PROCESS_HOW))?;
        let needed = "process + the larger of total and load peak";
        write!(f, "{}", plan_line("needed", self.needed(), needed))
    }
}

/// Peak bytes of the tensors alive at once during one run, found by walking the plan's
/// evaluation order: a tensor lives from the node that makes it to its last consumer; the graph
/// outputs live until the end of the run (we read them after). Constants are the weights,
/// counted apart. Symbolic dimensions (the sequence length) take their values from `values`.
pub fn peak_activations(model: &TypedModel, order: &[usize], values: &SymbolValues) -> Result<u64> {
    fn fail(e: impl std::fmt::Display) -> Error {
        Error::ModelLoad {
            path: Default::default(),
            reason: format!("memory plan: {e}"),
        }
    }
    let is_const = |id: usize| {
        model
            .node(id)
            .op_is::<tract_onnx::tract_core::ops::konst::Const>()
    };
    let size = |outlet: OutletId| -> Result<u64> {
        let fact = model.outlet_fact(outlet).map_err(fail)?;
        let bytes = fact.mem_size().eval_to_i64(values).map_err(fail)?;
        Ok(bytes as u64)
    };
    let outputs: Vec<OutletId> = model.output_outlets().map_err(fail)?.to_vec();
    // last position in `order` where each outlet is read
    let mut last_use: HashMap<OutletId, usize> = HashMap::new();
    for (pos, &node) in order.iter().enumerate() {
        for input in &model.node(node).inputs {
            last_use.insert(*input, pos);
        }
    }
    let mut live = 0u64;
    let mut peak = 0u64;
    for (pos, &id) in order.iter().enumerate() {
        let node = model.node(id);
        if is_const(id) {
            continue;
        }
        for slot in 0..node.outputs.len() {
            live += size(OutletId::new(id, slot))?;
        }
        peak = peak.max(live);
        // free the non-constant inputs whose last reader this node was
        for input in &node.inputs {
            if !is_const(input.node)
                && last_use.get(input) == Some(&pos)
                && !outputs.contains(input)
            {
                live -= size(*input)?;
            }
        }
    }
    Ok(peak)
}

/// Parses a size such as `64MiB`, `1.5GiB`, `512k`, `200MB` or `1048576` (bytes).
/// Binary units (KiB, MiB, GiB, and the short k, M, G) are powers of 1024; KB, MB, GB are
/// powers of 1000.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        Error::Config(format!(
            "cannot read the size `{s}` (examples: 64MiB, 1.5GiB, 512KiB, 200MB, 1048576)"
        ))
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let scale: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "k" | "K" | "KiB" => 1024.0,
        "M" | "MiB" => 1024.0 * 1024.0,
        "G" | "GiB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => return Err(bad()),
    };
    let bytes = value * scale;
    if bytes < 1.0 {
        return Err(Error::Config(format!(
            "the size `{s}` is less than one byte"
        )));
    }
    // 2^64 bytes and up would wrap; no device has a sixteenth of that.
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(Error::Config(format!(
            "the size `{s}` is too large (at most 2^64 bytes)"
        )));
    }
    Ok(bytes as u64)
}

/// `12.3 MiB`, `640 KiB`, `512 B`.
pub fn format_size(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b >= KIB * KIB * KIB {
        format!("{:.2} GiB", b / (KIB * KIB * KIB))
    } else if b >= KIB * KIB {
        format!("{:.1} MiB", b / (KIB * KIB))
    } else if b >= KIB {
        format!("{:.0} KiB", b / KIB)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("512KiB").unwrap(), 512 << 10);
        assert_eq!(parse_size("200MB").unwrap(), 200_000_000);
        assert_eq!(parse_size(" 4096 ").unwrap(), 4096);
        assert_eq!(parse_size("2TiB").unwrap(), 2 << 40);
        for (bad, says) in [
            ("", "cannot read"),
            ("MiB", "cannot read"),
            ("12 parsecs", "cannot read"),
            ("-5M", "cannot read"),
            ("1..2M", "cannot read"),
            ("0", "less than one byte"),
            ("0.5", "less than one byte"),
            ("0MiB", "less than one byte"),
            ("99999999TiB", "too large"),
            ("99999999999999999999999", "too large"),
            ("17179869184G", "too large"),
        ] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_format() {
        assert_eq!(format_size(512), "512 B");
        assert_eq!(format_size(640 << 10), "640 KiB");
        assert_eq!(format_size(64 << 20), "64.0 MiB");
        assert_eq!(format_size(3 << 29), "1.50 GiB");
    }
}
