"""`make demo` runs `lmtailor demo`: check it finds its built-in corpus and produces every output."""

import json
from pathlib import Path

from lmtailor.demo import collect_default_corpus, find_license_files, run_demo


def test_default_corpus_is_present_after_setup(tmp_path: Path):
    files = find_license_files()
    assert len(files) >= 20  # the licences of lmtailor's own dependencies
    dest = collect_default_corpus(tmp_path / "raw")
    assert all(p.suffix == ".txt" for p in dest.iterdir())
    assert any("Apache License" in p.read_text(errors="replace") for p in dest.iterdir())


def test_demo_end_to_end(tmp_path: Path):
    outputs = run_demo(tmp_path / "demo", show_progress=False)
    assert set(outputs) == {"corpus", "terms", "tokenizer", "evaluation", "trimmed model"}
    trim = json.loads((outputs["trimmed model"] / "trim_report.json").read_text())
    assert trim["vocab_after"] < trim["vocab_before"] and trim["parity"]["within_tolerance"]
    report = json.loads((outputs["evaluation"] / "eval.json").read_text())
    ours = report["results"]["tokenizer"]
    assert ours["term_integrity"] == 1.0 and ours["unk_rate"] == 0.0
    assert report["results"]["reference"]["term_integrity"] < 1.0
