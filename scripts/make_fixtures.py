"""Writes the onnxruntime reference fixtures for the Rust tests (run through scripts/make-fixtures).

tests/fixtures/reference-int8.json from models/all-MiniLM-L6-v2-int8/model.onnx;
tests/fixtures/reference-f32.json from the f32 form of that file (its int8 weights dequantized, what
`--precision f32` runs), made by ref_common.dequantized_f32_form; and, when it exists,
tests/fixtures/reference-fp32.json from target/reference/model-fp32.onnx (scripts/make-models builds it).

Per fixture text (scripts/ref_common.py): tokens (Python `tokenizers`, shipped tokenizer.json, truncation
to 128, no padding), byte offsets, word ids; onnxruntime (ORT_ENABLE_ALL, 1 thread) on the text's own
tokens, unpadded (as attnprompt runs them), with the 6 attention Softmax outputs added; attention
statistics, rollout, pooled embedding; and the top-10 keywords of the reference keyword algorithm
(`keywords` below) per strategy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ref_common as rc  # noqa: E402

OUT_DIR = rc.REPO / "tests" / "fixtures"
OPT_LEVEL = "ORT_ENABLE_ALL"
TOP_K = 10
MAX_NGRAM = 4


def g8(x: float) -> float:
    """Round to 8 significant digits."""
    return float(f"{float(x):.8g}")


def g8list(v) -> list:
    return [g8(x) for x in np.asarray(v).ravel()]


def byte_offsets(text: str, char_offsets: list[tuple[int, int]]) -> list[list[int]]:
    """Python tokenizers gives char offsets; convert them to UTF-8 byte offsets."""
    pos = [0]
    for c in text:
        pos.append(pos[-1] + len(c.encode("utf-8")))
    return [[pos[s], pos[e]] for s, e in char_offsets]


# ---------------------------------------------------------------- attention statistics


def received_per_layer(attn: np.ndarray, n: int) -> np.ndarray:
    """[6, n]: mean over heads of sum over query rows i<n of A[l,h,i,j]."""
    a = attn[:, :, :n, :n].astype(np.float64)
    return a.sum(axis=2).mean(axis=1)


def cls_per_layer(attn: np.ndarray, n: int) -> np.ndarray:
    """[6, n]: mean over heads of A[l,h,0,j]."""
    return attn[:, :, 0, :n].astype(np.float64).mean(axis=1)


def rollout(attn: np.ndarray, n: int) -> np.ndarray:
    """Attention rollout: M_l = 0.5 mean_h A_l + 0.5 I (rows renormalized), R = M_6 ... M_1, row 0."""
    r = None
    for layer in range(attn.shape[0]):
        m = 0.5 * attn[layer, :, :n, :n].astype(np.float64).mean(axis=0) + 0.5 * np.eye(n)
        m /= m.sum(axis=1, keepdims=True)
        r = m if r is None else m @ r
    return r[0]


# ---------------------------------------------------------------- reference keyword algorithm


def keywords(text: str, ids: list[int], offsets: list[list[int]], word_ids: list, scores, stopwords: set[str],
             top_k: int = TOP_K) -> list[dict]:
    raw = text.encode("utf-8")
    groups: dict[int, list[int]] = {}
    for j, w in enumerate(word_ids):
        if w is not None:
            groups.setdefault(w, []).append(j)
    words = []  # (surface, start, end, score, excluded), in word order
    for w in sorted(groups, key=lambda w: groups[w][0]):
        toks = groups[w]
        start, end = offsets[toks[0]][0], offsets[toks[-1]][1]
        surface = raw[start:end].decode("utf-8")
        score = float(sum(float(scores[j]) for j in toks))
        excluded = (any(ids[j] in rc.SPECIAL_IDS for j in toks)
                    or not any(c.isalnum() for c in surface)
                    or surface.lower() in stopwords)
        words.append((surface, start, end, score, excluded))
    runs, cur = [], []
    for w in words:
        if w[4]:
            if cur:
                runs.append(cur)
            cur = []
        else:
            cur.append(w)
    if cur:
        runs.append(cur)
    phrases: dict[str, dict] = {}
    for run in runs:
        for i in range(len(run)):
            for k in range(1, MAX_NGRAM + 1):
                if i + k > len(run):
                    break
                occ = run[i:i + k]
                key = " ".join(w[0].lower() for w in occ)
                s = sum(w[3] for w in occ)
                p = phrases.get(key)
                if p is None:
                    phrases[key] = {"key": key, "start": occ[0][1], "end": occ[-1][2], "score": s, "count": 1, "words": k}
                else:
                    p["score"] += s
                    p["count"] += 1
                    if (occ[0][1], occ[-1][2]) < (p["start"], p["end"]):
                        p["start"], p["end"] = occ[0][1], occ[-1][2]
    out = []
    for p in phrases.values():
        # a single word scores half its sum, its occurrences counted up to 12
        # (keywords::single_word_score)
        if p["words"] == 1:
            score = p["score"] * (0.5 if p["count"] <= 12 else 0.5 * 12 / p["count"])
        else:
            score = p["score"]
        out.append({"text": raw[p["start"]:p["end"]].decode("utf-8"), "key": p["key"], "start": p["start"],
                    "end": p["end"], "score": score})
    out.sort(key=lambda p: (-p["score"], p["start"], p["end"]))
    kept = []
    for p in out:
        if len(kept) == top_k:
            break
        # a single word that is a word of a keyword ranked above it is left out; where either
        # holds Han characters (written without spaces), a phrase inside its text is too
        if any(inside(p["text"], k["text"]) for k in kept):
            continue
        kept.append(p)
    return kept


def is_han(c: str) -> bool:
    o = ord(c)
    return 0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x2FFFF


def inside(text: str, kept: str) -> bool:
    """keywords::push_unless_inside's rule."""
    if " " not in text and text.lower() in kept.lower().split():
        return True
    han = any(is_han(c) for c in text) or any(is_han(c) for c in kept)
    return han and text.lower() in kept.lower()


