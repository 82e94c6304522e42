//! `attnprompt inspect`: what a model is, as the pipeline sees it after loading.

use serde_json::json;

use attnprompt::Pipeline;

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
        "quantization": if facts.int8_ops > 0 { "dynamic int8 (DynamicQuantizeLinear + MatMulInteger)" } else { "none (float)" },
        "token_type_ids": facts.has_token_type_ids,
        "vocab": pipeline.vocab_size(),
        "strategy": cfg.strategy.name(),
        "layers_read": pipeline.layers(),
        "candidates": pipeline.candidate_generator(),
        "top_k": cfg.top_k,
    });
    if as_json {
        println!("{v}");
        return;
    }
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            println!("{k:16} {val}");
        }
    }
}
