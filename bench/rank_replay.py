"""Replays attnprompt's document ranking from the phrase occurrences `attnprompt eval --per-doc
FILE --occurrences` writes, to measure ranking variants without running the model again
(EVALUATION.md, "What else was tried for long documents"). The first row replays the defaults
and must give eval's own figures back (ties may order differently: f64 here, f32 there).

Usage: python3 bench/rank_replay.py PER_DOC.jsonl [PER_DOC.jsonl ...]   (standard library only; the word-rarity rows run where the `wordfreq` package is installed)

Protocol (src/eval.rs): a phrase's score is the sum of its occurrences, a single word's half its
sum (its occurrences counted up to 12); stronger first, ties to the earlier phrase; a single word that is a word of a
phrase ranked above it is left out; predictions stemmed (NLTK Porter, as eval wrote them),
de-duplicated keeping the first; macro F1 at 5, 10 and 15 against the stemmed gold."""

from __future__ import annotations

import json
import sys

KS = (5, 10, 15)


def load(path: str) -> list[dict]:
    docs = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        occ = [dict(o["o"], stem=o["stem"]) for o in d["occurrences"]]
        docs.append({"gold": d["gold"], "occ": occ,
                     "opening": {o["key"] for o in occ if o["window"] == 0}})
    return docs


def prior(o: dict, scale: float) -> float:
    return 1.0 / (1.0 + o["tokens_before"] / scale) if scale else 1.0


def rank(doc: dict, weight, final) -> list[str]:
    phrases: dict[str, dict] = {}
    for o in doc["occ"]:
        p = phrases.setdefault(o["key"], {"sum": 0.0, "n": 0, "single": o["single_word"],
                                          "surface": o["surface"], "stem": o["stem"],
                                          "start": o["start"], "end": o["end"]})
        p["sum"] += o["score"] * weight(o, doc)
        p["n"] += 1
    ranked = sorted(phrases.values(), key=lambda p: (-final(p), p["start"], p["end"]))
    kept, words = [], set()
    leave_out = doc.get("leave_out")
    for p in ranked:
        if p["single"] and p["surface"].lower() in words:
            continue
        if leave_out and leave_out(p, kept):
            continue
        kept.append(p)
        words.update(w.lower() for w in p["surface"].split())
    seen, out = set(), []
    for p in kept:
        if p["stem"] and p["stem"] not in seen:
            seen.add(p["stem"])
            out.append(p["stem"])
    return out


def f1(pred: list[str], gold: list[str], k: int) -> float:
    top, g = pred[:k], set(gold)
    tp = sum(p in g for p in top)
    p = tp / len(top) if top else 0.0
    r = tp / len(g) if g else 0.0
    return 2 * p * r / (p + r) if tp else 0.0


def per_doc(docs: list[dict], weight, final, transform=None) -> list[list[float]]:
    """Each document's F1 at 5, 10 and 15, in percent."""
    docs = transform(docs) if transform else docs
    return [[100 * f1(rank(d, weight, final), d["gold"], k) for k in KS] for d in docs]


def paired_change(rows: list[list[float]], base: list[list[float]], i: int = 1) -> str:
    """The change in F1@10 (KS[i]) against `base`, paired over documents: mean ± standard error."""
    d = [r[i] - b[i] for r, b in zip(rows, base)]
    mean = sum(d) / len(d)
    sd = (sum((x - mean) ** 2 for x in d) / (len(d) - 1)) ** 0.5 if len(d) > 1 else 0.0
    return f"{mean:+.2f} ± {sd / len(d) ** 0.5:.2f}"


def default_final(p: dict) -> float:
    """A single word scores half its sum, its occurrences counted up to 12 (the default since
    2026-12-06)."""
    if not p["single"]:
        return p["sum"]
    return p["sum"] * (0.5 if p["n"] <= 12 else 0.5 * 12 / p["n"])


def mean_single(p: dict) -> float:
    """A single word scores its mean (the default before 2026-12-06)."""
    return p["sum"] / p["n"] if p["single"] else p["sum"]