# ---------------------------------------------------------------- fixtures


def strategies(rec: np.ndarray, cls: np.ndarray, roll: np.ndarray) -> dict[str, np.ndarray]:
    return {"received:last": rec[5], "received:all": rec.mean(axis=0), "cls:last": cls[5], "rollout": roll}


def compute(model_path: Path, opt_level: str = OPT_LEVEL, form=None) -> tuple[dict, dict]:
    """Returns (fixture json, raw arrays per text for the tolerance notes). `form`, if given, turns
    the loaded model into the form to run (e.g. rc.dequantized_f32_form)."""
    import onnxruntime as ort

    tok = rc.load_tokenizer(rc.TOKENIZER, truncate=True)
    tok_full = rc.load_tokenizer(rc.TOKENIZER, truncate=False)
    stop = rc.load_stopwords()
    loaded = onnx.load(str(model_path))
    if form is not None:
        loaded, _ = form(loaded)
    model, names = rc.with_attention_outputs(loaded)
    sess = rc.session(model, opt_level, threads=1)
    texts, raws = [], {}
    for name, text in rc.FIXTURE_TEXTS:
        enc = tok.encode(text)
        n_full = len(tok_full.encode(text).ids)
        ids = list(enc.ids)
        n = len(ids)
        offsets = byte_offsets(text, enc.offsets)
        hidden, attn = rc.run(sess, names, ids)
        rec, cls, roll = received_per_layer(attn, n), cls_per_layer(attn, n), rollout(attn, n)
        pooled = rc.mean_pool(hidden, n)
        kw = {k: [{**p, "score": g8(p["score"])} for p in keywords(text, ids, offsets, enc.word_ids, v, stop)]
              for k, v in strategies(rec, cls, roll).items()}
        raws[name] = {"rec": rec, "cls": cls, "roll": roll, "pooled": pooled, "attn": attn[:, :, :n, :n], "kw": kw}
        texts.append({
            "name": name,
            "text": text,
            "n_tokens": n,
            "input_ids": ids,
            "offsets": offsets,
            "word_ids": list(enc.word_ids),
            "tokens": list(enc.tokens),
            "truncated": n_full > rc.MAX_SEQ,
            "n_tokens_untruncated": n_full,
            "received_per_layer": [g8list(r) for r in rec],
            "cls_per_layer": [g8list(r) for r in cls],
            "rollout": g8list(roll),
            "raw_l0_h0_row0": g8list(attn[0, 0, 0, :n]),
            "raw_l5_h11_row1": g8list(attn[5, 11, 1, :n]),
            "pooled": g8list(pooled),
            "keywords": kw,
        })
    rel = model_path.relative_to(rc.REPO) if model_path.is_relative_to(rc.REPO) else model_path
    fixture = {
        "model": str(rel),
        "model_sha256": rc.sha256_file(model_path),
        "tokenizer": str(rc.TOKENIZER.relative_to(rc.REPO)),
        "tokenizer_sha256": rc.sha256_file(rc.TOKENIZER),
        "onnxruntime": ort.__version__,
        "max_seq": rc.MAX_SEQ,
        "padded_to": None,
        "opt_level": opt_level,
        "threads": 1,
        "attention_outputs": names,
        "float_rounding": "8 significant digits",
        "texts": texts,
    }
    return fixture, raws


