#!/usr/bin/env python3
"""tract (through `attnprompt bench`) against onnxruntime, side by side in one run.

Both engines get the same texts, tokenized by the same tokenizer.json into the same ids: one text
per sequence length, the prefix of one passage that tokenizes to exactly `seq` tokens (one window), run unpadded as attnprompt
runs it. Both compute the same outputs: the attention probabilities of the layer attnprompt reads
by default (the last; onnxruntime gets that Softmax output added to an in-memory copy of the graph
and drops the model's own output, so it prunes what the attention does not need, as tract does).
Thread counts match (onnxruntime: intra-op threads = N, inter-op 1, sequential execution).

onnxruntime runs every form of the model that exists here and the best one counts:
- `int8`: the shipped file (dynamic int8, onnxruntime's own quantization);
- `f32`: its f32 form, the int8 weights dequantized (what `attnprompt --precision f32` runs);
- `fp32`: the fp32 model the int8 one was quantized from (target/reference/model-fp32.onnx,
  left by scripts/make-models), if present.
attnprompt runs `--precision` auto, int8 and f32 (`--tract`), auto being what a user gets.

The engines and forms alternate, round after round, each round in a fresh process per engine and
form, so peak RSS is per process; the figure is the median over rounds of each round's median
inference latency, and every ratio is of those medians.

With `--baseline BIN` a second attnprompt binary (e.g. built from an earlier commit) runs the
same tract forms in the same alternation, and each row adds its times and before / after ratios:
a change measured side by side, in one run, against the same onnxruntime yardstick.

Usage: bench/vs-onnxruntime [--seqs 32,128] [--threads 1,2] [--rounds 3] [--iterations 30]
                            [--tract auto,int8,f32] [--ort int8,f32,fp32] [--baseline BIN]
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
sys.path.insert(0, str(ROOT / "scripts"))
MODEL_DIR = ROOT / "models" / "all-MiniLM-L6-v2-int8"
FP32_MODEL = ROOT / "target" / "reference" / "model-fp32.onnx"

# Cut at `seq` tokens for every seq measured (it has about 480 tokens).
TEXT = (
    "Benchmarking on shared edge hardware needs care. Thermal throttling lowers the clock after a "
    "few seconds of load, other processes compete for the same cores, and memory bandwidth is "
    "shared with the GPU on a Jetson. Report medians and high percentiles rather than means, "
    "warm the caches before measuring, state the sequence length, thread count, build profile "
    "and kernel choices, and compare engines side by side in the same run rather than across "
    "days. A keyword extractor that reads attention from a quantized encoder is sensitive to "
    "sequence length because attention grows with its square, so always measure at the length "
    "you deploy. "
) * 4


def plain_tokenizer():
    """The shipped tokenizer without the export's padding and truncation settings."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


def text_of(tokenizer, n: int) -> str:
    """The longest prefix of TEXT, cut where a token ends, that encodes to exactly n tokens
    ([CLS] and [SEP] included): one window of n tokens for attnprompt, the same ids for both."""
    enc = tokenizer.encode(TEXT)
    best = None
    for end in sorted({e for (_, e) in enc.offsets if e > 0}):
        prefix = TEXT[:end]
        if len(tokenizer.encode(prefix).ids) == n:
            best = prefix
    if best is None:
        raise SystemExit(f"no prefix of the text has exactly {n} tokens")
    return best


def ort_model(form: str):
    import onnx

    if form == "fp32":
        return onnx.load(str(FP32_MODEL))
    model = onnx.load(str(MODEL_DIR / "model.onnx"))
    if form == "f32":
        import ref_common

        model, _ = ref_common.dequantized_f32_form(model)
    return model


