"""F1@5 on the small Chinese keyword set (eval/zh-keywords.jsonl: 20 texts written for this
project, 3-4 keywords each, chosen by hand): attnprompt (--lang zh, each --precision given)
against jieba's TF-IDF and TextRank, top 5: jieba-rs 0.11.0's (bench/zh-baselines, with the
dictionary attnprompt ships) and Python jieba 0.42.1's (its own dictionary and idf table). Exact
match on whole strings. Run through bench/zh-keywords."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "eval" / "zh-keywords.jsonl"


def f1_at(pred: list[str], gold: list[str], k: int = 5) -> tuple[float, float, float]:
    p = pred[:k]
    hit = len(set(p) & set(gold))
    prec = hit / len(p) if p else 0.0
    rec = hit / len(gold)
    return prec, rec, (2 * prec * rec / (prec + rec) if hit else 0.0)


def main() -> int:
    binary = sys.argv[1] if len(sys.argv) > 1 else str(REPO / "target" / "dist" / "attnprompt")
    cases = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = "\n".join(c["text"] for c in cases) + "\n"
    systems = {}
    for precision in ("f32", "int8"):
        out = subprocess.run([binary, "--lang", "zh", "--json", "-k", "5", "--precision", precision],
                             input=texts, capture_output=True, text=True, check=True).stdout.splitlines()
        systems[f"attnprompt ({precision})"] = [[k["text"] for k in json.loads(l)["keywords"]] for l in out]
    rs = subprocess.run([os.environ["ZH_BASELINES"], str(REPO / "models" / "jieba" / "dict.txt"), str(DATA)],
                        capture_output=True, text=True, check=True).stdout.splitlines()
    systems["jieba-rs TF-IDF"] = [json.loads(l)["tfidf"] for l in rs]
    systems["jieba-rs TextRank"] = [json.loads(l)["textrank"] for l in rs]
    import jieba
    import jieba.analyse

    jieba.setLogLevel(60)
    systems["Python jieba TF-IDF"] = [jieba.analyse.extract_tags(c["text"], topK=5) for c in cases]
    systems["Python jieba TextRank"] = [jieba.analyse.textrank(c["text"], topK=5) for c in cases]
    print(f"{len(cases)} texts, {sum(len(c['keywords']) for c in cases)} gold keywords, exact match, macro over texts\n")
    print("| system | P@5 | R@5 | F1@5 |\n| --- | --- | --- | --- |")
    for name, preds in systems.items():
        scores = [f1_at(p, c["keywords"]) for p, c in zip(preds, cases)]
        m = [sum(s[i] for s in scores) / len(scores) * 100 for i in range(3)]
        print(f"| {name} | {m[0]:.1f} | {m[1]:.1f} | {m[2]:.1f} |")
    print("\nper text (attnprompt f32 | TF-IDF):")
    for c, a, t in zip(cases, systems["attnprompt (f32)"], systems["jieba-rs TF-IDF"]):
        print(f"  {c['id']:2} gold {'/'.join(c['keywords'])} | {'/'.join(a)} | {'/'.join(t)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
