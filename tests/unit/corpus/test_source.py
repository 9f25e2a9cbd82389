"""The shared reader in raw-document mode, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmtailor.corpus import iter_records, iter_texts
from lmtailor.errors import EmptyInputError, InputNotFoundError


def test_raw_documents_yield_normalised_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("---\nx: 1\n---\n# T\n\nＦｉｒｓｔ  para.\n\nSecond\npara.\n", encoding="utf-8")
    (tmp_path / "b.jsonl").write_text(json.dumps({"text": "row text"}) + "\n", encoding="utf-8")
    (tmp_path / "skip.pdf").write_bytes(b"%PDF")
    assert list(iter_texts([tmp_path])) == ["First para.", "Second para.", "row text"]
    assert [r.doc for r in iter_records([tmp_path])] == ["a.md", "a.md", "b.jsonl:1"]


def test_missing_path_raises_before_iteration(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        iter_texts([tmp_path / "missing"])


def test_nothing_to_yield_raises_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_text("\n\n", encoding="utf-8")
    texts = iter_texts([tmp_path])
    with pytest.raises(EmptyInputError, match=str(tmp_path)):
        next(texts)