def ort_worker(args) -> None:
    """Runs in its own process: onnxruntime on one form, prints one JSON line."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    model = ort_model(args.form)
    softmax = [n.output[0] for n in model.graph.node if n.op_type == "Softmax"]
    last = softmax[-1]
    del model.graph.output[:]
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(last))
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    t0 = time.perf_counter()
    sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - t0) * 1e3
    tok = plain_tokenizer()
    ids = np.array([tok.encode(text_of(tok, args.seq)).ids], dtype=np.int64)
    assert ids.shape[1] == args.seq, ids.shape
    feed = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
    for _ in range(args.warmup):
        sess.run([last], feed)
    times = []
    for _ in range(args.iterations):
        t = time.perf_counter()
        sess.run([last], feed)
        times.append((time.perf_counter() - t) * 1e6)
    print(json.dumps({"p50_us": statistics.median(times), "min_us": min(times), "load_ms": load_ms,
                      "peak_rss_bytes": peak_rss(), "ort": ort.__version__}))


def peak_rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def run_tract(binary: str, texts_file: str, seq: int, threads: int, precision: str, args) -> dict:
    out = subprocess.run(
        [binary, "bench", "--json", "-q", "--input", texts_file, "--max-seq", str(seq),
         "--threads", str(threads), "--precision", precision, "--iterations", str(args.iterations),
         "--warmup", str(args.warmup)],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    assert r["mean_tokens"] == seq, r["mean_tokens"]
    return {"p50_us": r["latency_us"]["inference"]["p50"], "min_us": r["latency_us"]["inference"]["min"],
            "load_ms": r["load_ms"], "peak_rss_bytes": r["peak_rss_bytes"], "setting": r["setting"]}


def run_ort(seq: int, threads: int, form: str, args) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", "--form", form, "--seq", str(seq), "--threads", str(threads),
         "--iterations", str(args.iterations), "--warmup", str(args.warmup)],
        check=True, capture_output=True, text=True,
        env={**os.environ, "OMP_NUM_THREADS": str(threads)}).stdout
    return json.loads(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnprompt", default=str(ROOT / "target" / "release" / "attnprompt"))
    ap.add_argument("--seqs", default="32,128")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tract", default="auto,int8,f32", help="attnprompt --precision values to run")
    ap.add_argument("--ort", default="int8,f32,fp32", help="onnxruntime forms to run (fp32 if present)")
    ap.add_argument("--baseline", help="an earlier attnprompt binary to run beside --attnprompt")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--form", help=argparse.SUPPRESS)
    ap.add_argument("--seq", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        args.threads = int(args.threads)
        ort_worker(args)
        return 0

    tract_forms = args.tract.split(",")
    ort_forms = [f for f in args.ort.split(",") if f != "fp32" or FP32_MODEL.exists()]
    tok = plain_tokenizer()
    rows = []
    setting = None
    ort_version = None
    for seq in [int(s) for s in args.seqs.split(",")]:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text_of(tok, seq) + "\n")
            texts_file = f.name
        for threads in [int(t) for t in args.threads.split(",")]:
            runs = {("tract", p): [] for p in tract_forms} | {("ort", f): [] for f in ort_forms}
            if args.baseline:
                runs |= {("before", p): [] for p in tract_forms}
            for _ in range(args.rounds):
                for p in tract_forms:
                    runs[("tract", p)].append(run_tract(args.attnprompt, texts_file, seq, threads, p, args))
                    if args.baseline:
                        runs[("before", p)].append(run_tract(args.baseline, texts_file, seq, threads, p, args))
                for form in ort_forms:
                    runs[("ort", form)].append(run_ort(seq, threads, form, args))
            setting = runs[("tract", tract_forms[0])][0]["setting"]
            ort_version = runs[("ort", ort_forms[0])][0]["ort"]
            med = {k: statistics.median(r["p50_us"] for r in v) / 1e3 for k, v in runs.items()}
            best_ort = min(ort_forms, key=lambda f: med[("ort", f)])
            row = {
                "seq": seq, "threads": threads,
                "tract_ms": {p: round(med[("tract", p)], 2) for p in tract_forms},
                "ort_ms": {f: round(med[("ort", f)], 2) for f in ort_forms},
                "ort_best": best_ort,
                "tract_over_ort_best": {p: round(med[("tract", p)] / med[("ort", best_ort)], 2) for p in tract_forms},
                "rounds_ms": {f"{e}:{p}": [round(r["p50_us"] / 1e3, 2) for r in v] for (e, p), v in runs.items()},
                "peak_rss_mib": {f"{e}:{p}": round(max(r["peak_rss_bytes"] for r in v) / 2**20) for (e, p), v in runs.items()},
                "load_ms": {f"{e}:{p}": round(statistics.median(r["load_ms"] for r in v)) for (e, p), v in runs.items()},
            }
            if args.baseline:
                row["before_ms"] = {p: round(med[("before", p)], 2) for p in tract_forms}
                row["before_over_after"] = {p: round(med[("before", p)] / med[("tract", p)], 2) for p in tract_forms}
            if "auto" in tract_forms:
                row["auto_precision"] = runs[("tract", "auto")][0]["setting"]["precision"]["precision"]
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        os.unlink(texts_file)

    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine {setting['cpu']} "
          f"[{' '.join(setting['cpu_features'])}], {os.cpu_count()} cores; {platform.platform()}")
    print(f"model {setting['model']} (sha256 {setting['model_sha256'][:16]}…); tract {setting['tract_version']} "
          f"({setting['profile']}, {setting['target']}); onnxruntime {ort_version}")
    print(f"inference only (attention of the last layer), one text of exactly seq tokens, unpadded; "
          f"{args.iterations} runs per round after {args.warmup} warm-up, {args.rounds} alternating rounds; "
          "median of round medians (ms)")
    print()
    head = ["seq", "threads"] + [f"tract {p}" for p in tract_forms] + [f"onnxruntime {f}" for f in ort_forms] \
        + [f"tract {p} / onnxruntime best" for p in tract_forms]
    if args.baseline:
        head += [f"before {p}" for p in tract_forms] + [f"before / after {p}" for p in tract_forms]
    print("| " + " | ".join(head) + " |")
    print("|" + " --- |" * len(head))
    for r in rows:
        cells = [str(r["seq"]), str(r["threads"])]
        cells += [f"{r['tract_ms'][p]:.2f}" + (f" ({r['auto_precision']})" if p == "auto" and "auto_precision" in r else "")
                  for p in tract_forms]
        cells += [f"{r['ort_ms'][f]:.2f}" + (" (best)" if f == r["ort_best"] else "") for f in ort_forms]
        cells += [f"{r['tract_over_ort_best'][p]:.2f}" for p in tract_forms]
        if args.baseline:
            cells += [f"{r['before_ms'][p]:.2f}" for p in tract_forms]
            cells += [f"{r['before_over_after'][p]:.2f}" for p in tract_forms]
        print("| " + " | ".join(cells) + " |")
    print()
    print("peak RSS (MiB) and load (ms) per engine:form, per row: see the JSON lines on stderr.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
