"""Shared pieces of scripts/make_models.py and scripts/make_fixtures.py.

Runs only inside the reference venv (scripts/ref-env.sh): onnx, onnxruntime,
numpy, tokenizers.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path

import numpy as np
import onnx

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR_REL = "all-MiniLM-L6-v2-int8"
INT8_MODEL = REPO / "models" / MODEL_DIR_REL / "model.onnx"
TOKENIZER = REPO / "models" / MODEL_DIR_REL / "tokenizer.json"
FP32_MODEL = REPO / "target" / "reference" / "model-fp32.onnx"
STOPWORDS = REPO / "src" / "stopwords.txt"
MAX_SEQ = 128
NUM_LAYERS = 6
NUM_HEADS = 12
HIDDEN = 384
SPECIAL_IDS = {0, 100, 101, 102}  # [PAD], [UNK], [CLS], [SEP]

LONG_TEXT = (
    "Running quantized transformer models on edge devices is no longer a research "
    "curiosity. A small BERT encoder with six layers fits in a few megabytes once its "
    "weights are stored as int8, and a single-board computer such as a Raspberry Pi can "
    "run it in tens of milliseconds per sentence. The interesting part is not the "
    "embedding itself but the attention: every layer computes, for each token, how much "
    "attention it pays to every other token, and those attention maps can be summed to "
    "find the words a sentence is about. Because the model runs offline, no prompt ever "
    "leaves the device, which matters for privacy, for latency and for places with poor "
    "connectivity. Quantization has costs, though. Dynamic int8 matrix multiplication "
    "introduces small rounding errors, layer normalization amplifies some of them, and "
    "the softmax over attention scores can shift probability mass between neighbouring "
    "tokens. Careful engineers therefore compare the quantized graph with a float32 "
    "reference, measure cosine similarity of pooled embeddings, and check that keyword "
    "rankings stay stable across runtimes, thread counts and processor architectures "
    "before they ship a model to thousands of low-power sensors in the field."
)

# (name, text): the fixture texts, also part of the agreement measurement.
FIXTURE_TEXTS: list[tuple[str, str]] = [
    ("short", "The Raspberry Pi 5 runs BERT inference offline with tract."),
    ("long", LONG_TEXT),
    (
        "punct",
        "Wait... what?! The (int8) model -- quantized, per-channel; signed -- runs @ "
        "20ms/iter, right? [yes]: 100%!!",
    ),
    (
        "nonascii",
        "Café owners in Zürich use naïve Bayes filters; Ångström-level résumé parsing "
        "isn't trivial for the señor's spaß.",
    ),
    ("chinese", "树莓派5可以离线运行BERT模型，注意力机制帮助我们找到关键词。"),
    ("unknown", "Robots 🤖 read ☃ snowmen poems about attention heads and attention maps."),
]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_stopwords(path: Path = STOPWORDS) -> set[str]:
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words.add(line.lower())
    return words


def softmax_outputs(model: onnx.ModelProto) -> list[str]:
    """Output names of the Softmax nodes whose output is 4-D [batch, heads, seq, seq],
    in graph (= layer) order."""
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            ranks[vi.name] = len(t.shape.dim)
    names = [n.output[0] for n in model.graph.node if n.op_type == "Softmax" and ranks.get(n.output[0]) == 4]
    if len(names) != NUM_LAYERS:
        raise SystemExit(f"expected {NUM_LAYERS} 4-D Softmax nodes, found {names}")
    return names


def with_attention_outputs(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """An in-memory copy of `model` with the 6 attention Softmax outputs added as graph outputs."""
    names = softmax_outputs(model)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for name in names:
        m.graph.output.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", NUM_HEADS, "sequence", "sequence"])
        )
    return m, names


def session(model: onnx.ModelProto, opt_level: str = "ORT_ENABLE_ALL", threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, opt_level)
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])


def run(sess, attn_names: list[str], ids: list[int], pad_to: int | None = None):
    """Runs one sequence; returns (last_hidden_state [seq,384], attn [6,12,seq,seq]) as float32,
    with seq = pad_to or len(ids)."""
    n = len(ids)
    seq = pad_to or n
    input_ids = np.zeros((1, seq), dtype=np.int64)
    input_ids[0, :n] = ids
    mask = np.zeros((1, seq), dtype=np.int64)
    mask[0, :n] = 1
    tt = np.zeros((1, seq), dtype=np.int64)
    outs = sess.run(["last_hidden_state", *attn_names], {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": tt})
    hidden = outs[0][0]
    attn = np.stack([o[0] for o in outs[1:]])
    assert attn.shape == (NUM_LAYERS, NUM_HEADS, seq, seq), attn.shape
    return hidden, attn


def mean_pool(hidden: np.ndarray, n: int) -> np.ndarray:
    return hidden[:n].astype(np.float64).mean(axis=0)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def load_tokenizer(path: Path = TOKENIZER, truncate: bool = True):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    if truncate:
        tok.enable_truncation(MAX_SEQ)
    else:
        tok.no_truncation()
    return tok


def dequantized_f32_form(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The f32 form of an onnxruntime quantize_dynamic model, as attnprompt makes it at load
    (src/dequantize.rs), written here independently with onnx and numpy: every chain
    DynamicQuantizeLinear -> MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast -> Mul(., x_scale * W_scale)
    becomes MatMul(x, (W_q - W_zp) * W_scale). Returns the new model and the number of chains."""
    from onnx import numpy_helper

    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    consumers = defaultdict(list)
    for n in g.node:
        for i in n.input:
            consumers[i].append(n)
    replace, drop, new_inits = {}, set(), []
    for n in g.node:
        if n.op_type != "MatMulInteger":
            continue
        x_q, w_q, x_zp, w_zp = list(n.input) + [""] * (4 - len(n.input))
        dq = producer[x_q]
        assert dq.op_type == "DynamicQuantizeLinear" and dq.output[0] == x_q, n.name
        (cast,) = consumers[n.output[0]]
        (mul,) = consumers[cast.output[0]]
        assert cast.op_type == "Cast" and mul.op_type == "Mul", n.name
        (scales,) = [i for i in mul.input if i != cast.output[0]]
        smul = producer[scales]
        assert smul.op_type == "Mul" and dq.output[1] in smul.input, n.name
        (w_scale,) = [i for i in smul.input if i != dq.output[1]]
        w = numpy_helper.to_array(inits[w_q]).astype(np.float32)
        zp = numpy_helper.to_array(inits[w_zp]).astype(np.float32) if w_zp else np.float32(0)
        scale = numpy_helper.to_array(inits[w_scale]).astype(np.float32)
        name = f"{w_q}_f32"
        new_inits.append(numpy_helper.from_array(((w - zp) * scale).astype(np.float32), name))
        replace[n.name] = onnx.helper.make_node("MatMul", [dq.input[0], name], [mul.output[0]], name=f"{n.name}_f32")
        drop.update({cast.name, mul.name, smul.name})
    nodes = [replace.get(n.name, n) for n in g.node if n.name not in drop]
    read = {i for n in nodes for i in n.input}
    nodes = [n for n in nodes if n.op_type != "DynamicQuantizeLinear" or any(o in read for o in n.output)]
    read = {i for n in nodes for i in n.input}
    del g.node[:]
    g.node.extend(nodes)
    kept = [t for t in g.initializer if t.name in read]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    onnx.checker.check_model(m)
    return m, len(replace)


