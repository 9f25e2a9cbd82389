"""`lmtailor augment`: copies keep their labels, entities keep their tags as they move, terms are never cut, the
input file is only read, and the output reads back as a training file."""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path

import pytest

from lmtailor.augment.config import AugmentConfig
from lmtailor.augment.ops import Piece, augment_pieces, cut_text, join
from lmtailor.augment.stage import run
from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.tasks.readers import read_cls, read_ner
from lmtailor.tasks.tags import spans_from_tags

CLS = [
    ("The licensee shall indemnify the licensor against all claims for breach of contract.", "indemnity"),
    ("This agreement is governed by the laws of New York and any breach of contract is heard there.", "law"),
    ("Either party may terminate this agreement upon force majeure lasting sixty days.", "termination"),
]
NER = """Mutations\tO
in\tO
BRCA1\tO
cause\tO
breast\tB-Disease
cancer\tI-Disease
and\tO
ovarian\tB-Disease
cancer\tI-Disease
.\tO

Patients\tO
with\tO
cystic\tB-Disease
fibrosis\tI-Disease
were\tO
studied\tO
today\tO
.\tO
"""


def _cls_file(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in CLS) + "\n")
    return path


def _glossary(tmp_path: Path) -> Path:
    path = tmp_path / "legal.txt"
    path.write_text("breach of contract\nforce majeure\nindemnify\nmaterial breach\n")
    return path


def test_cut_and_join_give_the_text_back_and_keep_terms_whole():
    text = CLS[0][0]
    start = text.index("breach of contract")
    pieces = cut_text(text, [(start, start + len("breach of contract"), "legal")])
    assert join(pieces) == text
    assert [p.text for p in pieces if p.kind == "term"] == ["breach of contract"]
    copy = augment_pieces(pieces, ["swap", "delete"], 0.3, random.Random(1), {}, {}, Counter())
    assert "breach of contract" in join(copy) and join(copy) != text and "  " not in join(copy)


def test_mentions_move_with_their_tags():
    pieces = [Piece("in", "word"), Piece("breast cancer", "entity", "Disease"), Piece("today", "word")]
    pool = {"Disease": [["cystic", "fibrosis"], ["breast", "cancer"]]}
    copy = augment_pieces(pieces, ["mentions"], 0.5, random.Random(1), {}, pool, counts := Counter())
    assert counts["mentions"] == 1 and copy[1].text == "cystic fibrosis" and copy[1].kind == "entity"


def test_cls_copies_keep_labels_and_terms_and_the_input_is_untouched(tmp_path: Path):
    train, glossary = _cls_file(tmp_path), _glossary(tmp_path)
    before = hashlib.sha256(train.read_bytes()).hexdigest()
    out = run(AugmentConfig(task="cls", train=train, glossary=[glossary], copies=3, rate=0.2,
                            out_dir=tmp_path / "aug", show_progress=False))  # fmt: skip
    assert hashlib.sha256(train.read_bytes()).hexdigest() == before
    data = read_cls(out / "train.jsonl")
    assert len(data.examples) == 3 * 4
    assert [ex.label for ex in data.examples] == [y for _, y in CLS for _ in range(4)]
    assert [ex.text for ex in data.examples[::4]] == [t for t, _ in CLS]  # each original first
    terms = ["breach of contract", "force majeure", "indemnify", "material breach"]
    for i, (text, _) in enumerate(CLS):
        had = sum(text.count(t) for t in terms)
        for ex in data.examples[4 * i + 1 : 4 * i + 4]:  # a term is replaced by a whole term, never cut
            assert sum(ex.text.count(t) for t in terms) == had, ex.text
    report = json.loads((out / "augment_report.json").read_text())
    assert report["copies_written"] == 9 and report["changes"]["terms"] > 0 and report["changes"]["swap"] > 0


def test_ner_copies_read_back_with_valid_entities(tmp_path: Path):
    train = tmp_path / "train.tsv"
    train.write_text(NER)
    out = run(AugmentConfig(task="ner", train=train, copies=4, rate=0.3, out_dir=tmp_path / "aug", seed=3,
                            show_progress=False))  # fmt: skip
    data = read_ner(out / "train.tsv")
    assert len(data.examples) == 2 * 5 and data.labels == ["Disease"]
    mentions = {"breast cancer", "ovarian cancer", "cystic fibrosis"}
    for k, ex in enumerate(data.examples):
        found = [ex.text[s:e] for s, e, _ in spans_from_tags(ex.units, ex.tags)]
        assert len(found) == (2 if k < 5 else 1)  # no entity lost or split
        assert set(found) <= mentions
    assert any(ex.text != data.examples[0].text for ex in data.examples[1:5])


def test_bad_input_is_refused_before_anything_is_written(tmp_path: Path):
    train = _cls_file(tmp_path)
    with pytest.raises(InputNotFoundError, match="glossary"):
        run(AugmentConfig(task="cls", train=train, glossary=[tmp_path / "none.txt"], out_dir=tmp_path / "a",
                          show_progress=False))  # fmt: skip
    assert not (tmp_path / "a").exists()
    with pytest.raises(ConfigError, match="terms method needs"):
        AugmentConfig.build(task="cls", train=train, methods=["terms"], out_dir=tmp_path / "b")


def test_invalid_tags_and_spans_that_miss_their_text_are_refused(tmp_path: Path):
    """The task reader's checks apply before anything is written: a span whose text is not the entity it names, and
    (with --invalid-tags error) an I- tag without its B-."""
    spans = tmp_path / "spans.json"
    spans.write_text(
        json.dumps(
            [
                {
                    "text": "患者有高血压病史",
                    "entities": [{"start_idx": 3, "end_idx": 5, "type": "dis", "entity": "血压病"}],
                }
            ],
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    with pytest.raises(InputFormatError, match="the text there is"):
        run(AugmentConfig(task="ner", train=spans, out_dir=tmp_path / "a", show_progress=False))
    tags = tmp_path / "tags.tsv"
    tags.write_text("The\tO\ncancer\tI-Disease\nspread\tO\n", encoding="utf-8")
    with pytest.raises(InputFormatError):
        run(AugmentConfig(task="ner", train=tags, invalid_tags="error", out_dir=tmp_path / "b", show_progress=False))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
