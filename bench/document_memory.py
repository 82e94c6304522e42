#!/usr/bin/env python3
"""Peak memory flat in document length: `attnprompt --document` on documents of several sizes,
each in a fresh process under one --memory-budget, peak RSS taken from outside the process (the
kernel's accounting of the child, ru_maxrss from wait4).

The documents are made here, deterministic (fixed seed): sentences drawn from a vocabulary of a
few hundred English words, so a large one has tens of thousands of distinct phrases and the
phrase table overflows (its weakest entries make room), as on a real long document.

Checks, each a failure of the run (exit 1) when broken:
- every document is answered (exit 0, one JSON line, keyword offsets inside the document);
- each peak RSS is within the budget;
- the largest document's peak RSS is within RSS_FLAT_LIMIT of the smallest one's.

Prints a table: size, tokens, windows, wall time, tokens per second, peak RSS.

Usage: bench/document_memory.py BINARY [--sizes 1K,100K,1M] [--max-seq 128]
                                [--memory-budget 256MiB]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time

RSS_FLAT_LIMIT = 0.10  # issue 20: "within 10% of the 1 KB run at the same --max-seq"

WORDS = (
    "sensor gateway encoder attention keyword prompt model memory budget window token device "
    "network packet latency throughput kernel thread scheduler cache buffer signal filter camera "
    "battery solar panel radio firmware update robot warehouse barcode path shelf motor vibration "
    "controller factory floor speech assistant privacy recording language question answer text "
    "document paper abstract title section figure table result method dataset benchmark training "
    "inference quantization precision integer float matrix product vector weight bias layer head "
    "embedding vocabulary segment phrase candidate score rank position frequency anchor opening "
    "summary report email transcript meeting customer complaint ticket order invoice payment "
    "weather station satellite orbit antenna frequency channel noise power voltage current "
    "temperature pressure humidity wind rain cloud storage disk flash file system partition "
    "compiler linker library crate module function closure iterator allocator heap stack "
    "graph node edge tree root leaf search index query database record column row schema"
).split()
ADJECTIVES = (
    "small large fast slow quantized remote local offline embedded shared fixed dynamic static "
    "linear long short early late noisy quiet cheap robust sparse dense"
).split()
VERBS = "reads sends finds keeps runs plans checks measures stores reports builds cuts".split()


def sentence(rng):
    def np():
        words = [rng.choice(WORDS) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
        if rng.random() < 0.5:
            words.insert(0, rng.choice(ADJECTIVES))
        return " ".join(words)
    s = f"The {np()} {rng.choice(VERBS)} the {np()} of a {np()}."
    return s[0].upper() + s[1:]


def document(size, seed=20):
    rng = random.Random(seed)
    parts, n = [], 0
    while n < size:
        para = " ".join(sentence(rng) for _ in range(rng.randint(3, 8))) + "\n\n"
        parts.append(para)
        n += len(para.encode())
    text = "".join(parts)
    # Cut at the last sentence end within `size` bytes (the text is ASCII).
    cut = text.rfind(". ", 0, size)
    return text[: cut + 1] + "\n" if cut > 0 else text[:size]


def parse_size(s):
    units = {"K": 1000, "M": 1000_000}
    return int(float(s[:-1]) * units[s[-1].upper()]) if s[-1].upper() in units else int(s)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary")
    ap.add_argument("--sizes", default="1K,100K,1M")
    ap.add_argument("--max-seq", type=int, default=128)
    ap.add_argument("--memory-budget", default="256MiB")
    args = ap.parse_args()

    rows, problems = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for label in args.sizes.split(","):
            size = parse_size(label)
            data = document(size)
            path = os.path.join(tmp, f"doc-{label}.txt")
            with open(path, "w") as f:
                f.write(data)
            cmd = [args.binary, "--document", path, "--json", "--max-seq", str(args.max_seq),
                   "--memory-budget", args.memory_budget]
            t = time.perf_counter()
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            out_chunks = p.stdout.read()
            err_chunks = p.stderr.read()
            _, status, usage = os.wait4(p.pid, 0)
            wall = time.perf_counter() - t
            code = os.waitstatus_to_exitcode(status)
            rss = usage.ru_maxrss * 1024
            if code != 0:
                problems.append(f"{label}: exit {code}: {err_chunks.decode()[-500:]}")
                continue
            v = json.loads(out_chunks.decode().splitlines()[0])
            raw = data.encode()
            for k in v["keywords"]:
                if raw[k["start"]:k["end"]].decode() != k["text"]:
                    problems.append(f"{label}: keyword {k} is not its span of the document")
            rows.append({"size": label, "bytes": len(raw), "tokens": v["tokens"], "windows": v["windows"],
                         "wall_s": round(wall, 2), "tokens_per_s": round(v["tokens"] / wall),
                         "peak_rss_mib": round(rss / 2**20, 1), "top": [k["text"] for k in v["keywords"]]})
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)

    budget = v_budget(args.memory_budget)
    for r in rows:
        if r["peak_rss_mib"] * 2**20 > budget:
            problems.append(f"{r['size']}: peak RSS {r['peak_rss_mib']} MiB over the budget {args.memory_budget}")
    if len(rows) >= 2:
        small, large = rows[0], rows[-1]
        if large["peak_rss_mib"] > small["peak_rss_mib"] * (1 + RSS_FLAT_LIMIT):
            problems.append(f"peak RSS {large['peak_rss_mib']} MiB at {large['size']} is more than "
                            f"{RSS_FLAT_LIMIT:.0%} over {small['peak_rss_mib']} MiB at {small['size']}")

    print(f"attnprompt --document, --max-seq {args.max_seq}, --memory-budget {args.memory_budget}; "
          f"peak RSS from wait4 (whole process)")
    print()
    print("| document | bytes | tokens | windows | wall s | tokens/s | peak RSS MiB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['size']} | {r['bytes']:,} | {r['tokens']:,} | {r['windows']:,} | {r['wall_s']} | "
              f"{r['tokens_per_s']:,} | {r['peak_rss_mib']} |")
    if len(rows) >= 2:
        print(f"\npeak RSS {rows[-1]['size']} / {rows[0]['size']}: "
              f"{rows[-1]['peak_rss_mib'] / rows[0]['peak_rss_mib']:.3f} (limit {1 + RSS_FLAT_LIMIT:.2f})")
    for p in problems:
        print(f"FAILED: {p}")
    return 1 if problems else 0


def v_budget(s):
    units = {"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "KB": 10**3, "MB": 10**6, "GB": 10**9}
    for u, m in units.items():
        if s.endswith(u):
            return float(s[:-len(u)]) * m
    return float(s)


if __name__ == "__main__":
    sys.exit(main())
