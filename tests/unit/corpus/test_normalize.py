"""Known answers for character normalisation and the script counts behind stats.json."""

from __future__ import annotations

import pytest

from lmtailor.corpus.normalize import (
    bad_char_share,
    collapse_whitespace,
    is_blank,
    normalize,
    script_counts,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ　１２３", "ABC 123"),  # full-width ASCII and ideographic space become ASCII
        ("第一条\u200b（一）　本法", "第一条(一) 本法"),  # zero-width space dropped, full-width brackets
        ("  a\t\tb\n\nc  ", "a b c"),
        ("x\x00y\x07z\ufeff", "xyz"),  # controls and BOM dropped
        ("private\ue000use", "privateuse"),
        ("§ 1.5 · 50% a-b/c", "§ 1.5 · 50% a-b/c"),  # punctuation kept
        ("ﬁnance ½", "finance 1⁄2"),  # NFKC compatibility forms
        ("emoji 😀 and 𠀀", "emoji 😀 and 𠀀"),  # astral letters and symbols survive
    ],
)
def test_normalize_known_answers(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_normalize_without_nfkc_keeps_full_width() -> None:
    assert normalize("ＡＢＣ\u200b", nfkc=False) == "ＡＢＣ"


def test_collapse_whitespace_can_keep_edges() -> None:
    assert collapse_whitespace("  a   b ", strip=False) == " a b "
    assert collapse_whitespace("a b", strip=False) == "a b"
    assert collapse_whitespace("   ", strip=False) == " "


def test_is_blank_sees_through_invisible_characters() -> None:
    assert is_blank("")
    assert is_blank("  \t")
    assert is_blank("\u200b")
    assert not is_blank("a")
    assert not is_blank("。")


def test_bad_char_share_counts_controls_not_whitespace() -> None:
    assert bad_char_share("abc\n\t ") == 0.0
    assert bad_char_share("a\x01b\ue000") == 0.5


def test_script_counts_han_latin_other() -> None:
    assert script_counts("Hello Ünïcode 世界 Привет 123") == (2, 12, 6)
