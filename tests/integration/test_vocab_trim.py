"""`lmtailor vocab trim` end to end on tiny WordPiece, byte-level BPE and Unigram models built by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoModelForSequenceClassification, AutoTokenizer

from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError
from lmtailor.vocab import TrimConfig, run_trim

DOMAIN = "The licensee shall indemnify the licensor. This agreement is governed by the laws of New York.\n"


@pytest.fixture
def domain(tmp_path: Path) -> Path:
    root = tmp_path / "domain"
    root.mkdir()
    for i in range(5):
        (root / f"d{i}.txt").write_text(DOMAIN * 3, encoding="utf-8")
    return root


def _trim(model: Path, domain: Path, out: Path, **kw) -> dict:
    cfg = TrimConfig.build(model=str(model), inputs=[domain], verify_inputs=[domain], out_dir=out,
                           show_progress=False, **({"coverage": 1.0} | kw))  # fmt: skip
    return json.loads((run_trim(cfg) / "trim_report.json").read_text())


@pytest.mark.parametrize("fixture", ["tiny_bert", "tiny_roberta", "tiny_unigram"])
def test_trim_round_trip(fixture, domain, tmp_path, request):
    src = request.getfixturevalue(fixture)
    report = _trim(src, domain, tmp_path / "trimmed")
    assert report["vocab_after"] < report["vocab_before"]
    assert report["parameters_after"] < report["parameters_before"]
    assert report["heldout_token_coverage"] == 1.0 and report["heldout_texts_changed"] == 0
    assert report["parity"]["texts"] > 0 and report["parity"]["within_tolerance"]
    # Plain HF loading, no hand edits; same text, same tokens (through the id map), same outputs.
    old_tok, new_tok = AutoTokenizer.from_pretrained(str(src)), AutoTokenizer.from_pretrained(str(tmp_path / "trimmed"))
    old_model = AutoModelForMaskedLM.from_pretrained(str(src)).eval()
    new_model = AutoModelForMaskedLM.from_pretrained(str(tmp_path / "trimmed")).eval()
    assert new_model.config.vocab_size == report["vocab_after"] == len(new_tok)
    text = "The licensee shall indemnify the licensor."
    old_ids, new_ids = old_tok(text, return_tensors="pt"), new_tok(text, return_tensors="pt")
    assert old_tok.convert_ids_to_tokens(old_ids["input_ids"][0]) == new_tok.convert_ids_to_tokens(
        new_ids["input_ids"][0]
    )
    with torch.no_grad():
        a, b = old_model(**old_ids).logits, new_model(**new_ids).logits
    kept = [old_tok.convert_tokens_to_ids(t) for t in new_tok.convert_ids_to_tokens(list(range(len(new_tok))))]
    assert torch.allclose(a[..., kept], b, atol=1e-5)
    # Text outside the domain still encodes without [UNK] (alphabet kept).
    unk = new_tok.unk_token_id
    assert unk not in new_tok("zebras and giraffes")["input_ids"]


def test_classifier_keeps_its_head_and_labels(tiny_classifier, domain, tmp_path):
    report = _trim(tiny_classifier, domain, tmp_path / "trimmed")
    model = AutoModelForSequenceClassification.from_pretrained(str(tmp_path / "trimmed"))
    assert model.config.id2label == {0: "law", 1: "term", 2: "other"}
    assert report["parity"]["within_tolerance"] and report["parity"]["max_abs_diff_logits"] <= 1e-5


def test_task_settings_travel_but_the_inputs_results_do_not(clause_classifier, domain, tmp_path):
    for name in ("eval_test.json", "predictions_test.jsonl", "finetune_report.json", "metrics.jsonl"):
        (clause_classifier / name).write_text("{}\n")
    _trim(clause_classifier, domain, tmp_path / "trimmed")
    kept = sorted(p.name for p in (tmp_path / "trimmed").iterdir())
    assert "task.json" in kept and not {"eval_test.json", "predictions_test.jsonl", "finetune_report.json",
                                        "metrics.jsonl"} & set(kept)  # fmt: skip


def test_size_target_is_met(tiny_bert, domain, tmp_path):
    report = _trim(tiny_bert, domain, tmp_path / "trimmed", size=120, coverage=None)
    assert report["vocab_after"] == 120


def test_bad_inputs_write_nothing(tiny_bert, domain, tmp_path):
    out = tmp_path / "trimmed"
    with pytest.raises(ConfigError, match="smaller than"):
        _trim(tiny_bert, domain, out, size=10, coverage=None)
    blank = tmp_path / "blank"
    blank.mkdir()
    (blank / "a.txt").write_text("   \n\n  ")
    with pytest.raises(EmptyInputError):
        _trim(tiny_bert, blank, out)
    terms = tmp_path / "keep.txt"
    terms.write_text("心肌梗死\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="encodes to \\[UNK\\]"):
        _trim(tiny_bert, domain, out, keep=[terms])
    (tiny_bert / "tokenizer.json").unlink()
    with pytest.raises(InputFormatError, match="no fast tokenizer"):
        _trim(tiny_bert, domain, out)
    assert not out.exists() and not list(tmp_path.glob(".trimmed*"))


@pytest.mark.data
def test_minilm_on_cuad_dev(shared_data, tmp_path):
    from lmtailor.tokenizer.hf import default_reference

    dev = sorted((shared_data / "en-legal" / "cuad" / "contracts" / "dev").glob("*.txt"))[:8]
    docs = tmp_path / "docs"
    docs.mkdir()
    for p in dev:
        (docs / p.name).write_bytes(p.read_bytes())
    cfg = TrimConfig.build(model=str(default_reference()), inputs=[docs], verify_inputs=[docs], verify_texts=50,
                           out_dir=tmp_path / "trimmed", show_progress=False)  # fmt: skip
    report = json.loads((run_trim(cfg) / "trim_report.json").read_text())
    assert report["vocab_after"] < 10_000 and report["parity"]["within_tolerance"]
    assert report["heldout_unk_trimmed"] == report["heldout_unk_original"]
    tok = AutoTokenizer.from_pretrained(str(tmp_path / "trimmed"))
    assert tok.unk_token_id not in tok("an entirely unrelated sentence about zebras")["input_ids"]


def test_cli_trim(tiny_bert, domain, tmp_path):
    from typer.testing import CliRunner

    from lmtailor.cli import app

    args = ["vocab", "trim", str(tiny_bert), str(domain), "--coverage", "1.0", "--verify", str(domain), "--out",
            str(tmp_path / "t"), "--no-progress"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "vocabulary" in result.output and (tmp_path / "t" / "model.safetensors").is_file()


def test_verify_on_a_corpus_folder_that_keeps_everything_in_train(tiny_bert, domain, tmp_path):
    # As in the README: `lmtailor corpus <test docs> --split-ratios 1,0,0` puts held-out text in "train".
    from lmtailor.corpus import CorpusConfig
    from lmtailor.corpus import run as run_corpus

    held = run_corpus(CorpusConfig.build(inputs=[domain], out_dir=tmp_path / "held", split_ratios=[1, 0, 0],
                                         show_progress=False))  # fmt: skip
    cfg = TrimConfig.build(model=str(tiny_bert), inputs=[domain], verify_inputs=[held], out_dir=tmp_path / "t",
                           coverage=1.0, show_progress=False)  # fmt: skip
    report = json.loads((run_trim(cfg) / "trim_report.json").read_text())
    assert report["heldout_texts"] > 0 and report["parity"]["texts"] > 0
