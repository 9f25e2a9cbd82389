"""What a person sees from `lmtailor build` without a terminal (CI, nohup, a pipe): timestamped lines, one per stage
start and end and per evaluation, a summary, and nothing from third-party libraries unless -v."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow
LABELS = ["indemnity", "law", "termination"]
TEXTS = {
    "indemnity": "The licensee shall indemnify the licensor against all claims.",
    "law": "This agreement is governed by the laws of the State of New York.",
    "termination": "Either party may terminate this agreement upon written notice.",
}
THIRD_PARTY = ("Quantization parameters for tensor", "get_tensor_type", "{'loss'", "{'eval_loss'")


def _build(recipe: Path, *flags: str) -> str:
    cmd = [sys.executable, "-m", "lmtailor.cli", *flags, "build", str(recipe), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-3000:]
    return text


def test_piped_build_is_plain_lines_and_v_brings_third_party_logs_back(tmp_path: Path, clause_classifier: Path):
    for split, n in (("train", 8), ("dev", 4)):
        rows = [{"text": f"{TEXTS[label]} Clause {i}.", "label": label} for i in range(n) for label in LABELS]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    stages = {
        "teacher": {"stage": "finetune", "task": "cls", "model": str(clause_classifier), "train": "${data}/train.jsonl",
                    "dev": "${data}/dev.jsonl", "epochs": 2, "batch_size": 8, "max_length": 32, "stride": 8,
                    "logging_steps": 1, "patience": 0},
        "onnx": {"stage": "export", "model": "@teacher"},
        "int8": {"stage": "quantize", "model": "@onnx", "method": "int8"},
    }  # fmt: skip
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump({"vars": {"data": str(tmp_path), "work": str(tmp_path / "work")},
                                      "stages": stages}, sort_keys=False))  # fmt: skip
    events = tmp_path / "events.jsonl"
    text = _build(recipe, "--log-json", str(events))
    assert "\x1b[" not in text and "\r" not in text  # no cursor codes, no redraws
    assert not [m for m in THIRD_PARTY if m in text], text
    assert "[1/3] teacher (finetune) started" in text and "teacher: done in" in text
    assert "dev accuracy" in text  # each evaluation is one line
    assert "build tiny: 3 stage(s) ran" in text
    kinds = [json.loads(line)["event"] for line in events.read_text().splitlines()]
    assert kinds.count("stage_start") == 3 and kinds.count("stage_end") == 3 and "note" in kinds

    cmd = [sys.executable, "-m", "lmtailor.cli", "-v", "build", str(recipe), "--force", "int8"]
    loud = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert loud.returncode == 0, loud.stderr[-3000:]
    assert "Quantization parameters for tensor" in loud.stdout + loud.stderr  # ONNX Runtime's INFO, with -v