def diff_notes(a: dict, b: dict) -> dict:
    """Max distances between two runs (raw arrays from compute), over all fixture texts."""
    out = {"pooled_cos_min": 1.0, "pooled_max_abs": 0.0, "attn_max_abs": 0.0, "received_max_abs": 0.0,
           "received_max_rel": 0.0, "cls_max_abs": 0.0, "rollout_max_abs": 0.0, "rollout_max_rel": 0.0,
           "keyword_top10_key_overlap_min": 1.0, "keyword_top1_same": 0, "keyword_lists": 0}
    for name in a:
        x, y = a[name], b[name]
        out["pooled_cos_min"] = min(out["pooled_cos_min"], rc.cosine(x["pooled"], y["pooled"]))
        out["pooled_max_abs"] = max(out["pooled_max_abs"], float(np.max(np.abs(x["pooled"] - y["pooled"]))))
        out["attn_max_abs"] = max(out["attn_max_abs"], float(np.max(np.abs(x["attn"].astype(np.float64) - y["attn"]))))
        for k in ("rec", "cls", "roll"):
            d = np.abs(x[k] - y[k])
            key = {"rec": "received", "cls": "cls", "roll": "rollout"}[k]
            out[f"{key}_max_abs"] = max(out[f"{key}_max_abs"], float(np.max(d)))
            if k != "cls":
                out[f"{key}_max_rel"] = max(out[f"{key}_max_rel"], float(np.max(d / np.maximum(np.abs(y[k]), 1e-12))))
        for strat, kws in x["kw"].items():
            ka = [p["key"] for p in kws]
            kb = [p["key"] for p in y["kw"][strat]]
            if ka and kb:
                out["keyword_top10_key_overlap_min"] = min(out["keyword_top10_key_overlap_min"],
                                                           len(set(ka) & set(kb)) / max(len(ka), len(kb)))
                out["keyword_top1_same"] += int(ka[0] == kb[0])
                out["keyword_lists"] += 1
    return {k: (g8(v) if isinstance(v, float) else v) for k, v in out.items()}


