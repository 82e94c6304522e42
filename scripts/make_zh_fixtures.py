"""tests/fixtures/zh-segmentation.json: Python jieba (an independent implementation, pinned in
scripts/requirements-ref.txt) on models/jieba/dict.txt, part-of-speech mode with HMM, on
Chinese and mixed sentences. tests/it/chinese.rs checks that jieba-rs, built without its
default features and loading the same dictionary, gives the same words and tags.
Run through scripts/make-fixtures (the reference venv)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ref_common as rc  # noqa: E402

SENTENCES = [
    "人工智能大模型的提示词知识迁移技术可以提高模型在目标任务上的性能。",
    "我喜欢阅读",
    "BERT模型在树莓派上运行",
    "边缘设备的内存只有4GB，推理延迟要低于100毫秒。",
    "量化把32位浮点权重变成8位整数，模型体积缩小到原来的四分之一。",
    "北京、上海和深圳的数据中心正在建设新的算力平台。",
    "今天天气很好！我们去公园散步吧？",
    "「深度学习」（deep learning）是机器学习的一个分支；它使用多层神经网络。",
    "Jetson Orin Nano 支持 CUDA 和 TensorRT，适合在本地部署视觉模型。",
    "樹莓派可以離線運行語言模型，注意力機制幫助我們找到關鍵詞。",
]
OUT = rc.REPO / "tests" / "fixtures" / "zh-segmentation.json"


def main() -> int:
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(60)
    dict_path = rc.REPO / "models" / "jieba" / "dict.txt"
    jieba.set_dictionary(str(dict_path))
    cases = []
    for text in SENTENCES:
        words, at = [], 0
        for pair in pseg.cut(text, HMM=True):
            start = len(text[:at].encode("utf-8"))
            end = start + len(pair.word.encode("utf-8"))
            words.append([pair.word, pair.flag, start, end])
            at += len(pair.word)
        if "".join(w[0] for w in words) != text:
            raise SystemExit(f"jieba did not cover {text!r}")
        cases.append({"text": text, "words": words})
    OUT.write_text(json.dumps({
        "made_by": f"scripts/make_zh_fixtures.py (jieba {jieba.__version__}, posseg, HMM) on models/jieba/dict.txt",
        "dict_sha256": rc.sha256_file(dict_path),
        "cases": cases,
    }, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUT} ({len(cases)} sentences)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
