"""CorpusConfig validation: bad values raise ConfigError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtailor.corpus import CorpusConfig
from lmtailor.errors import ConfigError


def _build(tmp_path: Path, **values: object) -> CorpusConfig:
    return CorpusConfig.build(**{"inputs": [tmp_path], "out_dir": tmp_path / "out", **values})


def test_defaults(tmp_path: Path) -> None:
    cfg = _build(tmp_path)
    assert cfg.split_ratios == [0.9, 0.05, 0.05]
    assert (cfg.unit, cfg.max_chars, cfg.min_chars, cfg.near_dup_threshold) == ("paragraph", 2000, 1, 0.8)
    assert cfg.strip_markdown == "auto"
    assert all(field.description for field in CorpusConfig.model_fields.values())


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"split_ratios": [0.5, 0.2, 0.2]}, "split_ratios"),
        ({"split_ratios": [1.0, 0.0]}, "split_ratios"),
        ({"split_ratios": [1.2, -0.1, -0.1]}, "split_ratios"),
        ({"near_dup_threshold": 1.5}, "near_dup_threshold"),
        ({"near_dup_threshold": -0.2}, "near_dup_threshold"),
        ({"encoding": "klingon-8"}, "encoding"),
        ({"unit": "page"}, "unit"),
        ({"strip_markdown": "sometimes"}, "strip_markdown"),
        ({"inputs": []}, "inputs"),
    ],
)
def test_invalid_values_name_the_field(tmp_path: Path, values: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        _build(tmp_path, **values)


def test_zero_threshold_disables_and_encoding_is_canonical(tmp_path: Path) -> None:
    cfg = _build(tmp_path, near_dup_threshold=0, encoding="GBK", split_ratios=[1, 0, 0], strip_markdown=True)
    assert cfg.near_dup_threshold is None
    assert cfg.encoding == "gbk"
    assert cfg.strip_markdown is True
