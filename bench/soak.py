#!/usr/bin/env python3
"""Soak: N lines of real and hostile text through one `attnprompt --json` process in batch mode.

The lines mix real English and Chinese sentences (some longer than --max-seq, read in several windows, some with CRLF endings)
with hostile ones: empty and blank lines, invalid UTF-8, NUL bytes and control characters, emoji,
right-to-left scripts, combining marks, punctuation only, a script the model does not know, and
lines over the 64 KiB limit. Deterministic (fixed seed); every kind comes early, so both language
pipelines are loaded before the warm-up point.

Checks, each a failure of the run (exit 1) when broken:
- exactly one output line per input line, in order: output line i says `"line": i` and holds
  input line i as its `text` (the first 64 KiB for a line over the limit);
- every line that must be answered is (real text, with or without hostile characters inside),
  and every line that must fail does, with its reason (empty, invalid UTF-8, over the limit,
  no candidates, not covered);
- nothing panicked (stderr), and stderr names exactly the failed lines;
- the process's resident memory (VmRSS, read from /proc while it waits for more input) at the
  end is within RSS_GROWTH_LIMIT of what it was after warm-up;
- with --memory-budget, the process's peak RSS (VmHWM) is within the budget.

Usage: bench/soak.py BINARY [N] [attnprompt options...]
"""
import json
import os
import random
import re
import subprocess
import sys
import threading

MAX_TEXT_BYTES = 64 * 1024
WARM_UP = 200
RSS_GROWTH_LIMIT = 0.03  # "within a few percent"

ENGLISH = [
    "The Raspberry Pi 5 runs BERT inference offline with tract.",
    "Quantized attention maps find the keywords of a text on the device.",
    "Edge gateways collect sensor readings and forward anomalies to the cloud.",
    "A small encoder already knows which words carry the meaning of a sentence.",
    "The Jetson Orin module accelerates transformer models with its integrated GPU.",
    "Battery powered cameras send alerts only when the neural network detects motion.",
    "Memory budgets on embedded boards leave little room for large language models.",
    "Latency measurements on shared machines should report medians, not single runs.",
    "The tokenizer splits rare words into subword pieces from a fixed vocabulary.",
    "Firmware updates reach remote weather stations over a low bandwidth radio link.",
    "Keyword extraction turns a customer complaint into a short question for the assistant.",
    "Cross compilation for ARM targets needs a linker and a matching system root.",
    "Industrial controllers log vibration data from motors on the factory floor.",
    "Self-attention weights show how much each token looks at every other token.",
    "An offline speech assistant keeps recordings on the device for privacy.",
    "The warehouse robot reads barcodes and plans a path between the shelves.",
    "Solar panels on the roof charge the batteries that power the monitoring station.",
    "Continuous integration runs the test suite under emulation for every commit.",
]

CHINESE = [
    "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能。",
    "我喜欢阅读关于边缘计算的文章。",
    "树莓派上运行的语言模型需要控制内存占用。",
    "注意力机制可以找出文本中最重要的词语。",
    "工厂的传感器每天产生大量的振动数据。",
    "离线语音助手在设备上保护用户的隐私。",
]

MIXED = [
    "BERT模型在树莓派上运行",
    "The Jetson 模块 runs transformer 模型 offline.",
]


def lines(n, rng):
    """Yields (bytes without newline, ending, expectation) for n lines. Expectation: 'ok' (must be
    answered), 'fail:<text of the error>' or 'any'."""
    def real():
        k = rng.choice([1, 1, 1, 2, 3, 8])  # 8 sentences: over --max-seq, several windows
        pool = ENGLISH if rng.random() < 0.8 else CHINESE
        sep = " " if pool is ENGLISH else ""
        return sep.join(rng.choice(pool) for _ in range(k)).encode()

    hostile = [
        (lambda: b"", "fail:empty text"),
        (lambda: b" \t  ", "fail:empty text"),
        (lambda: real()[:20] + b"\xff\xfe" + real()[:20], "fail:not valid UTF-8"),
        (lambda: b"\xc3\x28" + real(), "fail:not valid UTF-8"),
        (lambda: b"x" * (MAX_TEXT_BYTES + 1 + rng.randrange(8000)), "fail:over the limit"),
        (lambda: b"...!?;: -- ,,", "fail:no keyword candidates"),
        (lambda: b"the of and to", "fail:no keyword candidates"),
        ("ⵜⴰⵎⴰⵣⵉⵖⵜ ⵜⴰⵎⴰⵣⵉⵖⵜ".encode, "fail:does not cover"),
        (lambda: insert(real(), b"\x00"), "ok"),
        (lambda: insert(real(), b"\x1b[31m\x07\x01"), "ok"),
        (lambda: insert(real(), "🤖👩\u200d💻🇫🇷".encode()), "ok"),
        (lambda: insert(real(), "e\u0301a\u0300\u0302".encode()), "ok"),
        (lambda: insert(real(), "\u202eRTL\u202c\u200b\ufeff".encode()), "ok"),
        (lambda: "שלום עולם, مرحبا بالعالم".encode(), "any"),
        (lambda: "😀😀😀".encode(), "any"),
        (lambda: rng.choice(MIXED).encode(), "ok"),
    ]

    def insert(text, junk):
        # Between two words, so the words around it stay whole.
        spaces = [i for i, b in enumerate(text) if b == 0x20] or [len(text)]
        i = rng.choice(spaces)
        return text[:i] + b" " + junk + b" " + text[i:]

    for i in range(n):
        if i < len(hostile):  # every kind early, before the warm-up point
            make, expect = hostile[i]
            ending = b"\n"
        elif rng.random() < 0.25:
            make, expect = rng.choice(hostile)
            ending = b"\r\n" if rng.random() < 0.1 else b"\n"
        else:
            make, expect = real, "ok"
            ending = b"\r\n" if rng.random() < 0.1 else b"\n"
        if i == len(hostile):  # one Chinese line early: both pipelines before warm-up
            make, expect = (lambda: CHINESE[0].encode()), "ok"
        yield make(), ending, expect


