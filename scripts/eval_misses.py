"""Error analysis of `attnprompt eval --per-doc` output (EVALUATION.md, "Where the rest is").

    attnprompt eval --dataset ../shared/datasets/inspec.jsonl --per-doc preds.jsonl
    scripts/eval-misses preds.jsonl

The predictions are every ranked candidate of a document. Prints: where the gold
phrases are (among the candidates, not in the text, in the text but not a candidate, and of those
inside a longer candidate), macro F1@10 if the candidates were ranked perfectly, the share and
precision of each phrase length in the top 10, the top-10 false positives that are a gold
phrase behind extra leading words (by those words), and macro F1@5/10/15 with every single word
left out. `--tags` also counts the tag patterns of the missed gold phrases, tagging each document with
the shipped tagger (target/debug/examples/tag-text, built by `cargo build --example tag-text`).
Stems with NLTK's PorterStemmer, as the gold phrases were."""

import argparse
import collections
import json
import re
import subprocess
from pathlib import Path

from nltk.stem import PorterStemmer

ROOT = Path(__file__).resolve().parent.parent
DATASET = ROOT.parent / "shared" / "datasets" / "inspec.jsonl"
STEM = PorterStemmer().stem


def words(text):
    """Words with hyphenated compounds whole, as the pipeline's candidates keep them."""
    return re.findall(r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*|[^\sA-Za-z0-9]", text)


def inside(phrase, longer):
    return f" {phrase} " in f" {longer} "


def f1(pred, gold, k):
    pred = pred[:k]
    tp = sum(p in gold for p in pred)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(gold)
    return 2 * p * r / (p + r) if p + r else 0.0


def tag_units(text):
    """(word, tag) of the shipped tagger, hyphenated compounds joined with their last tag."""
    out = subprocess.run([str(ROOT / "target/debug/examples/tag-text"), text],
                         capture_output=True, text=True, check=True).stdout.split("\n")[0]
    pairs = [t.rsplit("/", 1) for t in out.split(" ")]
    units, i = [], 0
    while i < len(pairs):
        j = i
        while j + 2 < len(pairs) and pairs[j + 1][0] == "-":
            j += 2
        units.append(("-".join(w for w, _ in pairs[i:j + 1:2]), pairs[j][1]))
        i = j + 1
    return units


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("per_doc")
    ap.add_argument("--tags", action="store_true")
    args = ap.parse_args()
    texts = {}
    for line in DATASET.open(encoding="utf-8"):
        d = json.loads(line)
        texts[d["file_name"]] = d["text"]
    docs = [json.loads(line) for line in open(args.per_doc, encoding="utf-8")]

    where = collections.Counter()
    oracle, no_single = [], [[], [], []]
    length_n, length_hit, gold_len = collections.Counter(), collections.Counter(), collections.Counter()
    patterns = collections.Counter()
    # top-10 false positives that are a gold phrase behind extra leading words, by those words
    leading = collections.Counter()
    for d in docs:
        gold = set(d["gold"])
        cands = d["predicted_stemmed"]
        cand_set = set(cands)
        stemmed = " ".join(STEM(w.lower()) for w in words(texts[d["file_name"]]))
        units = tag_units(texts[d["file_name"]]) if args.tags else None
        for g in gold:
            gold_len[len(g.split())] += 1
            if g in cand_set:
                where["candidate"] += 1
            elif not inside(g, stemmed):
                where["not in the text"] += 1
            else:
                where["in the text, not a candidate"] += 1
                if any(inside(g, c) for c in cands):
                    where["  of which inside a longer candidate"] += 1
                elif units is not None:
                    st = [STEM(w.lower()) for w, _ in units]
                    n = len(g.split())
                    for i in range(len(st) - n + 1):
                        if " ".join(st[i:i + n]) == g:
                            patterns[" ".join(t for _, t in units[i:i + n])] += 1
                            break
        tp = min(len(gold & cand_set), 10)
        k = min(10, len(cands))
        p, r = (tp / k if k else 0.0), tp / len(gold)
        oracle.append(2 * p * r / (p + r) if p + r else 0.0)
        for c in cands[:10]:
            n = len(c.split())
            length_n[n] += 1
            length_hit[n] += c in gold
            w = c.split()
            if c not in gold:
                for i in range(1, n):
                    if " ".join(w[i:]) in gold:
                        leading[" ".join(w[:i])] += 1
                        break
        multi = [c for c in cands if " " in c]
        for i, kk in enumerate((5, 10, 15)):
            no_single[i].append(f1(multi, gold, kk))

    print(f"{len(docs)} documents, {sum(gold_len.values())} distinct gold phrases")
    for key in ("candidate", "not in the text", "in the text, not a candidate",
                "  of which inside a longer candidate"):
        print(f"  {key}: {where[key]}")
    print(f"macro F1@10 with the candidates ranked perfectly: {100 * sum(oracle) / len(oracle):.2f}")
    total = sum(length_n.values())
    print("top 10 by phrase length (words): share, precision; share of gold")
    for n in sorted(length_n):
        print(f"  {n}: {100 * length_n[n] / total:.0f}%, {100 * length_hit[n] / length_n[n]:.0f}%;"
              f" {100 * gold_len[n] / sum(gold_len.values()):.0f}%")
    print(f"top-10 false positives that are a gold phrase behind leading words: "
          f"{sum(leading.values())}; leading words (stemmed): "
          + ", ".join(f"{w} {n}" for w, n in leading.most_common(10)))
    print("macro F1@5/10/15 with every single word left out: "
          + " / ".join(f"{100 * sum(v) / len(v):.2f}" for v in no_single))
    if args.tags:
        print("tag patterns of missed gold phrases that are in the text, not inside a candidate:")
        for pat, n in patterns.most_common(10):
            print(f"  {n} {pat}")


if __name__ == "__main__":
    main()
