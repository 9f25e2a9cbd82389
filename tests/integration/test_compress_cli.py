"""The compression chain from the command line on a tiny classifier:
finetune → prune → distill → export → quantize → evaluate → bench, and a clear error exit on bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmtailor.cli import app

CLAUSES = {
    "indemnity": "The licensee shall indemnify the licensor against all claims.",
    "law": "This agreement is governed by the laws of the State of New York.",
    "termination": "Either party may terminate this agreement upon written notice.",
}


def _invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(app, [*args, "--no-progress"])
    assert result.exit_code == code, result.output
    return result


def _cls_file(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    pool = sorted({w for text in CLAUSES.values() for w in text.split()})
    rows = [{"text": f"{CLAUSES[lab]} {rng.choice(pool)}", "label": lab}
            for lab in (rng.choice(sorted(CLAUSES)) for _ in range(n))]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.slow
def test_compression_chain(tmp_path: Path, clause_classifier: Path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 48, 0), _cls_file(tmp_path / "dev.jsonl", 12, 1)
    teacher, student = tmp_path / "teacher", tmp_path / "student"
    common = ["--max-length", "32", "--stride", "8", "--batch-size", "8", "--patience", "0"]
    result = _invoke("finetune", "cls", str(train), "-m", str(clause_classifier), "--dev", str(dev), "--out",
                     str(teacher), "--epochs", "6", "--lr", "3e-3", *common)  # fmt: skip
    assert "Loading weights" not in result.output and "Writing model shards" not in result.output  # HF's bars: off
    result = _invoke("prune", str(teacher), "--data", str(train), "--layers", "2", "--ffn-size", "32",
                     "--out", str(tmp_path / "pruned"))  # fmt: skip
    assert "FFN 64 → 32" in result.output
    _invoke("distill", "cls", str(train), "--teacher", str(teacher), "--student", str(tmp_path / "pruned"),
            "--dev", str(dev), "--out", str(student), "--epochs", "4", "--lr", "3e-3", "--alpha", "0.3",
            *common)  # fmt: skip
    report = json.loads((student / "finetune_report.json").read_text())
    assert report["dev"]["examples"] == 12
    result = _invoke("export", str(student), "--out", str(tmp_path / "onnx"))
    assert "parity_max_abs_diff" in result.output  # the summary: one compact table, not a JSON dump
    assert json.loads((tmp_path / "onnx" / "lmtailor.json").read_text())["metrics"]["parity_max_abs_diff"] <= 1e-4
    _invoke("quantize", str(tmp_path / "onnx"), "--method", "int8", "--eval", str(dev), "--out", str(tmp_path / "q8"))
    result = _invoke("evaluate", str(tmp_path / "q8"), str(dev), "--out", str(tmp_path / "eval"))
    assert json.loads((tmp_path / "eval" / "lmtailor.json").read_text())["metrics"]["examples"] == 12
    bench_cfg = tmp_path / "bench.yaml"
    bench_cfg.write_text("bench:\n  warmup: 1\n  repeat: 3\n  throughput_repeat: 1\n  throughput_batch: 4\n"
                         "  threads: 1\n  seq_len: 16\n")  # fmt: skip
    result = _invoke("bench", str(teacher), str(tmp_path / "q8"), "--config", str(bench_cfg),
                     "--out", str(tmp_path / "bench"))  # fmt: skip
    rows = json.loads((tmp_path / "bench" / "bench.json").read_text())
    assert len(rows["models"]) == 2


def test_bad_input_exits_with_a_message(tmp_path: Path):
    result = _invoke("prune", str(tmp_path / "missing"), "--layers", "1", "--out", str(tmp_path / "p"), code=2)
    assert "missing" in result.output and not (tmp_path / "p").exists()
    result = _invoke("quantize", str(tmp_path / "missing"), "--method", "int8", "--out", str(tmp_path / "q"), code=2)
    assert "missing" in result.output and not (tmp_path / "q").exists()