def status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) * 1024
    return fields


def parse_size(s):
    """--memory-budget in bytes, for the sizes the soak is run with (N, NKiB, NMiB, NGiB)."""
    m = re.fullmatch(r"([0-9]+)(KiB|MiB|GiB)?", s.strip())
    if not m:
        sys.exit(f"soak: give --memory-budget as N, NKiB, NMiB or NGiB, not {s}")
    return int(m.group(1)) * 1024 ** {None: 0, "KiB": 1, "MiB": 2, "GiB": 3}[m.group(2)]


def main():
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    extra = sys.argv[3:]
    budget = None
    if "--memory-budget" in extra:
        budget = parse_size(extra[extra.index("--memory-budget") + 1])
    rng = random.Random(20261203)
    inputs = list(lines(n, rng))

    proc = subprocess.Popen([binary, "--json", *extra], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr_chunks = []
    stderr_reader = threading.Thread(target=lambda: stderr_chunks.append(proc.stderr.read()))
    stderr_reader.start()

    def feed():
        for text, ending, _ in inputs:
            proc.stdin.write(text + ending)
        proc.stdin.flush()  # stdin stays open: RSS is read at the end while the process waits

    threading.Thread(target=feed, daemon=True).start()
    problems = []
    rows = []
    rss = {}
    for i in range(n):
        line = proc.stdout.readline()
        if not line:
            problems.append(f"output ended after {i} lines of {n}")
            break
        if not line.endswith(b"\n"):
            problems.append(f"line {i + 1}: cut output line")
        rows.append(json.loads(line))
        if i + 1 == WARM_UP:
            rss["warm"] = status(proc.pid)
    if len(rows) == n:
        rss["end"] = status(proc.pid)
    proc.stdin.close()
    code = proc.wait()
    stderr_reader.join()
    stderr = b"".join(stderr_chunks).decode("utf-8", "replace")

    failed = 0
    for i, (row, (text, _, expect)) in enumerate(zip(rows, inputs)):
        number = i + 1
        if row.get("line") != number:
            problems.append(f"output line {number} says line {row.get('line')}")
        kept = text[:MAX_TEXT_BYTES] if len(text) > MAX_TEXT_BYTES else text
        if row.get("text") != kept.decode("utf-8", "replace"):
            problems.append(f"line {number}: text not kept: {row.get('text', '')[:60]!r}")
        error = row.get("error")
        failed += error is not None
        if expect == "ok" and error is not None:
            problems.append(f"line {number}: must be answered, got: {error}")
        if expect.startswith("fail:") and (error is None or expect[5:] not in error):
            problems.append(f"line {number}: must fail with '{expect[5:]}', got: {error or row.get('prompt')}")
        if error is None and not row.get("prompt"):
            problems.append(f"line {number}: neither prompt nor error")
    if "panicked" in stderr:
        problems.append("a panic on stderr")
    named = set(int(m) for m in re.findall(r"^line (\d+): error:", stderr, re.M))
    refused = {i + 1 for i, r in enumerate(rows) if "error" in r}
    if named != refused:
        odd = sorted(named ^ refused)[:5]
        problems.append(f"stderr does not name exactly the failed lines (e.g. line {odd})")
    if code != (1 if failed else 0):
        problems.append(f"exit code {code} with {failed} failed lines")

    mib = 2 ** 20
    print(f"{n} lines in ({sum(e == 'ok' for _, _, e in inputs)} real, {sum(e != 'ok' for _, _, e in inputs)} hostile), "
          f"{len(rows)} lines out, {failed} refused; exit {code}; options {' '.join(extra) or '(defaults)'}")
    if "warm" in rss and "end" in rss:
        w, e = rss["warm"], rss["end"]
        growth = (e["VmRSS"] - w["VmRSS"]) / w["VmRSS"]
        print(f"RSS after warm-up (line {WARM_UP}) {w['VmRSS'] / mib:.1f} MiB, at the end (line {n}) "
              f"{e['VmRSS'] / mib:.1f} MiB ({growth:+.2%}); peak RSS {e['VmHWM'] / mib:.1f} MiB"
              + (f" against a budget of {budget / mib:.1f} MiB" if budget else ""))
        if growth > RSS_GROWTH_LIMIT:
            problems.append(f"RSS grew {growth:.2%} after warm-up (limit {RSS_GROWTH_LIMIT:.0%})")
        if budget and e["VmHWM"] > budget:
            problems.append(f"peak RSS {e['VmHWM']} bytes over the budget of {budget}")
    elif n > WARM_UP:
        problems.append("RSS not read")
    for p in problems[:20]:
        print("soak: " + p)
    print("soak: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
