"""Noun-phrase chunks by NLTK's RegexpParser over the gold Penn tags of UD English EWT test
sentences: the independent reference for src/nounphrase.rs `chunk` (tests/it/nounphrase.rs).
Run by scripts/make-nltk-fixtures."""

import json
from pathlib import Path

import nltk
from nltk.chunk import RegexpParser

ROOT = Path(__file__).resolve().parent.parent
EWT = ROOT.parent / "shared" / "datasets" / "ud-english-ewt" / "en_ewt-ud-test.conllu"
OUT = ROOT / "tests" / "fixtures" / "np-chunks-nltk.json"
SENTENCES = 400
MAX_WORDS = 5
# src/nounphrase.rs GRAMMAR
GRAMMAR = "NP: {<NN.*|JJ|VBN>*<NN.*>}"


def sentences():
    sent = []
    for line in EWT.open(encoding="utf-8"):
        line = line.rstrip("\n")
        if not line:
            if sent:
                yield sent
            sent = []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if "-" in cols[0] or "." in cols[0]:
            continue
        sent.append((cols[1], cols[4]))
    if sent:
        yield sent


def main():
    stop = {l.strip() for l in (ROOT / "src" / "stopwords.txt").open() if l.strip() and not l.startswith("#")}
    parser = RegexpParser(GRAMMAR)
    out = []
    for n, sent in enumerate(sentences()):
        if n == SENTENCES:
            break
        tree = parser.parse(sent)
        chunks, pos = [], 0
        for node in tree:
            if isinstance(node, nltk.Tree):
                words = [w for w, _ in node.leaves()]
                if len(words) <= MAX_WORDS and words[0].lower() not in stop:
                    chunks.append([pos, len(words)])
                pos += len(words)
            else:
                pos += 1
        out.append({"words": [w for w, _ in sent], "tags": [t for _, t in sent], "chunks": chunks})
    OUT.write_text(json.dumps({"grammar": GRAMMAR, "nltk": nltk.__version__,
                               "max_words": MAX_WORDS, "sentences": out}, ensure_ascii=False) + "\n")
    print(f"wrote {len(out)} sentences, {sum(len(s['chunks']) for s in out)} chunks to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
