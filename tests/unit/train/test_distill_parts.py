"""Pieces of the distillation stage with known answers: the unlabelled transfer sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtailor.errors import ConfigError, EmptyInputError
from lmtailor.train.distill import DistillConfig, _unlabelled_texts


def _cfg(tmp_path: Path, files: list[Path], **kw) -> DistillConfig:
    values = dict(task="cls", teacher=tmp_path / "t", model="m", train=tmp_path / "x.jsonl", out_dir=tmp_path / "o")
    return DistillConfig.build(**{**values, "unlabelled": files, **kw})


def test_unlabelled_sample_is_seeded_uniform_and_skips_headings(tmp_path: Path):
    f = tmp_path / "contracts.txt"
    paragraphs = [f"Clause {i}: the supplier shall deliver the goods within thirty days." for i in range(50)]
    f.write_text("\n\n".join(["ARTICLE 1", *paragraphs]) + "\n", encoding="utf-8")
    texts = _unlabelled_texts(_cfg(tmp_path, [f], max_unlabelled=5))
    assert len(texts) == 5 and "ARTICLE 1" not in texts
    assert texts == _unlabelled_texts(_cfg(tmp_path, [f], max_unlabelled=5))  # same seed, same sample
    assert texts != paragraphs[:5]  # not the first five: a sample across the corpus
    assert texts != _unlabelled_texts(_cfg(tmp_path, [f], max_unlabelled=5, seed=1))
    assert len(_unlabelled_texts(_cfg(tmp_path, [f]))) == 50


def test_unlabelled_text_errors(tmp_path: Path):
    short = tmp_path / "short.txt"
    short.write_text("Heading\n\nAnother heading\n", encoding="utf-8")
    with pytest.raises(EmptyInputError, match="min_unlabelled_chars"):
        _unlabelled_texts(_cfg(tmp_path, [short]))
    with pytest.raises(ConfigError, match="supported for cls"):
        _unlabelled_texts(_cfg(tmp_path, [short], task="ner"))
