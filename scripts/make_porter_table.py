"""(word, NLTK stem) table for tests/it/stem.rs. See scripts/make-nltk-fixtures."""

import json
import random
import re
from pathlib import Path

import nltk
from nltk.stem import PorterStemmer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "datasets"
OUT = ROOT / "tests" / "fixtures" / "porter-nltk.tsv"

# The irregular cases named in issue 6, NLTK's irregular-forms table, and words that exercise
# each NLTK-only rule (ies/ied on 4 letters, y after a consonant, alli/fulli/logi, 2-letter *o).
SPECIAL = """
autofocus torus lens generously sky skies dying lying tying news innings inning outings outing
cannings canning howe proceed exceed succeed ties dies pies died tied lied happy enjoy spy fly try
cry sly by my toy syzygy caresses ponies caress cats feed agreed plastered bled motoring sing
conflated troubled sized hopping tanned falling hissing fizzed failing filing relational
conditional rational valenci hesitanci digitizer conformabli radicalli differentli vileli
analogousli vietnamization predication operator feudalism decisiveness hopefulness callousness
formaliti sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful
goodness revival allowance inference airliner gyroscopic adjustable defensible irritant
replacement adjustment dependent adoption homologou communism activate angulariti homologous
effective bowdlerize probate rate cease controll roll generalli carefulli beautifulli analogi
biologi geologi apologi archaeologi logi dialogi eating aging on at is as us a i it oed ied yed
running ringing bring string hoping hopped agreement skying skied multiply apply applied
quickly oddly rotation rotational generalization generalizations syllogism tomorrow cylinders
""".split()


def words_from_data():
    words = set()
    for line in (DATA / "inspec.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        words.update(re.findall(r"[A-Za-z][A-Za-z'-]*[A-Za-z]|[A-Za-z]", doc["text"]))
    ewt = set()
    for line in (DATA / "ud-english-ewt" / "en_ewt-ud-train.conllu").open(encoding="utf-8"):
        if line and line[0].isdigit():
            form = line.split("\t")[1]
            if form.isalpha():
                ewt.add(form)
    return words, ewt


def main():
    stemmer = PorterStemmer()
    assert stemmer.mode == PorterStemmer.NLTK_EXTENSIONS
    inspec, ewt = words_from_data()
    rng = random.Random(6)
    # All lowercased Inspec words (the evaluation stems lowercased words), a sample of EWT
    # words as written (case and all), and the special cases.
    chosen = {w.lower() for w in inspec}
    chosen.update(rng.sample(sorted(ewt), 2000))
    chosen.update(SPECIAL)
    rows = sorted((w, stemmer.stem(w)) for w in chosen)
    with OUT.open("w", encoding="utf-8") as f:
        f.write(f"# word\tstem by nltk {nltk.__version__} PorterStemmer() (NLTK_EXTENSIONS); "
                "made by scripts/make-nltk-fixtures\n")
        for w, s in rows:
            f.write(f"{w}\t{s}\n")
    print(f"wrote {len(rows)} rows to {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
