"""`lmtailor prune` on a tiny 4-layer classifier: known answers, parity, a loadable smaller model, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtailor.compress.prune import PruneConfig, choose_layers, run_prune
from lmtailor.errors import ConfigError, InputNotFoundError

TEXTS = ["The licensee shall indemnify the licensor.", "This agreement is governed by the laws of New York.",
         "Either party may terminate this agreement upon written notice."]  # fmt: skip


def _data(tmp_path: Path) -> Path:
    rows = [{"text": t, "label": lab} for t, lab in zip(TEXTS, ["indemnity", "law", "termination"], strict=True)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * 6), encoding="utf-8")
    return path


def _logits(folder: Path) -> torch.Tensor:
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(**tok(TEXTS, padding=True, return_tensors="pt")).logits


def _prune(tmp_path: Path, model: Path, name: str = "pruned", **kw) -> Path:
    cfg = PruneConfig.build(model=model, out_dir=tmp_path / name, show_progress=False, batches=3, batch_size=6, **kw)
    return run_prune(cfg)


@pytest.mark.parametrize(
    ("n", "keep", "how", "expected"),
    [(6, 3, "every_other", [1, 3, 5]), (12, 4, "every_other", [2, 5, 8, 11]), (6, 2, "bottom", [0, 1]),
     (6, 2, "top", [4, 5]), (6, 6, "every_other", [0, 1, 2, 3, 4, 5])],
)  # fmt: skip
def test_layer_patterns(n, keep, how, expected):
    assert choose_layers(n, keep, how) == expected


def test_layer_choice_by_importance_keeps_the_largest():
    assert choose_layers(4, 2, "importance", np.array([0.1, 5.0, 0.2, 3.0])) == [1, 3]


def test_keeping_everything_leaves_outputs_unchanged(tmp_path, clause_classifier):
    out = _prune(tmp_path, clause_classifier, data=_data(tmp_path), ffn_size=64)
    assert torch.equal(_logits(out), _logits(clause_classifier))


def test_dead_ffn_neurons_are_the_ones_removed(tmp_path, clause_classifier):
    """Known answer: neurons with all-zero weights have zero Taylor importance, so pruning to the live count removes
    exactly them, and the outputs do not change (GELU(0) = 0 contributed nothing)."""
    model = AutoModelForSequenceClassification.from_pretrained(str(clause_classifier))
    dead = torch.arange(0, 64, 4)  # 16 of 64 neurons in every layer
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            layer.intermediate.dense.weight[dead] = 0
            layer.intermediate.dense.bias[dead] = 0
            layer.output.dense.weight[:, dead] = 0
    model.save_pretrained(str(clause_classifier))
    out = _prune(tmp_path, clause_classifier, data=_data(tmp_path), ffn_size=48)
    pruned = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert pruned.config.intermediate_size == 48
    live = [i for i in range(64) if i % 4]
    for old, new in zip(model.bert.encoder.layer, pruned.bert.encoder.layer, strict=True):
        assert torch.equal(new.intermediate.dense.weight, old.intermediate.dense.weight[live])
        assert torch.equal(new.output.dense.weight, old.output.dense.weight[:, live])
    assert torch.allclose(_logits(out), _logits(clause_classifier), atol=1e-5)


def test_layers_and_ffn_make_a_smaller_loadable_model(tmp_path, clause_classifier):
    original = AutoModelForSequenceClassification.from_pretrained(str(clause_classifier))
    out = _prune(tmp_path, clause_classifier, data=_data(tmp_path), layers=2, ffn_size=16, iterations=2)
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert (model.config.num_hidden_layers, model.config.intermediate_size) == (2, 16)
    assert model.config.id2label == original.config.id2label
    report = json.loads((out / "prune_report.json").read_text())
    assert report["kept_layers"] == [1, 3]
    assert report["params_after"] == sum(p.numel() for p in model.parameters()) < report["params_before"]
    assert len(report["head_importance"]) == 4 and len(report["head_importance"][0]) == 2
    # the kept layers' attention is the original layers 1 and 3, untouched
    for new, old in zip(model.bert.encoder.layer, [original.bert.encoder.layer[i] for i in (1, 3)], strict=True):
        assert torch.equal(new.attention.self.query.weight, old.attention.self.query.weight)
    assert (out / "task.json").is_file() and json.loads((out / "lmtailor.json").read_text())["stage"] == "prune"
    assert _logits(out).shape == (3, 3)


def test_layers_by_pattern_need_no_data(tmp_path, clause_classifier):
    out = _prune(tmp_path, clause_classifier, keep_layers=[0, 2])
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    original = AutoModelForSequenceClassification.from_pretrained(str(clause_classifier))
    new, old = model.bert.encoder.layer[1], original.bert.encoder.layer[2]
    assert torch.equal(new.output.dense.weight, old.output.dense.weight)


@pytest.mark.parametrize(
    ("kw", "match"),
    [({"layers": 5}, "only 4 layers"), ({"ffn_size": 65, "with_data": True}, "only 64 neurons"),
     ({"keep_layers": [0, 4]}, "0..3"), ({"keep_layers": [1, 1]}, "distinct"), ({"ffn_size": 8}, "labelled data")],
)  # fmt: skip
def test_impossible_requests_fail_before_writing(tmp_path, clause_classifier, kw, match):
    if kw.pop("with_data", False):
        kw["data"] = _data(tmp_path)
    with pytest.raises(ConfigError, match=match):
        _prune(tmp_path, clause_classifier, **kw)
    assert not (tmp_path / "pruned").exists()


def test_missing_model_is_named(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope"):
        _prune(tmp_path, tmp_path / "nope", layers=1)
