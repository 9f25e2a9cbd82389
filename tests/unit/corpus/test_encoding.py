"""Encoding detection on files written by the test in each supported encoding, and the refusals."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from lmtailor.corpus.encoding import sniff_file

TEXT = "Article 1. 第一条 合同当事人应当遵循诚信原则。\nSecond line.\n"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le"), "utf-16"),
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("utf-16-le"), "utf-16-le"),
        (TEXT.encode("utf-16-be"), "utf-16-be"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le", "utf16be", "gbk", "gb18030"],
)
def test_detects_and_decodes(tmp_path: Path, data: bytes, expected: str) -> None:
    path = _write(tmp_path, "doc.txt", data)
    sniffed = sniff_file(path)
    assert sniffed.encoding == expected
    with open(path, encoding=sniffed.encoding) as fh:
        assert fh.read() == TEXT


def test_binary_file_is_refused_with_reason(tmp_path: Path) -> None:
    path = _write(tmp_path, "image.txt", bytes(range(256)) * 40)
    sniffed = sniff_file(path)
    assert sniffed.encoding is None
    assert sniffed.reason == "binary"
    assert str(path) in sniffed.detail


def test_control_characters_make_text_binary(tmp_path: Path) -> None:
    path = _write(tmp_path, "ctl.txt", ("abc\x01\x02\x03" * 100).encode("ascii"))
    assert sniff_file(path).reason == "binary"


def test_legacy_code_page_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin.txt", ("Café résumé, naïve façade. " * 20).encode("cp1252"))
    sniffed = sniff_file(path)
    assert sniffed.encoding is None
    assert sniffed.reason == "undecodable"
    assert "--encoding" in sniffed.detail and "UTF-8" in sniffed.detail


def test_other_cjk_encodings_are_not_misread_as_gbk(tmp_path: Path) -> None:
    japanese = ("日本語のテキストです。東京都の天気は晴れ。契約書の条項を確認してください。" * 20).encode("shift_jis")
    sniffed = sniff_file(_write(tmp_path, "ja.txt", japanese))
    assert sniffed.encoding is None and sniffed.reason == "undecodable"


def test_override_is_used_and_checked(tmp_path: Path) -> None:
    path = _write(tmp_path, "latin.txt", "Café résumé.".encode("cp1252"))
    assert sniff_file(path, "cp1252").encoding == "cp1252"
    bad = _write(tmp_path, "bad.txt", b"\xff\xfe\xfa broken")
    assert sniff_file(bad, "utf-8").reason == "undecodable"


def test_empty_file_is_text(tmp_path: Path) -> None:
    assert sniff_file(_write(tmp_path, "empty.txt", b"")).encoding == "utf-8"


@pytest.mark.parametrize(
    "text",
    ["Die Bürger Zürichs", "Le café est très bon. Où est la gare?", "He said “hello” – and paid 5 €."],
    ids=["german", "french", "quotes-euro"],
)
def test_short_cp1252_is_refused_with_cp1252_not_read_as_gb18030(tmp_path: Path, text: str) -> None:
    # Before: "Die Bürger Zürichs" was accepted as GB18030 and read as "Die B黵ger Z黵ichs".
    path = _write(tmp_path, "de.txt", text.encode("cp1252"))
    sniffed = sniff_file(path)
    assert sniffed.encoding is None and sniffed.reason == "undecodable"
    assert "--encoding cp1252" in sniffed.detail
    assert sniff_file(path, "cp1252").encoding == "cp1252"
    with open(path, encoding="cp1252") as fh:
        assert fh.read() == text


def test_short_simplified_chinese_gbk_is_still_read(tmp_path: Path) -> None:
    path = _write(tmp_path, "zh.txt", "合同法第一条".encode("gbk"))
    assert sniff_file(path).encoding == "gb18030"
    assert path.read_text(encoding="gb18030") == "合同法第一条"


ZH = "中华人民共和国合同法\n第一条 为了保护合同当事人的合法权益，维护社会经济秩序，促进社会主义现代化建设，制定本法。\n"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_chinese_utf16_without_bom_is_detected(tmp_path: Path, encoding: str) -> None:
    # Before: skipped as "contains NUL bytes and is not UTF-16" (too few NULs for the byte-lane test).
    path = _write(tmp_path, "zh16.txt", ZH.encode(encoding))
    sniffed = sniff_file(path)
    assert sniffed.encoding == encoding
    with open(path, encoding=sniffed.encoding) as fh:
        assert fh.read() == ZH


def test_binary_with_nuls_gives_the_right_reason(tmp_path: Path) -> None:
    sniffed = sniff_file(_write(tmp_path, "blob.txt", bytes(range(256)) * 8))
    assert sniffed.reason == "binary" and "neither UTF-16 (either byte order) nor UTF-8" in sniffed.detail
