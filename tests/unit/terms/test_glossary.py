"""Reading term files (terms.tsv, glossaries, term<TAB>freq), normalising terms, and `load_terms`."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.terms.glossary import (
    MINED_COLUMNS,
    load_terms,
    normalise_term,
    read_term_file,
    term_problem,
    write_terms_tsv,
)


def test_plain_glossary_keeps_file_order_and_skips_blanks_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_text("# my terms\n心肌梗死\n\n急性心肌梗死\r\nforce majeure\n", encoding="utf-8")
    result = read_term_file(path)
    assert [e.term for e in result.entries] == ["心肌梗死", "急性心肌梗死", "force majeure"]
    assert result.malformed == 0 and not result.has_header
    assert result.entries[1].where == f"{path}:4"


def test_term_freq_glossary_is_ordered_by_freq(tmp_path: Path) -> None:
    path = tmp_path / "thuocl.txt"
    path.write_text("版权\t13\n不可抗力事件\t1842\n模式\t450\n", encoding="utf-8-sig")  # with a BOM
    result = read_term_file(path)
    assert [(e.term, e.freq) for e in result.entries] == [("不可抗力事件", 1842), ("模式", 450), ("版权", 13)]


def test_malformed_lines_are_counted_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("good\t5\nbad\tmany\nthree\t1\t2\n\t7\nfine\n", encoding="utf-8")
    result = read_term_file(path)
    assert [e.term for e in result.entries] == ["good", "fine"]
    assert result.malformed == 3
    assert f"{path}:2" in caplog.text and "'many' is not a number" in caplog.text


def test_terms_tsv_and_folder_are_read_by_score(tmp_path: Path) -> None:
    folder = tmp_path / "mined"
    folder.mkdir()
    rows = [("low", 1.5, 9, "en"), ("high", 9.25, 3, "en"), ("mid", 4.0, 5, "en")]
    assert write_terms_tsv(folder / "terms.tsv", MINED_COLUMNS, rows) == 3
    assert (folder / "terms.tsv").read_text(encoding="utf-8").splitlines()[:2] == [
        "term\tscore\tfreq\tlang",
        "low\t1.5000\t9\ten",
    ]
    result = read_term_file(folder)
    assert result.has_header
    assert [(e.term, e.score, e.freq) for e in result.entries] == [("high", 9.25, 3), ("mid", 4.0, 5), ("low", 1.5, 9)]


def test_non_utf8_glossary_names_the_file_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "gbk.txt"
    path.write_bytes("不可抗力\n人民法院\n".encode("gb18030"))
    with pytest.raises(InputFormatError, match=r"gbk\.txt is not UTF-8.*iconv"):
        read_term_file(path)


def test_missing_file_and_folder_without_terms(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError, match=r"nope\.txt"):
        read_term_file(tmp_path / "nope.txt")
    with pytest.raises(InputFormatError, match=r"has no terms\.tsv"):
        read_term_file(tmp_path)


def test_normalise_term() -> None:
    assert normalise_term("  ＦＯＲＣＥ \t Majeure ") == "FORCE Majeure"
    assert normalise_term("Force  Majeure", lowercase=True) == "force majeure"
    assert normalise_term("不可抗力") == "不可抗力"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("ok", None),
        ("x", "too_short"),
        ("  y  ", "too_short"),
        ("a" * 33, "too_long"),
        ("12-34", "no_letters"),
        ("...", "no_letters"),
        ("bad\x00term", "control_chars"),
        ("zero\u200bwidth", "control_chars"),
        ("不可抗力", None),
    ],
)
def test_term_problem(raw: str, problem: str | None) -> None:
    assert term_problem(raw) == problem


def test_load_terms_normalises_dedups_and_filters(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_text("Force Majeure\nforce  majeure\nＦＯＲＣＥ MAJEURE\nx\n不可抗力\n", encoding="utf-8")
    assert load_terms(path) == ["Force Majeure", "不可抗力"]