def with_subphrases(docs: list[dict], share: float, suffixes_only: bool) -> list[dict]:
    """Each occurrence of a phrase of n >= 3 words also counts as an occurrence of its
    sub-phrases of 2 or more words (only those ending at its last word with `suffixes_only`),
    each scored `share` x its part of the phrase's score by word count (the replay has no word
    scores: an approximation of what a candidate generator adding sub-phrases would give)."""
    out = []
    for d in docs:
        occ = []
        for o in d["occ"]:
            occ.append(o)
            words, stems = o["surface"].split(), o["stem"].split()
            n = len(words)
            if o["single_word"] or n < 3 or len(stems) != n:
                continue
            for i in range(n):
                for j in range(i + 2, n + 1):
                    if (i, j) == (0, n) or (suffixes_only and j != n):
                        continue
                    surface = " ".join(words[i:j])
                    occ.append(dict(o, surface=surface, key=surface.lower(),
                                    stem=" ".join(stems[i:j]),
                                    score=o["score"] * (j - i) / n * share))
        out.append(dict(d, occ=occ))
    return out


def single_rule(rule):
    """A final score whose single words score `rule(mean, occurrences)`, phrases their sum."""
    return lambda p: rule(p["sum"] / p["n"], p["n"]) if p["single"] else p["sum"]


def words(o: dict) -> int:
    return len(o["surface"].split())


def with_first_position(docs: list[dict]) -> list[dict]:
    """Each occurrence also carries the tokens before its phrase's first occurrence."""
    out = []
    for d in docs:
        first: dict[str, int] = {}
        for o in d["occ"]:
            first[o["key"]] = min(first.get(o["key"], o["tokens_before"]), o["tokens_before"])
        out.append(dict(d, occ=[dict(o, first=first[o["key"]]) for o in d["occ"]]))
    return out


def with_segment_weights(docs: list[dict], opening: int, power: float = 1.0) -> list[dict]:
    """Attention-Seeker's segment weight (López et al. 2024, its notebook 02, the SemEval cell),
    with our windows as its segments: the opening is the windows starting before `opening`
    tokens, p(c) an opening phrase's summed score there, and window w counts
    T_w = sum over w's occurrences o of an opening phrase of score(o) p(c) / n(c, w), relative to
    the opening's largest T (to the power `power`); a window without opening phrases counts 0."""
    out = []
    for d in docs:
        p_open: dict[str, float] = {}
        for o in d["occ"]:
            if o["tokens_before"] < opening:
                p_open[o["key"]] = p_open.get(o["key"], 0.0) + o["score"]
        n: dict[tuple, int] = {}
        for o in d["occ"]:
            n[(o["window"], o["key"])] = n.get((o["window"], o["key"]), 0) + 1
        t: dict[int, float] = {}
        for o in d["occ"]:
            if o["key"] in p_open:
                t[o["window"]] = t.get(o["window"], 0.0) + o["score"] * p_open[o["key"]] / n[(o["window"], o["key"])]
        top = max([t.get(o["window"], 0.0) for o in d["occ"] if o["tokens_before"] < opening] or [1.0]) or 1.0
        out.append(dict(d, occ=[dict(o, segment=(t.get(o["window"], 0.0) / top) ** power)
                                for o in d["occ"]]))
    return out


def with_spread(docs: list[dict]) -> list[dict]:
    """Each occurrence also carries how many windows its phrase occurs in."""
    out = []
    for d in docs:
        windows: dict[str, set] = {}
        for o in d["occ"]:
            windows.setdefault(o["key"], set()).add(o["window"])
        out.append(dict(d, occ=[dict(o, spread=len(windows[o["key"]])) for o in d["occ"]]))
    return out


def leaving_out(rule):
    """A multi-word phrase is left out when `rule(its stem, a kept phrase's stem)` holds for a
    phrase ranked above it."""
    def transform(docs: list[dict]) -> list[dict]:
        return [dict(d, leave_out=lambda p, kept: not p["single"] and any(
            rule(f" {p['stem']} ", f" {k['stem']} ") for k in kept if not k["single"])) for d in docs]
    return transform


PTB_BRACKETS = {"LRB", "RRB", "LSB", "RSB", "LCB", "RCB"}


def without_dataset_artifacts(docs: list[dict]) -> list[dict]:
    """Drops the phrases made of the data's own artifacts: the PTB escapes of brackets (`-RRB-`
    read as the word `RRB`) and a title run into the `ABSTRACT` heading (`Overlay Mesh
    ABSTRACT`): what a tokenizer of PTB escapes and a line break after the title would give."""
    return [dict(d, occ=[o for o in d["occ"] if not (set(o["surface"].replace("-", " ").split())
                                                      & (PTB_BRACKETS | {"ABSTRACT"}))]) for d in docs]


