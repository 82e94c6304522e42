#!/usr/bin/env python3
"""A 1,300-word paper end to end (load excluded) under several settings, side by side.

The paper is SemEval-2010 H-18 (1,296 words, about 1,714 tokens) from
../shared/datasets/semeval2010-dev.jsonl, its line breaks made spaces so that `attnprompt bench
--input` takes it as one text (read in windows of --max-seq tokens, as `--document` reads it).
Each setting is one `attnprompt bench` process (10 runs after 2 warm-up); the settings alternate,
round after round; each figure is the median over rounds of a process's p50.

Usage: bench/document_speed.py BINARY [--rounds 5] [--dataset PATH]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile

PAPER = "H-18"
# (--max-seq, --threads, --precision)
SETTINGS = [(128, 1, "auto"), (128, 2, "auto"), (256, 1, "auto"), (256, 2, "auto"),
            (128, 1, "f32"), (256, 1, "f32")]


def run(binary, text_file, setting):
    seq, threads, precision = setting
    out = subprocess.run(
        [binary, "bench", "-q", "--json", "--input", text_file, "--max-seq", str(seq),
         "--threads", str(threads), "--precision", precision, "--iterations", "10",
         "--warmup", "2"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--dataset", default=os.path.join(
        root, "..", "shared", "datasets", "semeval2010-dev.jsonl"))
    args = ap.parse_args()

    with open(args.dataset, encoding="utf-8") as f:
        paper = next(d for d in map(json.loads, f) if d["file_name"].startswith(PAPER))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(" ".join(paper["text"].split("\n")) + "\n")
        text_file = f.name

    results = {s: [] for s in SETTINGS}
    try:
        for _ in range(args.rounds):
            for s in SETTINGS:
                results[s].append(run(args.binary, text_file, s))
    finally:
        os.unlink(text_file)

    first = results[SETTINGS[0]][0]["setting"]
    print(f"paper {paper['file_name']}, {len(paper['text'].split())} words; machine "
          f"{first['cpu']} [{' '.join(first['cpu_features'])}]; tract {first['tract_version']} "
          f"({first['profile']}, {first['target']}); {args.rounds} alternating rounds, "
          "median of each process's p50 (10 runs after 2 warm-up), ms\n")
    print("| --max-seq | --threads | --precision (ran) | tokens | total | inference | tokenize "
          "| ranking | peak RSS MiB | totals per round |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s, rs in results.items():
        def median(stage):
            return statistics.median(r["latency_us"][stage]["p50"] for r in rs) / 1000
        ran = rs[0]["setting"]["precision"]["precision"]
        print(f"| {s[0]} | {s[1]} | {s[2]} ({ran}) | {rs[0]['mean_tokens']:.0f} "
              f"| {median('total'):.1f} | {median('inference'):.1f} | {median('tokenize'):.2f} "
              f"| {median('ranking'):.2f} | {max(r['peak_rss_bytes'] for r in rs) / 2**20:.1f} | "
              + ", ".join(f"{r['latency_us']['total']['p50'] / 1000:.0f}" for r in rs) + " |")


if __name__ == "__main__":
    main()
