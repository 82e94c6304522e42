#!/usr/bin/env python3
"""tract (through `attnprompt bench`) against onnxruntime, side by side in one run.

Both engines get the same model file, the same texts tokenized by the same tokenizer.json into
the same ids padded to the same fixed length, and compute the same outputs: the attention
probabilities of every layer (onnxruntime: the Softmax outputs added to an in-memory copy of the
graph, the rest pruned; tract: attnprompt's own pipeline). Thread counts match (onnxruntime:
intra-op threads = N, inter-op 1, sequential execution). The engines alternate, round after
round, each round in a fresh process per engine so peak RSS is per engine; the reported figure
is the median over rounds of each round's median inference latency, and the ratio is
tract / onnxruntime of those medians.

Usage: bench/vs-onnxruntime [--seqs 32,128] [--threads 1,2] [--rounds 3] [--iterations 30]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL_DIR = ROOT / "models" / "all-MiniLM-L6-v2-int8"

# The texts of `attnprompt bench`'s built-in samples are in Rust; these are the ones both engines
# get here, written to a file for attnprompt and tokenized here for onnxruntime.
TEXTS = [
    "The Raspberry Pi 5 runs BERT inference offline with tract.",
    "Edge devices such as the Jetson Orin Nano run small transformer encoders next to a local "
    "language model, so every megabyte and millisecond spent on keyword extraction is taken "
    "from the model that answers the question.",
    "Quantized transformer models make on-device language understanding practical: an int8 "
    "encoder with six layers and twelve attention heads fits in a few tens of megabytes, starts "
    "in well under a second, and answers in milliseconds on a Cortex-A76. Its self-attention "
    "already encodes which words carry a sentence, so reading the attention each token receives "
    "gives keywords without any training.",
]


def ort_worker(args) -> None:
    """Runs in its own process: onnxruntime on the texts, prints one JSON line."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    from tokenizers import Tokenizer

    model = onnx.load(str(MODEL_DIR / "model.onnx"))
    softmax = [n.output[0] for n in model.graph.node if n.op_type == "Softmax"]
    del model.graph.output[:]
    for name in softmax:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(args.seq)
    feeds = []
    for text in TEXTS:
        ids = tok.encode(text).ids
        n = len(ids)
        input_ids = np.zeros((1, args.seq), dtype=np.int64)
        input_ids[0, :n] = ids
        mask = np.zeros((1, args.seq), dtype=np.int64)
        mask[0, :n] = 1
        feeds.append({"input_ids": input_ids, "attention_mask": mask,
                      "token_type_ids": np.zeros((1, args.seq), dtype=np.int64)})
    for i in range(args.warmup):
        sess.run(softmax, feeds[i % len(feeds)])
    times = []
    for i in range(args.iterations):
        f = feeds[i % len(feeds)]
        t = time.perf_counter()
        sess.run(softmax, f)
        times.append((time.perf_counter() - t) * 1e6)
    print(json.dumps({"p50_us": statistics.median(times), "min_us": min(times), "load_ms": load_ms,
                      "peak_rss_bytes": peak_rss(), "ort": ort.__version__}))


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_tract(binary: str, texts_file: str, seq: int, threads: int, iterations: int, warmup: int) -> dict:
    out = subprocess.run(
        [binary, "bench", "--json", "-q", "--input", texts_file, "--max-seq", str(seq),
         "--threads", str(threads), "--iterations", str(iterations), "--warmup", str(warmup)],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"p50_us": r["latency_us"]["inference"]["p50"], "min_us": r["latency_us"]["inference"]["min"],
            "load_ms": r["load_ms"], "peak_rss_bytes": r["peak_rss_bytes"], "setting": r["setting"]}


def run_ort(seq: int, threads: int, iterations: int, warmup: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--seq", str(seq), "--threads", str(threads),
         "--iterations", str(iterations), "--warmup", str(warmup)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnprompt", default=str(ROOT / "target" / "release" / "attnprompt"))
    ap.add_argument("--seqs", default="32,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--seq", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        ort_worker(args)
        return 0

    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(TEXTS) + "\n")
        texts_file = f.name
    rows = []
    setting = None
    ort_version = None
    for seq in [int(s) for s in args.seqs.split(",")]:
        for threads in [int(t) for t in args.threads.split(",")]:
            tract_r, ort_r = [], []
            for _ in range(args.rounds):
                tract_r.append(run_tract(args.attnprompt, texts_file, seq, threads, args.iterations, args.warmup))
                ort_r.append(run_ort(seq, threads, args.iterations, args.warmup))
            setting = tract_r[0]["setting"]
            ort_version = ort_r[0]["ort"]
            t50 = statistics.median(r["p50_us"] for r in tract_r)
            o50 = statistics.median(r["p50_us"] for r in ort_r)
            rows.append({
                "seq": seq, "threads": threads,
                "tract_p50_ms": t50 / 1e3, "ort_p50_ms": o50 / 1e3, "ratio": t50 / o50,
                "tract_rounds_ms": [round(r["p50_us"] / 1e3, 2) for r in tract_r],
                "ort_rounds_ms": [round(r["p50_us"] / 1e3, 2) for r in ort_r],
                "tract_peak_rss_mib": max(r["peak_rss_bytes"] for r in tract_r) / 2**20,
                "ort_peak_rss_mib": max(r["peak_rss_bytes"] for r in ort_r) / 2**20,
                "tract_load_ms": statistics.median(r["load_ms"] for r in tract_r),
                "ort_load_ms": statistics.median(r["load_ms"] for r in ort_r),
            })
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    os.unlink(texts_file)

    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine {setting['cpu']} "
          f"[{' '.join(setting['cpu_features'])}], {os.cpu_count()} cores; {platform.platform()}")
    print(f"model {setting['model']} (sha256 {setting['model_sha256'][:16]}…), {setting['quantization']}; "
          f"tract {setting['tract_version']} ({setting['profile']}, {setting['target']}); onnxruntime {ort_version}")
    print(f"inference only (attention outputs of all layers), {len(TEXTS)} texts padded to seq, "
          f"{args.iterations} runs per round after {args.warmup} warm-up, {args.rounds} alternating rounds; "
          "median of round medians")
    print()
    print("| seq | threads | tract p50 (ms) | onnxruntime p50 (ms) | tract / onnxruntime | tract peak RSS (MiB) | onnxruntime peak RSS (MiB) | rounds tract / onnxruntime (ms) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['seq']} | {r['threads']} | {r['tract_p50_ms']:.2f} | {r['ort_p50_ms']:.2f} | {r['ratio']:.2f} | "
              f"{r['tract_peak_rss_mib']:.0f} | {r['ort_peak_rss_mib']:.0f} | {r['tract_rounds_ms']} / {r['ort_rounds_ms']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