def informativeness(zmax: float):
    """The mean over a phrase's words of (zmax - Zipf frequency) / zmax (0 for words as common
    as zmax), Zipf from the `wordfreq` package (general English); None without it."""
    try:
        from wordfreq import zipf_frequency
    except ImportError:
        return None
    cache: dict[str, float] = {}

    def info(o: dict) -> float:
        ws = [w.lower() for w in o["surface"].replace("-", " ").split()] or [""]
        for w in ws:
            if w not in cache:
                cache[w] = max(0.0, zmax - zipf_frequency(w, "en")) / zmax
        return sum(cache[w] for w in ws) / len(ws)
    return info


VARIANTS = [
    ("the defaults (position prior 300)", lambda o, d: prior(o, 300), default_final),
    ("opening phrases keep later occurrences undecayed",
     lambda o, d: 1.0 if o["key"] in d["opening"] else prior(o, 300), default_final),
    ("the same, those occurrences x2",
     lambda o, d: 1.0 if o["window"] == 0 else 2.0 * (1.0 if o["key"] in d["opening"] else prior(o, 300)),
     default_final),
    ("opening phrases x1.5 wherever they occur",
     lambda o, d: prior(o, 300) * (1.5 if o["key"] in d["opening"] else 1.0), default_final),
    ("opening phrases x2, prior 1000",
     lambda o, d: prior(o, 1000) * (2.0 if o["key"] in d["opening"] else 1.0), default_final),
    ("later occurrences of phrases not in the opening x0.3",
     lambda o, d: 1.0 if o["window"] == 0 or o["key"] in d["opening"] else 0.3, default_final),
    ("single words averaged (the rule before 2026-12-06)", lambda o, d: prior(o, 300), mean_single),
    ("single words summed", lambda o, d: prior(o, 300), lambda p: p["sum"]),
    ("multi-word: mean x log2(1 + occurrences)", lambda o, d: prior(o, 300),
     lambda p: p["sum"] / p["n"] * (1.0 if p["single"] else __import__("math").log2(1 + p["n"]))),
] + [
    (f"sub-phrases of longer phrases as candidates{' (suffixes)' if suffixes else ''}, share {share}",
     lambda o, d: prior(o, 300), default_final,
     lambda docs, share=share, suffixes=suffixes: with_subphrases(docs, share, suffixes))
    for share in (1.0, 0.5, 0.25) for suffixes in (False, True)
] + [
    # 2026-12-06: how many of a single word's occurrences count (the default: 12), and a
    # saturating count instead (EVALUATION.md, "Single words: half their sum").
    (f"single words: half their sum, {f'counted up to {cap}' if cap else 'uncapped'}",
     lambda o, d: prior(o, 300), single_rule(lambda m, n, cap=cap: 0.5 * m * min(n, cap or n)))
    for cap in (4, 6, 8, 16, None)
] + [
    (f"single words: half their mean x n (k + 1) / (n + k), k = {k}", lambda o, d: prior(o, 300),
     single_rule(lambda m, n, k=k: 0.5 * m * n * (k + 1) / (n + k)))
    for k in (2, 4, 8, 16)
] + [
    # Tried on the rule before 2026-12-06 (single words averaged), not kept.
    ("old rule; phrases of 2-3 words x1.3",
     lambda o, d: prior(o, 300) * (1.3 if words(o) in (2, 3) else 1.0), mean_single),
    ("old rule; phrases of 4 or more words x0.7",
     lambda o, d: prior(o, 300) * (0.7 if words(o) >= 4 else 1.0), mean_single),
    ("uncapped half sums; phrases of 4 or more words x0.7",
     lambda o, d: prior(o, 300) * (0.7 if words(o) >= 4 else 1.0), single_rule(lambda m, n: 0.5 * m * n)),
    ("old rule; the prior of the first occurrence only",
     lambda o, d: 1.0 / (1.0 + o["first"] / 300), mean_single, with_first_position),
    ("old rule; the prior's square root", lambda o, d: prior(o, 300) ** 0.5, mean_single),
    ("old rule; the prior squared", lambda o, d: prior(o, 300) ** 2, mean_single),
] + [
    # 2026-12-07: Attention-Seeker's segment weight, read off its authors' code; the spread of
    # a phrase over windows; leaving out phrases that contain or sit inside a better one; the
    # data's artifacts; a general-English informativeness prior (EVALUATION.md, "The levers of
    # the literature, replayed").
    (f"segments weighted by the opening's phrases (opening < {o} tokens{', square root' if pw == 0.5 else ''}), prior {t}",
     lambda o_, d, t=t: o_["segment"] * prior(o_, t), default_final,
     lambda docs, o=o, pw=pw: with_segment_weights(docs, o, pw))
    for o, pw, t in ((128, 1.0, 0), (256, 1.0, 0), (256, 1.0, 300), (256, 0.5, 300), (384, 0.5, 300))
] + [
    (f"x windows the phrase occurs in, to the power {g}",
     lambda o, d, g=g: prior(o, 300) * o["spread"] ** g, default_final, with_spread)
    for g in (0.25, 0.5)
] + [
    ("a phrase containing a better one left out", lambda o, d: prior(o, 300), default_final,
     leaving_out(lambda p, k: k in p)),
    ("a phrase inside a better one left out", lambda o, d: prior(o, 300), default_final,
     leaving_out(lambda p, k: p in k)),
    ("without the data's artifacts (PTB brackets, the ABSTRACT heading)",
     lambda o, d: prior(o, 300), default_final, without_dataset_artifacts),
] + [
    (f"x informativeness{'' if b == 1 else f' ^ {b}'} (Zipf below {z}, wordfreq)",
     lambda o, d, info=info, b=b: prior(o, 300) * info(o) ** b, default_final)
    for z, b in ((7.0, 0.5), (7.0, 1.0), (8.0, 1.0))
    for info in [informativeness(z)] if info
]