def exact_int8_form(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """`model` with every MatMulInteger computed exactly: its operands cast to float64 (every int8
    product and every sum of up to 2^25 of them is exact there), zero points subtracted, MatMul,
    cast back to int32. The rest of the int8 graph (DynamicQuantizeLinear, the scales) is
    onnxruntime's own. This makes the int8 reference independent of the CPU: onnxruntime's
    MatMulInteger kernel on AVX2 (U8S8, VPMADDUBSW) saturates 16-bit sums of pairs of products,
    which moved layer-0 attention by 0.03 on an AVX2-only EPYC against its exact result on an
    AVX-512 VNNI Xeon. Returns the new model and the number of MatMulInteger nodes."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    nodes, count = [], 0
    dbl, i32 = onnx.TensorProto.DOUBLE, onnx.TensorProto.INT32
    for n in g.node:
        if n.op_type != "MatMulInteger":
            nodes.append(n)
            continue
        count += 1
        a, b, a_zp, b_zp = list(n.input) + [""] * (4 - len(n.input))
        p = f"{n.name}_exact"
        ops = [onnx.helper.make_node("Cast", [a], [f"{p}_a"], to=dbl),
               onnx.helper.make_node("Cast", [b], [f"{p}_b"], to=dbl)]
        a_in, b_in = f"{p}_a", f"{p}_b"
        for zp, x, tag in ((a_zp, a_in, "a"), (b_zp, b_in, "b")):
            if zp:
                ops.append(onnx.helper.make_node("Cast", [zp], [f"{p}_{tag}zp"], to=dbl))
                ops.append(onnx.helper.make_node("Sub", [x, f"{p}_{tag}zp"], [f"{p}_{tag}c"]))
                if tag == "a":
                    a_in = f"{p}_ac"
                else:
                    b_in = f"{p}_bc"
        ops.append(onnx.helper.make_node("MatMul", [a_in, b_in], [f"{p}_mm"]))
        ops.append(onnx.helper.make_node("Cast", [f"{p}_mm"], [n.output[0]], to=i32))
        nodes.extend(ops)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    return m, count
