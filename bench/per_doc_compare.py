"""Two `attnprompt eval --per-doc` files of one data set, document by document: each run's macro
F1@k with its standard deviation and standard error over documents, the paired change
(after - before) with its standard error, how many documents got better or worse, and precision
at 1 (the first keyword, the one the default prompt asks about, among the gold). EVALUATION.md,
"Single words: half their sum".

Usage: python3 bench/per_doc_compare.py BEFORE.jsonl AFTER.jsonl   (standard library only)"""

from __future__ import annotations

import json
import statistics
import sys

KS = (5, 10, 15)


def load(path: str) -> dict[str, dict]:
    docs = {}
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        docs[d["file_name"]] = d
    return docs


def spread(xs: list[float]) -> str:
    sd = statistics.stdev(xs)
    return f"{statistics.mean(xs):.2f} (sd {sd:.2f}, se {sd / len(xs) ** 0.5:.2f})"


def p_at_1(docs: dict[str, dict]) -> float:
    hits = sum(d["predicted_stemmed"][0] in set(d["gold"]) for d in docs.values()
               if d["predicted_stemmed"])
    return 100 * hits / len(docs)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    before, after = load(sys.argv[1]), load(sys.argv[2])
    if before.keys() != after.keys():
        print("the two files hold different documents", file=sys.stderr)
        return 1
    names = sorted(before)
    print(f"{len(names)} documents")
    for i, k in enumerate(KS):
        b = [100 * before[n]["f1"][i] for n in names]
        a = [100 * after[n]["f1"][i] for n in names]
        diff = [y - x for x, y in zip(b, a)]
        se = statistics.stdev(diff) / len(diff) ** 0.5
        print(f"F1@{k}: before {spread(b)}, after {spread(a)}; paired change "
              f"{statistics.mean(diff):+.2f} ± {se:.2f} (se), "
              f"{sum(d > 0 for d in diff)} better, {sum(d < 0 for d in diff)} worse")
    print(f"P@1: before {p_at_1(before):.2f}, after {p_at_1(after):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
