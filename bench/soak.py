#!/usr/bin/env python3
"""Feeds N texts of varied length (3 to ~180 words) to one `attnprompt --json` process in batch
mode and reports, from its per-line JSON, the process's peak heap and peak RSS after warm-up
(line 100) and at the end: growth after warm-up is what a long-running deployment would see.

Usage: bench/soak.py BINARY [N] [attnprompt options...]
"""
import json
import subprocess
import sys
import threading

WORDS = ["edge", "inference", "quantized", "attention", "encoder", "gateway", "sensor",
         "latency", "budget", "tokenizer", "Jetson", "Raspberry", "prompt", "keyword"]


def texts(n):
    for i in range(n):
        k = 3 + (i * 37) % 180
        yield " ".join(WORDS[(i + j * 5) % len(WORDS)] for j in range(k)) + f" item {i}.\n"


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    extra = sys.argv[3:]
    proc = subprocess.Popen([binary, "--json", *extra], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)

    def feed():
        for t in texts(n):
            proc.stdin.write(t)
        proc.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    rows = [json.loads(line) for line in proc.stdout]
    proc.wait()
    fails = sum(1 for r in rows if "error" in r)
    warm = min(99, len(rows) - 1)
    mib = 2 ** 20
    print(f"{len(rows)} texts in, {len(rows)} lines out, {fails} failed; options {' '.join(extra) or '(defaults)'}")
    for label, i in (("after warm-up (line %d)" % (warm + 1), warm), ("at the end (line %d)" % len(rows), len(rows) - 1)):
        r = rows[i]
        print(f"{label}: peak heap {r['peak_heap_bytes'] / mib:.2f} MiB, peak RSS {r['peak_rss_bytes'] / mib:.2f} MiB")
    print(f"growth after warm-up: peak heap {rows[-1]['peak_heap_bytes'] - rows[warm]['peak_heap_bytes']} bytes, "
          f"peak RSS {rows[-1]['peak_rss_bytes'] - rows[warm]['peak_rss_bytes']} bytes")
    return 1 if fails or len(rows) != n else 0


if __name__ == "__main__":
    sys.exit(main())