def ceiling(docs: list[dict]) -> str:
    """How many gold phrases are among the candidates at all, where the defaults rank them, and
    the F1@10 of a ranking that put them first."""
    gold = found = inside = 0
    ranks, oracle = [], 0.0
    for d in docs:
        stems = {o["stem"] for o in d["occ"]}
        pred = rank(d, VARIANTS[0][1], VARIANTS[0][2])
        hits = [g for g in d["gold"] if g in stems]
        gold += len(d["gold"])
        found += len(hits)
        inside += sum(any(f" {g} " in f" {s} " for s in stems) for g in d["gold"] if g not in stems)
        ranks += [pred.index(g) for g in hits if g in pred]
        tp = min(10, len(hits))
        oracle += 2 * (tp / 10) * (tp / len(d["gold"])) / (tp / 10 + tp / len(d["gold"])) if tp else 0.0
    ranks.sort()
    median = (ranks[(len(ranks) - 1) // 2] + ranks[len(ranks) // 2]) / 2 if ranks else float("nan")
    top10 = sum(r < 10 for r in ranks) / len(ranks) if ranks else 0.0
    return (f"{found} of {gold} gold phrases among the candidates ({100 * found / gold:.1f}%); "
            f"their median rank {median:g} (0-based), {100 * top10:.0f}% in the top 10; "
            f"an oracle ranking of the candidates: F1@10 {100 * oracle / len(docs):.1f}; "
            f"{inside} more ({100 * inside / gold:.1f}%) are words inside a longer candidate")


def main() -> int:
    sets = [(path, load(path)) for path in sys.argv[1:]]
    if not sets:
        print(__doc__)
        return 2
    print("| variant | " + " | ".join(f"{path} F1@5 / @10 / @15 | F1@10 change, paired"
                                       for path, _ in sets) + " |")
    print("| --- |" + " --- | --- |" * len(sets))
    base = [per_doc(docs, VARIANTS[0][1], VARIANTS[0][2]) for _, docs in sets]
    for name, weight, final, *transform in VARIANTS:
        cells = []
        for (_, docs), b in zip(sets, base):
            rows = per_doc(docs, weight, final, *transform)
            f = [sum(r[i] for r in rows) / len(rows) for i in range(len(KS))]
            cells.append(" / ".join(f"{x:.2f}" for x in f) + " | " + paired_change(rows, b))
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for path, docs in sets:
        print(f"{path}: {ceiling(docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