def dumps(v, ind: int = 0) -> str:
    """JSON with objects indented and arrays of scalars (or of short arrays) on one line."""
    pad = " " * (ind + 1)
    if isinstance(v, dict):
        if not v:
            return "{}"
        items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {dumps(x, ind + 1)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * ind + "}"
    if isinstance(v, list):
        if all(not isinstance(x, (dict, list)) for x in v) or all(
                isinstance(x, list) and len(x) <= 2 for x in v):
            return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        return "[\n" + ",\n".join(pad + dumps(x, ind + 1) for x in v) + "\n" + " " * ind + "]"
    return json.dumps(v, ensure_ascii=False)


def write(path: Path, fixture: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = dumps(fixture)
    assert json.loads(body) == fixture
    path.write_text(body + "\n", encoding="utf-8")
    print(f"  wrote {path} ({path.stat().st_size} bytes)", flush=True)


def write_no_attention_model(path: Path) -> None:
    """A tiny graph with BERT's inputs and no Softmax at all: the loader must say it has no
    attention to read (and not panic or pick some other tensor)."""
    from onnx import TensorProto, helper

    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
              for name in ("input_ids", "attention_mask", "token_type_ids")]
    nodes = [
        helper.make_node("Add", ["input_ids", "token_type_ids"], ["sum"]),
        helper.make_node("Mul", ["sum", "attention_mask"], ["masked"]),
        helper.make_node("Cast", ["masked"], ["last_hidden_state"], to=TensorProto.FLOAT),
    ]
    output = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence"])
    graph = helper.make_graph(nodes, "no_attention", inputs, [output])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="make_fixtures")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    t_all = time.perf_counter()
    if not rc.INT8_MODEL.exists():
        raise SystemExit(f"{rc.INT8_MODEL} missing: run scripts/make-models")

    t0 = time.perf_counter()
    int8, raw8 = compute(rc.INT8_MODEL, form=rc.exact_int8_form)
    int8["form"] = "int8, MatMulInteger computed exactly in float64 (scripts/ref_common.py exact_int8_form)"
    _, raw8_noopt = compute(rc.INT8_MODEL, "ORT_DISABLE_ALL", form=rc.exact_int8_form)
    _, raw8_kernel = compute(rc.INT8_MODEL)
    print(f"  int8 runs: {time.perf_counter() - t0:.1f} s", flush=True)
    notes = {
        "what": "max distances over the fixture texts (each run on its own tokens, unpadded); keyword overlap = |top10 keys A & B| / 10, "
                "keyword_top1_same counts strategies x texts with the same first keyword",
        "int8_ORT_DISABLE_ALL_vs_ORT_ENABLE_ALL": diff_notes(raw8_noopt, raw8),
        "int8_onnxruntime_kernel_on_this_cpu_vs_exact": diff_notes(raw8_kernel, raw8),
    }
    t0 = time.perf_counter()
    f32, raw_f32 = compute(rc.INT8_MODEL, form=rc.dequantized_f32_form)
    f32["form"] = "f32: the int8 weights dequantized, (W_q - W_zp) * W_scale (scripts/ref_common.py)"
    print(f"  f32 form runs: {time.perf_counter() - t0:.1f} s", flush=True)
    notes["int8_vs_f32_form"] = diff_notes(raw8, raw_f32)
    fp32 = raw32 = None
    if rc.FP32_MODEL.exists():
        t0 = time.perf_counter()
        fp32, raw32 = compute(rc.FP32_MODEL)
        print(f"  fp32 runs: {time.perf_counter() - t0:.1f} s", flush=True)
        notes["int8_vs_fp32"] = diff_notes(raw8, raw32)
        notes["f32_form_vs_fp32"] = diff_notes(raw_f32, raw32)
    else:
        print(f"  {rc.FP32_MODEL} missing (run scripts/make-models): skipping reference-fp32.json", flush=True)
    print(json.dumps(notes, indent=1), flush=True)

    int8["tolerance_notes"] = notes
    write(OUT_DIR / "reference-int8.json", int8)
    f32["tolerance_notes"] = notes
    write(OUT_DIR / "reference-f32.json", f32)
    if fp32 is not None:
        fp32["tolerance_notes"] = notes
        write(OUT_DIR / "reference-fp32.json", fp32)
    write_no_attention_model(OUT_DIR / "no-attention.onnx")
    print(f"total {time.perf_counter() - t_all:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
