"""`lmtailor quantize`: ONNX int8 and int4 (on fused graphs) and PyTorch int8, each close to the fp32 model, smaller,
loadable by `load_task_model`, and refusing inputs it cannot quantise without leaving anything behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import helper
from transformers import AutoConfig, AutoModelForTokenClassification

from lmtailor.compress.quantize import QuantizeConfig, run_quantize, torch_int8
from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.export import ExportConfig, OnnxTaskModel, run_export
from lmtailor.outputs import read_manifest
from lmtailor.tasks.evaluate import predict
from lmtailor.tasks.inference import load_task_model, predict_ner, raw_examples

TEXTS = [
    "The licensee shall indemnify the licensor against all claims.",
    "Either party may terminate this agreement upon written notice.",
    "This agreement is governed by the laws of the State of New York.",
    "Confidential information shall not be disclosed to any third party.",
]
# Dynamic int8 on a random 2-layer model: logits move by ~1e-2 (measured 0.004-0.03); a bound 3-5x above that
# still catches a broken quantisation (wrong scales or swapped weights move them by the logits' own size, ~0.1-1).
LOGIT_TOLERANCE = 0.1


def _eval_file(tmp_path: Path, task: str) -> Path:
    if task == "cls":
        path = tmp_path / "eval.jsonl"
        rows = zip(TEXTS * 3, ["law", "term", "other", "law"] * 3, strict=True)
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    else:
        path = tmp_path / "eval.tsv"
        sentence = ["the\tO", "licensee\tB-Party", "shall\tO", "indemnify\tO", "the\tO", "licensor\tB-Party", ""]
        path.write_text("\n".join(sentence * 6), encoding="utf-8")
    return path


def _quantize(model: Path, out: Path, **kw) -> Path:
    return run_quantize(QuantizeConfig.build(model=model, out_dir=out, show_progress=False, **kw))


def _export(model: Path, out: Path) -> Path:
    return run_export(ExportConfig.build(model=model, out_dir=out, show_progress=False))


def _batch(tokenizer, size: int, length: int) -> dict[str, torch.Tensor]:
    return dict(tokenizer(TEXTS[:size], truncation=True, max_length=length, padding="longest", return_tensors="pt"))


@pytest.mark.parametrize("task", ["cls", "ner"])
def test_int8_is_close_smaller_and_loads(task, cls_model, ner_model, tmp_path):
    exported = _export(cls_model if task == "cls" else ner_model, tmp_path / "onnx")
    assert "Attention" in read_manifest(exported)["metrics"]["fused_operators"]
    out = _quantize(exported, tmp_path / "int8", eval=_eval_file(tmp_path, task))
    metrics = read_manifest(out)["metrics"]
    # The fused graph is quantised throughout: attention, the embedding tables, the dense layers.
    assert {"QAttention", "QEmbedLayerNormalization", "MatMulInteger"} <= set(metrics["quantized_operators"])
    assert metrics["size_ratio"] < 0.5 and metrics["bytes_after"] == (out / "model.onnx").stat().st_size
    assert metrics["probe"]["max_abs_diff"] <= LOGIT_TOLERANCE and metrics["probe"]["argmax_agreement"] >= 0.9
    report = metrics["eval"]
    assert report["metric"] == ("accuracy" if task == "cls" else "entity_f1") and report["positions"] in (
        "features",
        "tokens",
    )
    assert report["example_agreement"] >= 0.75 and report["position_agreement"] >= 0.9
    assert abs(report["delta"] - (report["quantized"] - report["fp32"])) < 1e-6
    for name in ("eval_fp32.json", "eval_quantized.json", "predictions_quantized.jsonl", "config.json", "task.json"):
        assert (out / name).is_file(), name

    quantized, tokenizer, spec = load_task_model(out)
    fp32, _, _ = load_task_model(exported)
    assert isinstance(quantized, OnnxTaskModel) and spec.task == task
    batch = _batch(tokenizer, 3, 20)
    assert float((quantized(**batch).logits - fp32(**batch).logits).abs().max()) <= LOGIT_TOLERANCE
    assert len(list(predict(out, TEXTS[:2]))) == 2


def test_int4_runs_shrinks_and_reports_fp32_embeddings(cls_model, tmp_path):
    exported = _export(cls_model, tmp_path / "onnx")
    out = _quantize(exported, tmp_path / "int4", method="int4")
    metrics = read_manifest(out)["metrics"]
    assert metrics["quantized_operators"]["MatMulNBits"] == 6  # Q, K, V are inside the fused Attention
    assert {"QAttention", "QEmbedLayerNormalization"} <= set(metrics["quantized_operators"])
    assert metrics["size_ratio"] < 0.5 and metrics["probe"]["max_abs_diff"] <= LOGIT_TOLERANCE
    # Without the int8 pass, what 4-bit cannot take stays fp32, and the report shows the embeddings among it.
    plain = _quantize(exported, tmp_path / "int4-only", method="int4", int4_others="fp32")
    plain_metrics = read_manifest(plain)["metrics"]
    assert "QEmbedLayerNormalization" not in plain_metrics["quantized_operators"]
    assert plain_metrics["bytes_after"] > metrics["bytes_after"]
    vocab = AutoConfig.from_pretrained(str(cls_model)).vocab_size
    assert any(b == vocab * 32 * 4 for b in plain_metrics["largest_float_weights"].values())  # word embeddings
    model, tokenizer, _ = load_task_model(out)
    assert model(**_batch(tokenizer, 2, 12)).logits.shape == (2, 3)


def test_torch_int8_round_trip(ner_model, tmp_path):
    out = _quantize(ner_model, tmp_path / "torch-int8", method="torch-int8", eval=_eval_file(tmp_path, "ner"))
    metrics = read_manifest(out)["metrics"]
    assert json.loads((out / "task.json").read_text())["torch_int8"] is True
    assert metrics["state_bytes_quantized"] < metrics["state_bytes_fp32"] and metrics["bytes_after"] > 0
    assert metrics["probe"]["max_abs_diff"] <= LOGIT_TOLERANCE and metrics["eval"]["position_agreement"] >= 0.9

    loaded, tokenizer, spec = load_task_model(out)
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized.dynamic") for m in loaded.modules())
    fp32, _, _ = load_task_model(ner_model)
    fresh = torch_int8(fp32)  # as right after quantisation
    batch = _batch(tokenizer, 3, 20)
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, fresh(**batch).logits)
    examples = raw_examples(TEXTS, spec.units)
    assert predict_ner(loaded, tokenizer, spec, examples)[0] == predict_ner(fresh, tokenizer, spec, examples)[0]
    # The weights on disk are the fp32 ones, so plain transformers still loads the folder.
    assert AutoModelForTokenClassification.from_pretrained(str(out)).num_labels == 3


def _random_onnx(path: Path) -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(path))


def test_quantize_refuses_bad_inputs_and_leaves_nothing(cls_model, tmp_path):
    exported = _export(cls_model, tmp_path / "onnx")
    out = tmp_path / "out"
    with pytest.raises(InputNotFoundError, match="nowhere"):
        _quantize(tmp_path / "nowhere", out)
    with pytest.raises(InputFormatError, match="lmtailor export"):
        _quantize(cls_model, out)  # a PyTorch folder needs exporting first (or torch-int8)
    with pytest.raises(InputFormatError, match="ONNX export"):
        _quantize(exported, out, method="torch-int8")
    with pytest.raises(ConfigError, match="block_size"):
        QuantizeConfig.build(model=exported, out_dir=out, method="int4", block_size=48)
    # An ONNX file lmtailor did not write: no manifest of stage export beside it.
    stranger = tmp_path / "stranger"
    stranger.mkdir()
    _random_onnx(stranger / "model.onnx")
    with pytest.raises(InputFormatError, match="not written by `lmtailor export`"):
        _quantize(stranger, out)
    # An export whose model.onnx is corrupt, and one whose graph is not a task model.
    broken = tmp_path / "broken"
    shutil.copytree(exported, broken)
    (broken / "model.onnx").write_bytes(b"\x08\x07" + bytes(range(256)))
    with pytest.raises(InputFormatError, match="not a readable ONNX model"):
        _quantize(broken, out)
    _random_onnx(broken / "model.onnx")
    with pytest.raises(InputFormatError, match="input_ids -> logits"):
        _quantize(broken, out)
    done = _quantize(exported, tmp_path / "int8")
    with pytest.raises(InputFormatError, match="already quantised"):
        _quantize(done, out)
    assert not [p for p in tmp_path.iterdir() if p.name == "out" or p.name.startswith(".out.")]
    assert np.isfinite(read_manifest(done)["metrics"]["probe"]["max_abs_diff"])
