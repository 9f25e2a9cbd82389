"""`run_bench` end to end on a tiny classifier and an ONNX export of it, each measured in its own process."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.export.bench import BenchConfig, auto_runtime, parse_entry, run_bench

TINY = {"seq_len": 16, "batch_sizes": [1], "throughput_batch": 4, "warmup": 1, "repeat": 2, "throughput_repeat": 1,
        "threads": 1, "show_progress": False}  # fmt: skip
INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


@pytest.fixture
def onnx_export(tiny_classifier: Path, tmp_path: Path) -> Path:
    """tiny_classifier as model.onnx (legacy TorchScript exporter), with its tokenizer and config beside it."""
    folder = tmp_path / "tiny-onnx"
    folder.mkdir()
    for f in tiny_classifier.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, folder / f.name)
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_classifier)).eval()
    ids = torch.ones(1, 8, dtype=torch.long)
    torch.onnx.export(model, (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(folder / "model.onnx"),
                      input_names=INPUTS, output_names=["logits"], dynamic_axes={k: {0: "b", 1: "s"} for k in INPUTS},
                      opset_version=17, dynamo=False)  # fmt: skip
    return folder / "model.onnx"


@pytest.mark.slow  # four fresh processes, each importing torch or onnxruntime
def test_bench_measures_every_runtime_and_picks_the_fastest(
    tiny_classifier: Path, onnx_export: Path, tmp_path: Path
) -> None:
    picked = auto_runtime(tiny_classifier, tmp_path / "bench", onnx=onnx_export, **TINY)
    bench = json.loads((tmp_path / "bench" / "bench.json").read_text())
    rows = bench["models"]
    assert [r["runtime"] for r in rows] == ["fp32", "bf16", "torch-int8", "onnx-fp32"]
    for r in rows:
        assert "error" not in r, r.get("error")
        assert r["latency"]["1"]["p50_ms"] > 0 and r["latency"]["1"]["p95_ms"] >= r["latency"]["1"]["p50_ms"]
        assert r["throughput"]["batch"] == 4 and r["throughput"]["sequences_per_s"] > 0
        assert r["peak_rss_mb"] > 0 and r["peak_rss_mb"] >= r["rss_after_load_mb"]
        assert r["params"] > 20_000
        assert r["vs_baseline"]["max_output_diff"] < 0.01  # same inputs, same model in every runtime
    weights = (tiny_classifier / "model.safetensors").stat().st_size / 1e6
    assert rows[0]["size_mb"] == round(weights, 3) and rows[0]["weight_files"] == ["model.safetensors"]
    assert rows[3]["size_mb"] == round(onnx_export.stat().st_size / 1e6, 3)
    assert rows[0]["vs_baseline"] == {"latency_batch": 1, "p50_speedup": 1.0, "throughput_ratio": 1.0,
                                      "size_ratio": 1.0, "max_output_diff": 0.0}  # fmt: skip
    # bf16 halves the weights in memory; torch-int8 packs the Linear weights.
    assert rows[1]["weights_mb_in_memory"] < rows[0]["weights_mb_in_memory"]
    assert rows[2]["weights_mb_in_memory"] < rows[0]["weights_mb_in_memory"]
    best = max(rows, key=lambda r: r["throughput"]["sequences_per_s"])
    assert picked == bench["fastest"] and picked["entry"] == best["entry"]
    assert bench["threads"] == 1 and bench["seq_len"] == 16
    assert {"cpu", "physical_cores", "native_bf16", "date", "versions"} <= set(bench["machine"])
    md = (tmp_path / "bench" / "bench.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| tiny")]
    assert len(table) == 4 and f"**{picked['entry']}**" in md


def test_inputs_have_the_same_shape_for_every_model(tiny_classifier: Path) -> None:
    from lmtailor.export.bench import DEFAULT_TEXT, make_inputs

    arrays = make_inputs(tiny_classifier, 24, 5, DEFAULT_TEXT)
    assert {"input_ids", "attention_mask"} <= set(arrays) <= set(INPUTS)  # this tokenizer gives no token_type_ids
    assert all(a.shape == (5, 24) for a in arrays.values())
    assert arrays["attention_mask"].all()  # the text fills every position: no padding timed


def _raises(models: list[str], error: type, match: str, tmp_path: Path, **extra: object) -> None:
    with pytest.raises(error, match=match):
        run_bench(BenchConfig(models=models, out_dir=tmp_path / "out", **{**TINY, **extra}))
    assert not (tmp_path / "out").exists()


def test_bad_entries_fail_before_anything_is_measured(tiny_classifier: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    _raises([str(tiny_classifier), str(tmp_path / "missing")], InputNotFoundError, "does not exist", tmp_path)
    _raises([str(tmp_path / "missing@bf16")], InputNotFoundError, "does not exist", tmp_path)
    _raises([str(empty)], InputFormatError, "no model weights", tmp_path)
    _raises([f"{tiny_classifier}@int3"], ConfigError, "unknown runtime @int3", tmp_path)
    _raises([f"{tiny_classifier}@onnx"], InputFormatError, "no .onnx file", tmp_path)
    _raises([str(tiny_classifier)], ConfigError, "seq_len = 100", tmp_path, seq_len=100)
    (tmp_path / "weights.bin").write_bytes(b"x")
    _raises([str(tmp_path / "weights.bin")], InputFormatError, "must be an .onnx model", tmp_path)
    (tmp_path / "broken.onnx").write_bytes(b"not a graph")
    _raises([str(tmp_path / "broken.onnx")], InputFormatError, "not a readable ONNX model", tmp_path)
    with pytest.raises(ConfigError, match="models"):
        BenchConfig.build(models=[], out_dir=tmp_path / "out")


def test_onnx_entries(onnx_export: Path) -> None:
    assert parse_entry(str(onnx_export.parent)).path == onnx_export  # a folder with model.onnx
    assert parse_entry(str(onnx_export)).runtime == "onnx-fp32"
    with pytest.raises(ConfigError, match="applies to PyTorch folders"):
        parse_entry(f"{onnx_export.parent}@bf16")
    alone = onnx_export.parent.parent / "alone"
    alone.mkdir()
    shutil.copy(onnx_export, alone / "model.onnx")
    with pytest.raises(InputFormatError, match="no tokenizer"):
        run_bench(BenchConfig(models=[str(alone / "model.onnx")], out_dir=alone / "out", **TINY))
