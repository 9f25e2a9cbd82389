"""`lmtailor export` and the ONNX Runtime task model: parity with PyTorch, dynamic shapes, the same predictions
through `load_task_model`/`evaluate`/`predict`, and clear refusals that leave nothing behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import helper, numpy_helper
from transformers import AutoConfig, AutoTokenizer

import lmtailor.export.onnx as onnx_export
from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError, VerificationError
from lmtailor.export import ExportConfig, OnnxTaskModel, make_session, run_export
from lmtailor.outputs import read_manifest
from lmtailor.tasks.evaluate import EvaluateConfig, predict, run_evaluate
from lmtailor.tasks.inference import TaskSpec, load_task_model, predict_cls, predict_ner, raw_examples

TEXTS = [
    "The licensee shall indemnify the licensor against all claims.",
    "Either party may terminate.",
    "This agreement is governed by the laws of the State of New York, and confidential information shall not be "
    "disclosed to any third party.",
    "Zebras",
]


def _export(model: Path, out: Path, **kw) -> Path:
    return run_export(ExportConfig.build(model=model, out_dir=out, show_progress=False, **kw))


def _leftovers(tmp_path: Path, name: str) -> list[Path]:
    return [p for p in tmp_path.iterdir() if p.name == name or p.name.startswith(f".{name}.")]


def test_export_cls_parity_and_same_predictions(cls_model, tmp_path):
    out = _export(cls_model, tmp_path / "onnx")
    manifest = read_manifest(out)
    metrics = manifest["metrics"]
    assert manifest["stage"] == "export" and metrics["parity_max_abs_diff"] <= 1e-4
    assert metrics["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    assert metrics["fused_operators"]["Attention"] == 2 and metrics["onnx_bytes"] == (out / "model.onnx").stat().st_size
    written = {p.name for p in out.iterdir()}
    assert {"model.onnx", "config.json", "tokenizer.json", "task.json", "lmtailor.json"} <= written
    assert not list(out.glob("*.safetensors"))
    assert AutoConfig.from_pretrained(str(out)).id2label[0] == "law" and AutoTokenizer.from_pretrained(str(out)).is_fast

    onnx_model, tokenizer, spec = load_task_model(out)
    torch_model, _, _ = load_task_model(cls_model)
    assert isinstance(onnx_model, OnnxTaskModel) and spec.task == "cls" and onnx_model.config.num_labels == 3
    # Parity recomputed here at shapes the export's probes did not use: dynamic batch and sequence axes, padding,
    # and a second segment.
    for texts, pairs, length in ((TEXTS[:1], None, 5), (TEXTS[:3], TEXTS[1:4], 23)):
        batch = tokenizer(texts, pairs, truncation=True, max_length=length, padding="max_length", return_tensors="pt")
        with torch.no_grad():
            expected = torch_model(**batch).logits  # [B, 3]
        got = onnx_model(**batch).logits
        assert got.shape == expected.shape == (len(texts), 3) and got.dtype == torch.float32
        assert float((got - expected).abs().max()) <= 1e-4
    probs_onnx, _ = predict_cls(onnx_model, tokenizer, spec, TEXTS, batch_size=3)
    probs_torch, _ = predict_cls(torch_model, tokenizer, spec, TEXTS, batch_size=3)
    np.testing.assert_allclose(probs_onnx, probs_torch, atol=1e-5)
    assert (probs_onnx.argmax(1) == probs_torch.argmax(1)).all()

    # `evaluate` and `predict` take the export folder unchanged and agree with the PyTorch folder.
    data = tmp_path / "dev.jsonl"
    rows = zip(TEXTS, ["law", "term", "other", "law"], strict=True)
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    scores = {}
    for name, folder in (("onnx", out), ("torch", cls_model)):
        ev = run_evaluate(EvaluateConfig.build(model=folder, data=data, out_dir=tmp_path / f"ev-{name}",
                                               show_progress=False))  # fmt: skip
        scores[name] = json.loads((ev / "eval_test.json").read_text())["accuracy"]
    assert scores["onnx"] == scores["torch"]
    [row] = list(predict(out, [TEXTS[0]]))
    assert row["label"] == onnx_model.config.id2label[int(probs_torch[0].argmax())]


def test_export_ner_token_logits_and_tags(ner_model, tmp_path):
    out = _export(ner_model, tmp_path / "onnx-ner")
    metrics = read_manifest(out)["metrics"]
    assert metrics["task"] == "ner" and metrics["inputs"] == ["input_ids", "attention_mask"]
    assert metrics["parity_max_abs_diff"] <= 1e-4

    onnx_model, tokenizer, spec = load_task_model(out)
    torch_model, _, _ = load_task_model(ner_model)
    for size, length in ((1, 7), (3, 19)):
        batch = tokenizer(TEXTS[:size], truncation=True, max_length=length, padding="longest", return_tensors="pt")
        with torch.no_grad():
            expected = torch_model(**batch).logits  # [B, T, 3]
        got = onnx_model(**batch).logits
        assert got.shape == expected.shape and got.shape[0] == size
        real = batch["attention_mask"].bool()
        assert float((got[real] - expected[real]).abs().max()) <= 1e-4
    examples = raw_examples(TEXTS, spec.units)
    tags_onnx, _, _ = predict_ner(onnx_model, tokenizer, spec, examples, batch_size=2)
    tags_torch, _, _ = predict_ner(torch_model, tokenizer, spec, examples, batch_size=2)
    assert tags_onnx == tags_torch and len(tags_onnx[0]) == len(examples[0].units)


@pytest.mark.slow
def test_dynamo_exporter_also_passes_parity(cls_model, tmp_path):
    out = _export(cls_model, tmp_path / "onnx-dynamo", exporter="dynamo")
    metrics = read_manifest(out)["metrics"]
    assert metrics["exporter"] == "dynamo" and metrics["opset"] == 18 and metrics["parity_max_abs_diff"] <= 1e-4
    assert not list(out.glob("*.data"))  # one self-contained file


def _tamper(path: Path, hf_config) -> dict:
    """Stands in for the optimiser: shifts every weight a little, as a broken graph rewrite would."""
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(1e-2), init.name))
    onnx.save(model, str(path))
    return {}


def test_export_refuses_bad_inputs_and_leaves_nothing(cls_model, tmp_path, monkeypatch):
    with pytest.raises(InputNotFoundError, match="nowhere"):
        _export(tmp_path / "nowhere", tmp_path / "out")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ConfigError, match="onnxruntime-gpu"):
            _export(cls_model, tmp_path / "out", provider="cuda")
    with pytest.raises(ConfigError, match="opset"):
        ExportConfig.build(model=cls_model, out_dir=tmp_path / "out", exporter="dynamo", opset=17)
    # A graph that no longer computes the model's function fails the parity check.
    monkeypatch.setattr(onnx_export, "_optimize", _tamper)
    with pytest.raises(VerificationError, match="differs from PyTorch"):
        _export(cls_model, tmp_path / "out")
    assert not _leftovers(tmp_path, "out")
    monkeypatch.undo()
    out = _export(cls_model, tmp_path / "out", optimize=False)
    assert not read_manifest(out)["metrics"]["optimized"]
    with pytest.raises(InputFormatError, match="already an ONNX export"):
        _export(out, tmp_path / "again")
    quantized = shutil.copytree(cls_model, tmp_path / "torch-int8")
    TaskSpec(task="cls", max_length=32, torch_int8=True).save(quantized)
    with pytest.raises(InputFormatError, match="torch-int8"):
        _export(quantized, tmp_path / "again")
    assert not _leftovers(tmp_path, "again")


def test_onnx_task_model_refuses_bad_files(cls_model, tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "task.json"):
        shutil.copy(cls_model / name, folder / name)
    (folder / "model.onnx").write_bytes(b"\x08\x07not an onnx model at all")
    with pytest.raises(InputFormatError, match="cannot load"):
        load_task_model(folder)
    # A valid ONNX file that is not a task model.
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(folder / "model.onnx"))
    with pytest.raises(InputFormatError, match="input_ids -> logits"):
        OnnxTaskModel(folder)
    with pytest.raises(InputNotFoundError, match="missing"):
        make_session(tmp_path / "missing.onnx")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ConfigError, match="onnxruntime-gpu"):
            OnnxTaskModel(folder, provider="cuda")
