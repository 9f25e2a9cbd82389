"""`lmtailor update` end to end on a tiny fine-tuned classifier: new terms, continued MLM, re-fit, the regression
report, the failed-update rule for serving, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.models.folder import current_model
from lmtailor.outputs import content_hash
from lmtailor.train.finetune import FinetuneConfig, run_finetune
from lmtailor.update.config import UpdateConfig
from lmtailor.update.stage import run

CLAUSES = {
    "indemnity": "The licensee shall indemnify the licensor against all claims.",
    "law": "This agreement is governed by the laws of the State of New York.",
    "termination": "Either party may terminate this agreement upon written notice.",
}
NEW_DOCS = [
    "The indemnitor shall notify the licensor of any breach within ten days.",
    "Each indemnitor is bound by the same confidentiality terms as the licensee.",
    "The licensee may appoint an indemnitor with written consent of the licensor.",
    "Cotermination of the schedules follows the main agreement.",
    "The licensor may audit any indemnitor once a year.",
    "Upon cotermination no escrow amount shall remain.",
]


def _cls_file(path: Path, n: int, seed: int, labels=CLAUSES, extra: str = "") -> Path:
    rng = random.Random(seed)
    pool = sorted({w for text in CLAUSES.values() for w in text.split()})
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(labels))
        rows.append({"text": f"{labels[label]} {rng.choice(pool)} {extra}".strip(), "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def built(tiny_bert, tmp_path) -> Path:
    """A fine-tuned tiny classifier with its build record (lmtailor.json), as `lmtailor finetune` writes it."""
    train, dev = _cls_file(tmp_path / "train.jsonl", 60, 0), _cls_file(tmp_path / "dev.jsonl", 24, 1)
    cfg = FinetuneConfig.build(task="cls", model=str(tiny_bert), train=train, dev=dev, test=dev, epochs=6,
                               batch_size=8, lr=3e-3, max_length=32, stride=4, show_progress=False,
                               out_dir=tmp_path / "built")  # fmt: skip
    return run_finetune(cfg)


def _docs(tmp_path: Path, lines: list[str] = NEW_DOCS, repeat: int = 8) -> Path:
    folder = tmp_path / "new-docs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "q3.txt").write_text("\n\n".join(lines * repeat) + "\n", encoding="utf-8")
    return folder


def _update(tmp_path: Path, model: Path, docs: Path, **kw) -> UpdateConfig:
    values = dict(model=model, documents=[docs], out_dir=tmp_path / "updated", mlm_steps=4, head_steps=3,
                  mlm_batch_size=4, seq_len=32, epochs=1, heldout=10, min_term_freq=3, show_progress=False)  # fmt: skip
    values.update(kw)
    return UpdateConfig.build(**values)


def test_update_adds_terms_refits_and_reports(built, tmp_path):
    docs = _docs(tmp_path)
    # Next quarter's labelled data brings a new clause type.
    new_train = _cls_file(tmp_path / "new-train.jsonl", 12, 2, labels={**CLAUSES, "indemnitor duties": NEW_DOCS[0]})
    before = content_hash([built])
    out = run(_update(tmp_path, built, docs, train=new_train, tolerance=100.0))
    assert content_hash([built]) == before  # the model it updates is only read

    report = json.loads((out / "update_report.json").read_text())
    terms = report["terms"]
    added = (out / "new_terms.txt").read_text().split()
    # Mined from the new documents, and split into several pieces by the model's tokenizer: the words the tiny
    # tokenizer cannot spell at all ([UNK]) are left out, as a mean of no known pieces would be noise.
    assert "indemnitor" in added and terms["added"] == len(added) >= 1
    assert terms["integrity"] == 1.0 and terms["old_ids_kept"]
    assert terms["vocab_after"] == terms["vocab_before"] + len(added)
    assert len(terms["examples"]["indemnitor"]) >= 2  # it was several pieces before
    tok = AutoTokenizer.from_pretrained(str(out))
    assert len(tok("indemnitor", add_special_tokens=False).input_ids) == 1
    old_tok = AutoTokenizer.from_pretrained(str(built))
    assert all(tok.get_vocab()[t] == i for t, i in old_tok.get_vocab().items())

    model = AutoModelForSequenceClassification.from_pretrained(str(out))  # a plain HF folder
    assert set(model.config.label2id) == {*CLAUSES, "indemnitor duties"}
    assert model.get_input_embeddings().num_embeddings >= len(tok)
    scores = report["scores"]
    assert {"dev", "test"} <= set(scores)
    for row in scores.values():
        assert 0 <= row["before"] <= 1 and 0 <= row["after"] <= 1 and row["metric"] == "accuracy"
        assert row["delta_points"] == pytest.approx(100 * (row["after"] - row["before"]), abs=0.01)
    mlm = report["mlm_loss"]
    for side in ("before", "after"):
        assert mlm[side]["old_text"] > 0 and mlm[side]["new_text"] > 0
        assert mlm[side]["head"] == "fitted on the frozen encoder"  # a task model has no MLM head
    assert report["size"]["weight_bytes_after"] > report["size"]["weight_bytes_before"] > 0
    assert report["passed"] is True and report["failed_checks"] == []
    speed = report["speed"]  # both models on the same old examples, timed alternately
    assert speed["timed"] == "alternately" and speed["examples"] > 0 and speed["timings_each"] == 3
    assert speed["before_examples_per_second"] > 0 and speed["after_examples_per_second"] > 0
    record = json.loads((out / "lmtailor.json").read_text())
    assert record["stage"] == "update" and record["metrics"]["passed"] is True
    assert record["metrics"]["training"]["epochs"] == 1.0 and record["metrics"]["kind"] == "finetune"
    assert set(report["seconds"]) >= {"terms", "extend", "mlm", "refit", "checks", "total"}
    assert current_model(out) == out
    assert not list(tmp_path.glob(".updated.work-*"))  # the scratch folder is gone

    # The report of a build with an update says what the update did, in plain words.
    from lmtailor.report.config import ReportConfig
    from lmtailor.report.stage import run_report

    rep = run_report(ReportConfig.build(inputs=[built, out], out_dir=tmp_path / "report", show_progress=False))
    md = (rep / "report.md").read_text()
    assert "## Update: updated" in md and "passed its regression checks" in md and "indemnitor" in md

    # An update of an update: the record carries the re-fit settings, so it chains.
    again = run(_update(tmp_path, out, docs, out_dir=tmp_path / "updated2", max_new_terms=0, mlm_steps=0,
                        tolerance=100.0))  # fmt: skip
    assert json.loads((again / "update_report.json").read_text())["terms"]["added"] == 0


def test_failed_update_is_kept_but_not_served(tmp_path):
    """`current_model` (used by `lmtailor serve` and the serve stage) follows a failed update back to its model."""
    previous = tmp_path / "teacher"
    previous.mkdir()
    (previous / "lmtailor.json").write_text(json.dumps({"stage": "finetune-cls", "metrics": {}}))
    failed = tmp_path / "update"
    failed.mkdir()
    (failed / "lmtailor.json").write_text(json.dumps({
        "stage": "update", "config": {"model": str(previous)},
        "metrics": {"passed": False, "previous": str(previous), "failed_checks": ["test accuracy -1.20 points"]},
    }))  # fmt: skip
    assert current_model(failed) == previous
    assert current_model(previous) == previous
    passed = tmp_path / "update2"
    passed.mkdir()
    (passed / "lmtailor.json").write_text(
        json.dumps(
            {"stage": "update", "config": {"model": str(failed)}, "metrics": {"passed": True, "previous": str(failed)}}
        )
    )
    assert current_model(passed) == passed


def test_update_refuses_bad_input(built, tiny_bert, tmp_path):
    docs = _docs(tmp_path)
    # A model folder without its build record: update cannot know the training data.
    with pytest.raises(InputFormatError, match=r"lmtailor\.json"):
        run(_update(tmp_path, tiny_bert, docs))
    # New documents in another language than the model's.
    zh = _docs(tmp_path / "zh", ["甲方应当在十日内通知乙方任何违约行为，并承担相应的赔偿责任。"] * 6)
    with pytest.raises(InputFormatError, match="language"):
        run(_update(tmp_path, built, zh))
    # A model folder without a tokenizer.
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("config.json", "model.safetensors", "lmtailor.json"):
        (bare / name).write_bytes((built / name).read_bytes())
    with pytest.raises(InputFormatError, match="tokenizer"):
        run(_update(tmp_path, bare, docs))
    # Labelled data for an MLM: nothing to re-fit.
    mlm = tmp_path / "mlm"
    mlm.mkdir()
    for f in tiny_bert.iterdir():
        (mlm / f.name).write_bytes(f.read_bytes())
    (mlm / "lmtailor.json").write_text(json.dumps({"stage": "pretrain", "config": {}, "metrics": {}}))
    with pytest.raises(ConfigError, match="re-fit"):
        run(_update(tmp_path, mlm, docs, train=tmp_path / "train.jsonl"))
    assert not (tmp_path / "updated").exists()


def test_a_word_start_marker_alone_is_not_a_piece(tiny_unigram):
    """SentencePiece writes a word whose first piece lacks the marker as "▁" + pieces: the marker alone is no content,
    so a term that is "▁" + one piece is one token already (the Chinese laws' update counted 主管部门 as two)."""
    from lmtailor.tokenizer.hf import content_ids

    tok = AutoTokenizer.from_pretrained(str(tiny_unigram))
    assert tok.tokenize("zebras")[0] == "▁"
    assert tok.convert_ids_to_tokens(content_ids(tok, "zebras")) == tok.tokenize("zebras")[1:]
    assert content_ids(tok, "party") == tok("party", add_special_tokens=False).input_ids  # "▁party": content
