#!/usr/bin/env python3
"""attnprompt against itself under two settings, side by side in one run.

Comparisons (issue 15's targets 3 and 5), each a pair of `attnprompt bench` runs on one text:
- `follows-12`: a 12-token text at `--max-seq 128` against the same text at `--max-seq 16`
  (latency follows the text: the ratio should be near 1, target ≤ 1.3);
- `follows-64`: a 64-token text at `--max-seq 128` against `--max-seq 64` (target ≤ 1.3);
- `threads`: a 128-token text at `--max-seq 128`, `--threads 1` against `--threads 2` (the
  speed-up of the second thread; target ≥ 1.5).
Token counts include [CLS] and [SEP]; each text is the longest prefix of bench/vs_onnxruntime.py's
text, cut at a word, that tokenizes to exactly that many tokens.

The two settings of a pair alternate, round after round, each run in a fresh process; the figure
is the median over rounds of each run's median inference latency, and the ratio is of those
medians (each round's own ratio is printed too).

Usage: bench/settings [--rounds 5] [--iterations 30] [--precision auto] [--only follows-12,threads]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from tokenizers import Tokenizer

from vs_onnxruntime import MODEL_DIR, text_of

# name: (tokens, settings A, settings B, what the ratio A / B means)
PAIRS = {
    "follows-12": (12, {"max_seq": 128, "threads": 1}, {"max_seq": 16, "threads": 1},
                   "12-token text: --max-seq 128 / --max-seq 16"),
    "follows-64": (64, {"max_seq": 128, "threads": 1}, {"max_seq": 64, "threads": 1},
                   "64-token text: --max-seq 128 / --max-seq 64"),
    "threads": (128, {"max_seq": 128, "threads": 1}, {"max_seq": 128, "threads": 2},
                "128-token text: --threads 1 / --threads 2 (the second thread's speed-up)"),
}


def run(binary: str, text_file: str, tokens: int, setting: dict, args) -> dict:
    out = subprocess.run(
        [binary, "bench", "--json", "-q", "--input", text_file, "--max-seq", str(setting["max_seq"]),
         "--threads", str(setting["threads"]), "--precision", args.precision,
         "--iterations", str(args.iterations), "--warmup", str(args.warmup)],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    # One window of exactly `tokens` tokens.
    assert r["mean_tokens"] == tokens and r["multi_window_runs"] == 0, (r["mean_tokens"], r["multi_window_runs"])
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--attnprompt", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--only", default=",".join(PAIRS))
    args = ap.parse_args()

    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    # The file carries the export's padding and truncation settings; count the text's own tokens.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    setting = None
    rows = []
    for name in args.only.split(","):
        tokens, a, b, meaning = PAIRS[name]
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
            f.write(text_of(tokenizer, tokens) + "\n")
            text_file = f.name
        p50 = {"a": [], "b": []}
        for _ in range(args.rounds):
            for side, s in (("a", a), ("b", b)):
                r = run(args.attnprompt, text_file, tokens, s, args)
                setting = setting or r["setting"]
                p50[side].append(r["latency_us"]["inference"]["p50"] / 1e3)
        os.unlink(text_file)
        med_a, med_b = statistics.median(p50["a"]), statistics.median(p50["b"])
        row = {"pair": name, "meaning": meaning, "tokens": tokens, "a": a, "b": b,
               "a_ms": round(med_a, 3), "b_ms": round(med_b, 3), "ratio": round(med_a / med_b, 3),
               "round_ratios": [round(x / y, 3) for x, y in zip(p50["a"], p50["b"])],
               "rounds_ms": {"a": [round(x, 3) for x in p50["a"]], "b": [round(x, 3) for x in p50["b"]]}}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)

    print(f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine {setting['cpu']} "
          f"[{' '.join(setting['cpu_features'])}], {os.cpu_count()} cores")
    print(f"model {setting['model']} (sha256 {setting['model_sha256'][:16]}…); precision "
          f"{setting['precision']['precision']} (asked {args.precision}); tract {setting['tract_version']} "
          f"({setting['profile']}, {setting['target']})")
    print(f"inference p50 per run ({args.iterations} runs after {args.warmup} warm-up), "
          f"{args.rounds} alternating rounds, median of rounds (ms)")
    print()
    print("| pair | A | B | A ms | B ms | A / B | per round |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        fmt = lambda s: f"max_seq {s['max_seq']}, threads {s['threads']}"  # noqa: E731
        print(f"| {r['meaning']} | {fmt(r['a'])} | {fmt(r['b'])} | {r['a_ms']:.2f} | {r['b_ms']:.2f} | "
              f"{r['ratio']:.2f} | {', '.join(f'{x:.2f}' for x in r['round_ratios'])} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
