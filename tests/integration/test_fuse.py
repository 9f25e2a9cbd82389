"""`lmtailor fuse`: the shipped folder answers as its parts fused by hand would, in every form and every door
(evaluate, predict, serve, the report); the stages that would drop the baseline refuse the folder."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lmtailor.baseline.config import BaselineConfig, FuseConfig
from lmtailor.baseline.fuse import run_fuse
from lmtailor.baseline.stage import run_baseline
from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.models.fused import baseline_margins, fuse, load_baseline, pack_int8, unpack_int8
from lmtailor.tasks.inference import load_task_model, predict_cls

WORDS = {"indemnity": "indemnify hold harmless", "law": "governed laws state", "termination": "terminate notice end"}
FILLER = ["the", "party", "shall", "this", "agreement", "any", "of"]


def _cls_file(path: Path, n: int, seed: int, noisy: float = 0.0) -> Path:
    """Texts of a label's words plus filler; with `noisy`, that share of texts carries another label's words only."""
    rng, rows = random.Random(seed), []
    for _ in range(n):
        label = rng.choice(sorted(WORDS))
        shown = rng.choice(sorted(WORDS)) if rng.random() < noisy else label
        rows.append({"text": f"{WORDS[shown]} {' '.join(rng.sample(FILLER, 3))}", "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def parts(tmp_path_factory, clause_classifier_factory):
    """An (untrained) clause classifier, a baseline fitted on the task, and dev/test files."""
    root = tmp_path_factory.mktemp("fuse")
    model = clause_classifier_factory(root / "model", layers=2)
    train, dev, test = (_cls_file(root / f"{n}.jsonl", 60, s, 0.2) for s, n in enumerate(("train", "dev", "test")))
    baseline = run_baseline(BaselineConfig.build(task="cls", train=train, dev=dev, out_dir=root / "bl", c_grid=[1.0],
                                                 show_progress=False))  # fmt: skip
    return SimpleNamespace(model=model, baseline=baseline, dev=dev, test=test)


def _fuse(parts, out: Path, model: Path | None = None, **kw) -> Path:
    return run_fuse(FuseConfig.build(model=model or parts.model, baseline=parts.baseline, dev=parts.dev,
                                     test=parts.test, out_dir=out, show_progress=False, **kw))  # fmt: skip


def _by_hand(model_dir: Path, baseline: Path, texts: list[str], weight: float, temperature: float) -> np.ndarray:
    model, tok, spec = load_task_model(model_dir)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    probs, _ = predict_cls(model, tok, spec, texts)
    margins = baseline_margins(unpack_int8(pack_int8(load_baseline(baseline))), texts, names)
    return np.exp(fuse(np.log(np.clip(probs, 1e-12, None)), margins, weight, temperature))


def test_the_fused_folder_answers_as_its_parts_fused_by_hand(parts, tmp_path):
    from transformers import AutoModelForSequenceClassification

    from lmtailor.serve.engine import load_model
    from lmtailor.tasks.config import EvaluateConfig
    from lmtailor.tasks.evaluate import predict, run_evaluate

    model, baseline, test = parts.model, parts.baseline, parts.test
    out = _fuse(parts, tmp_path / "fused")
    manifest = json.loads((out / "lmtailor.json").read_text())
    chosen, spec = manifest["metrics"]["fusion"], json.loads((out / "task.json").read_text())
    assert spec["fusion"] == {"baseline": "baseline.joblib", "weight": chosen["weight"],
                              "temperature": chosen["temperature"]}  # fmt: skip
    # The grid holds weight 1 (the model alone) and 0 (the baseline alone): the pair is at least as good as both.
    assert chosen["dev_fused"] >= max(chosen["dev_model"], chosen["dev_baseline"])
    assert chosen["dev_fused"] > chosen["dev_model"] and chosen["weight"] < 1  # an untrained model gains
    AutoModelForSequenceClassification.from_pretrained(str(out))  # still an HF folder
    texts = [json.loads(line)["text"] for line in test.read_text().splitlines()]
    gold = [json.loads(line)["label"] for line in test.read_text().splitlines()]
    expected = _by_hand(model, baseline, texts, chosen["weight"], chosen["temperature"])
    names = [spec_name for spec_name in json.loads((out / "config.json").read_text())["id2label"].values()]
    predicted = [names[i] for i in expected.argmax(1)]
    lines = [json.loads(line) for line in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert [r["predicted"] for r in lines] == predicted
    accuracy = float(np.mean([p == g for p, g in zip(predicted, gold, strict=True)]))
    assert manifest["metrics"]["test"]["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert manifest["metrics"]["test"]["baseline_ms_per_example"] > 0
    assert 0 < manifest["metrics"]["baseline"]["p50_ms_batch1"] < 1e3
    records = list(predict(out, texts[:5]))
    assert [r["label"] for r in records] == predicted[:5]
    assert [r["score"] for r in records] == pytest.approx(expected[:5].max(1), abs=1e-4)
    served = load_model("pair", out)
    assert [r["label"] for r in served.infer(texts[:5])] == predicted[:5]
    assert served.card["fusion"] == {"weight": chosen["weight"], "temperature": chosen["temperature"]}
    assert served.card["size_bytes"] > (out / "model.safetensors").stat().st_size  # the baseline counts
    ev = run_evaluate(EvaluateConfig.build(model=out, data=test, out_dir=tmp_path / "ev", show_progress=False))
    assert json.loads((ev / "eval_test.json").read_text())["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    # The baseline ships in int8 by default, and the weights are chosen with it; "full" ships the fitted file as is.
    stored = manifest["metrics"]["baseline"]
    assert stored["precision"] == "int8" and stored["dev_agreement"] > 0.9 and stored["dev_max_margin_change"] > 0
    full = _fuse(parts, tmp_path / "full", baseline_precision="full")
    assert (full / "baseline.joblib").read_bytes() == (baseline / "model.joblib").read_bytes()


def test_an_onnx_model_fuses_like_its_pytorch_source(parts, tmp_path):
    from lmtailor.export.config import ExportConfig
    from lmtailor.export.onnx import run_export

    model = parts.model
    onnx = run_export(ExportConfig.build(model=model, out_dir=tmp_path / "onnx", show_progress=False))
    torch_pair, onnx_pair = _fuse(parts, tmp_path / "f-torch"), _fuse(parts, tmp_path / "f-onnx", model=onnx)
    assert (onnx_pair / "model.onnx").is_file() and not list(onnx_pair.glob("*.safetensors"))
    for name in ("dev", "test"):
        a, b = ((p / f"predictions_{name}.jsonl").read_text().splitlines() for p in (torch_pair, onnx_pair))
        assert [json.loads(x)["predicted"] for x in a] == [json.loads(x)["predicted"] for x in b]


def test_what_would_drop_the_baseline_refuses_the_folder(parts, tmp_path):
    from lmtailor.compress.config import PruneConfig
    from lmtailor.compress.prune import run_prune
    from lmtailor.export.bench import parse_entry
    from lmtailor.train.config import DistillConfig
    from lmtailor.train.distill import run_distill

    model = parts.model
    out = _fuse(parts, tmp_path / "fused")
    source = str(model.resolve())
    with pytest.raises(ConfigError, match=rf"lmtailor fuse.*\({source}\)"):
        load_task_model(out)  # what prune, quantize, export and distill call
    with pytest.raises(ConfigError, match="lmtailor fuse"):
        run_prune(PruneConfig.build(model=out, out_dir=tmp_path / "pruned", keep_layers=[0], show_progress=False))
    with pytest.raises(ConfigError, match="lmtailor fuse"):
        _fuse(parts, tmp_path / "twice", model=out)
    with pytest.raises(ConfigError, match="bench the model it was fused from"):
        parse_entry(str(out))
    baseline = str(parts.baseline.resolve())
    with pytest.raises(ConfigError, match=rf"as --teacher and the baseline as --baseline \({baseline}\)"):
        run_distill(DistillConfig.build(task="cls", teacher=out, model=str(model), train=parts.dev,
                                        out_dir=tmp_path / "student", show_progress=False))  # fmt: skip
    assert not any((tmp_path / n).exists() for n in ("pruned", "twice", "student"))


def test_bad_parts_are_refused_before_anything_is_written(parts, tmp_path, ner_model):
    model, baseline, dev = parts.model, parts.baseline, parts.dev
    other = _cls_file(tmp_path / "other.jsonl", 30, 7)
    other.write_text(other.read_text().replace('"law"', '"warranty"'), encoding="utf-8")
    wrong = run_baseline(BaselineConfig.build(task="cls", train=other, out_dir=tmp_path / "bl2", show_progress=False))
    with pytest.raises(InputFormatError, match=r"labels differ.*model only: \['law'\].*baseline only: \['warranty'\]"):
        run_fuse(FuseConfig.build(model=model, baseline=wrong, dev=dev, out_dir=tmp_path / "a", show_progress=False))
    with pytest.raises(InputFormatError, match="only classifiers"):
        run_fuse(FuseConfig.build(model=ner_model, baseline=baseline, dev=dev, out_dir=tmp_path / "b",
                                  show_progress=False))  # fmt: skip
    with pytest.raises(InputFormatError, match="warranty"):  # dev labels the model does not know
        run_fuse(FuseConfig.build(model=model, baseline=baseline, dev=other, out_dir=tmp_path / "c",
                                  show_progress=False))  # fmt: skip
    with pytest.raises(InputNotFoundError, match="nowhere does not exist"):
        run_fuse(FuseConfig.build(model=model, baseline=tmp_path / "nowhere", dev=dev, out_dir=tmp_path / "d",
                                  show_progress=False))  # fmt: skip
    assert not any((tmp_path / n).exists() for n in "abcd")
    # A fused folder whose baseline file was cut short, or whose task.json weight is out of range: one clear error.
    out = _fuse(parts, tmp_path / "fused")
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    data = (broken / "baseline.joblib").read_bytes()
    (broken / "baseline.joblib").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFormatError, match="cannot be read as a scikit-learn pipeline"):
        load_task_model(broken, fused=True)
    spec = json.loads((out / "task.json").read_text())
    (broken / "task.json").write_text(json.dumps({**spec, "fusion": {**spec["fusion"], "weight": 2}}))
    with pytest.raises(InputFormatError, match="'fusion' entry"):
        load_task_model(broken, fused=True)


def test_the_reports_row_of_a_pair_counts_both_halves():
    from lmtailor.report.collect import Folder, ModelRow, _fused_row

    row = ModelRow("pair", "fuse", Path("/x/pair"), params=1000, size_mb=3.0, metric_name="accuracy", metric=0.9)
    manifest = {"inputs": {"model": {"path": "/x/int8"}},
                "metrics": {"baseline_parameters": 500, "baseline": {"p50_ms_batch1": 0.25},
                            "test": {"baseline_ms_per_example": 5.0}}}  # fmt: skip
    bench = {"throughput": 100.0, "runtime": "onnx-int8", "p50_ms": 4.5}
    _fused_row(row, Folder("pair", Path("/x/pair"), "fuse", manifest), {str(Path("/x/int8").resolve()): bench})
    # 10 ms a text in the model (100/s at batch 32) and 5 ms in the baseline: 15 ms a text, 66.7 texts a second;
    # one request: 4.5 ms in the model and 0.25 in the baseline.
    assert (row.params, row.throughput, row.p50_ms) == (1500, 66.7, 4.75)
    assert row.runtime == "onnx-int8 + n-gram baseline"
