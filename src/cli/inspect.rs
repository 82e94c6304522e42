//! `attnprompt inspect`: what a model is, as the pipeline sees it after loading.

use serde_json::json;

use attnprompt::heap;
use attnprompt::memory::format_size;
use attnprompt::Pipeline;

fn fmt_opt(bytes: Option<u64>) -> String {
    bytes.map_or("n/a".into(), format_size)
}

pub fn inspect(pipeline: &Pipeline, as_json: bool) {
    let facts = pipeline.model_facts();
    let cfg = pipeline.config();
    let v = json!({
        "model": facts.path,
        "layers": facts.layers,
        "heads": facts.heads,
        "max_seq": facts.max_seq,
        "attention_nodes": facts.attention_nodes,
        "int8_ops": facts.int8_ops,
        "quantization": facts.quantization(),
        "precision": facts.precision,
        "token_type_ids": facts.has_token_type_ids,
        "vocab": pipeline.vocab_size(),
        "strategy": cfg.strategy.name(),
        "layers_read": pipeline.layers(),
        "candidates": pipeline.candidate_generator(),
        "top_k": cfg.top_k,
        "threads": facts.threads,
        "kernels": facts.kernels,
        "load_ms": pipeline.load_seconds() * 1e3,
        "from_model_cache": facts.from_cache,
        "memory_plan": pipeline.memory_plan(),
        "memory_plan_total": pipeline.memory_plan().total(),
        "memory_needed": pipeline.memory_plan().needed(),
        "memory_budget": cfg.memory_budget,
        "heap_now_bytes": heap::is_counting().then(heap::current_bytes),
        "peak_heap_bytes": heap::is_counting().then(heap::peak_bytes),
        "peak_rss_bytes": heap::peak_rss_bytes(),
    });
    if as_json {
        outln!("{v}");
        return;
    }
    let kernels: Vec<String> = facts
        .kernels
        .iter()
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    outln!("model          {}", facts.path.display());
    outln!(
        "architecture   {} attention layers × {} heads, vocab {}, token_type_ids: {}",
        facts.layers,
        facts.heads,
        pipeline.vocab_size(),
        facts.has_token_type_ids
    );
    outln!("quantization   {}", facts.quantization());
    outln!(
        "precision      {} ({})",
        facts.precision.precision,
        facts.precision.reason
    );
    outln!("attention      {}", facts.attention_nodes.join(", "));
    outln!(
        "settings       max_seq {}, threads {}, strategy {} on layers {:?}, candidates {}, top-k {}",
        facts.max_seq,
        facts.threads,
        cfg.strategy.name(),
        pipeline.layers(),
        pipeline.candidate_generator(),
        cfg.top_k
    );
    outln!("kernels        {}", kernels.join(", "));
    outln!(
        "cold start     {:.0} ms (load + optimize + plan{})",
        pipeline.load_seconds() * 1e3,
        if facts.from_cache {
            "; graph read from the model cache"
        } else {
            ""
        }
    );
    outln!(
        "memory plan{}",
        match cfg.memory_budget {
            Some(b) => format!(" (budget {})", format_size(b)),
            None => String::new(),
        }
    );
    outln!("{}", pipeline.memory_plan());
    outln!(
        "measured       heap now {}, peak heap {}, peak RSS {}",
        fmt_opt(heap::is_counting().then(|| heap::current_bytes() as u64)),
        fmt_opt(heap::is_counting().then(|| heap::peak_bytes() as u64)),
        fmt_opt(heap::peak_rss_bytes())
    );
}
