"""`run_sparsify` end to end on a tiny classifier: saved folders load, zeros are counted, sizes are honest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtailor.compress.unstructured import DENSE_NOTE, SparsifyConfig, run_sparsify
from lmtailor.errors import ConfigError, InputNotFoundError
from lmtailor.outputs import read_manifest

from .conftest import TEXT


def _eval_file(tmp_path: Path) -> Path:
    labels = ["law", "term", "other", "law", "term"]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": labels[i % 5]}) + "\n" for i, t in enumerate(TEXT[:15])))
    return path


def _logits(folder: Path) -> torch.Tensor:
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        return model(**tok(TEXT[:5], padding=True, return_tensors="pt")).logits


def test_curve_saves_loadable_models_with_counted_zeros(tiny_classifier: Path, tmp_path: Path) -> None:
    out = run_sparsify(SparsifyConfig(model=tiny_classifier, sparsity=[0.0, 0.3, 0.6, 0.9], eval=_eval_file(tmp_path),
                                      out_dir=tmp_path / "sparse", show_progress=False))  # fmt: skip
    curve = json.loads((out / "sparsity_curve.json").read_text())
    points = curve["points"]
    original = AutoModelForSequenceClassification.from_pretrained(str(tiny_classifier))
    assert [p["sparsity_requested"] for p in points] == [0.0, 0.3, 0.6, 0.9]
    zeros = [p["zeros"] for p in points]
    assert zeros == sorted(zeros) and zeros[0] < zeros[-1]
    for p in points:
        assert abs(p["sparsity_achieved"] - p["sparsity_requested"]) < 1e-3
        assert p["metric"] == "accuracy" and 0.0 <= p["value"] <= 1.0
        # Honest size: the dense safetensors file is exactly as large as the input's.
        assert p["weights_mb_on_disk"] == curve["input_weights_mb_on_disk"]
        folder = out / f"sparsity-{p['sparsity_requested']:g}"
        assert (folder / "eval_test.json").is_file()
        model = AutoModelForSequenceClassification.from_pretrained(str(folder))
        enc = model.bert.encoder.layer[0].intermediate.dense.weight
        assert abs(float((enc == 0).float().mean()) - p["sparsity_requested"]) < 0.1
        # Embeddings and classifier left as they were.
        assert torch.equal(
            model.bert.embeddings.word_embeddings.weight, original.bert.embeddings.word_embeddings.weight
        )
        assert torch.equal(model.classifier.weight, original.classifier.weight)
    assert curve["dense_metric"]["value"] == points[0]["value"]
    manifest = read_manifest(out)
    assert manifest["metrics"]["note"] == DENSE_NOTE and manifest["metrics"]["size_changed"] is False
    assert torch.allclose(_logits(tiny_classifier), _logits(out / "sparsity-0"))


def test_single_sparsity_output_is_the_model_folder(tiny_classifier: Path, tmp_path: Path) -> None:
    out = run_sparsify(SparsifyConfig(model=tiny_classifier, sparsity=0.5, scope="per_layer",
                                      out_dir=tmp_path / "s50", show_progress=False))  # fmt: skip
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    for layer in model.bert.encoder.layer:
        w = layer.output.dense.weight
        assert int((w == 0).sum()) == round(0.5 * w.numel())  # per-layer: the same fraction in each
    assert AutoTokenizer.from_pretrained(str(out)).is_fast
    assert read_manifest(out)["metrics"]["sparsity_achieved"] == {"0.5": 0.5}


@pytest.mark.parametrize("bad", [1.0, 0.995, -0.1, []])
def test_bad_sparsity_is_a_config_error(bad: object, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sparsity"):
        SparsifyConfig.build(model=tmp_path, sparsity=bad, out_dir=tmp_path / "o")


def test_missing_model_errors_before_writing(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match="does not exist"):
        run_sparsify(SparsifyConfig(model=tmp_path / "nope", sparsity=0.5, out_dir=tmp_path / "o"))
    assert not (tmp_path / "o").exists()
