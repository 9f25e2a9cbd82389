"""Paragraph and sentence segmentation: exact splits for Chinese and English, chunking, and streaming."""

from __future__ import annotations

from lmtailor.corpus.normalize import normalize
from lmtailor.corpus.readers import text_lines
from lmtailor.corpus.segment import iter_blocks, iter_units, pack, segment_document, sentence_ends

ZH = "第一条 为了保护民事主体的合法权益，制定本法。第二条 他说：“你好！”然后走了？是的；结束"
EN = (
    "Mr. Smith works for Acme Inc. in the U.S. market. He paid $5.00 on Jan. 3, e.g. by wire. "
    'See Section 1.5. of the Agreement. "Yes," he said. It ended in 2015. Why? Because! '
    "The following apply: 1. The Company shall pay. 2. The Buyer shall accept."
)


def _sentences(text: str) -> list[str]:
    text = normalize(text)
    return list(pack(text, sentence_ends(text), "sentence", 10_000))


def test_chinese_sentences() -> None:
    assert _sentences(ZH) == [
        "第一条 为了保护民事主体的合法权益,制定本法。",
        "第二条 他说:“你好!”",
        "然后走了?",
        "是的;",
        "结束",
    ]


def test_english_sentences_respect_abbreviations_and_numbers() -> None:
    assert _sentences(EN) == [
        "Mr. Smith works for Acme Inc. in the U.S. market.",
        "He paid $5.00 on Jan. 3, e.g. by wire.",
        "See Section 1.5. of the Agreement.",
        '"Yes," he said.',
        "It ended in 2015.",
        "Why?",
        "Because!",
        "The following apply: 1. The Company shall pay.",
        "2. The Buyer shall accept.",
    ]


def test_closing_bracket_stays_with_sentence() -> None:
    assert _sentences("(This is one.) That is two.") == ["(This is one.)", "That is two."]


def test_long_paragraph_is_packed_at_sentence_ends() -> None:
    text = "Aaaa aaaa. Bbbb bbbb. Cccc cccc. Dddd dddd."
    assert list(pack(text, sentence_ends(text), "paragraph", 21)) == ["Aaaa aaaa. Bbbb bbbb.", "Cccc cccc. Dddd dddd."]


def test_overlong_sentence_is_cut_at_a_space_or_hard() -> None:
    text = "one two three four five six"
    assert list(pack(text, [], "paragraph", 16)) == ["one two three", "four five six"]
    assert list(pack("一" * 25, [], "paragraph", 10)) == ["一" * 10, "一" * 10, "一" * 5]


def test_blocks_join_lines_and_split_on_blank_lines() -> None:
    lines = text_lines("first line\nsecond line\n\u200b\n中文第一行\n第二行\n\n\nlast")
    assert list(iter_blocks(lines)) == [
        ("first line second line", True),
        ("中文第一行第二行", True),  # no space between two CJK characters
        ("last", True),
    ]


def test_layout_breaks_after_sentence_ends_split_paragraphs() -> None:
    lines = ["Title here   Party A: X Co., Ltd.   I. Party A agrees.    II. Party B agrees."]
    assert [b for b, _ in iter_blocks(lines)] == [
        "Title here   Party A: X Co., Ltd.",
        "I. Party A agrees.",
        "II. Party B agrees.",
    ]


def test_streaming_a_block_without_blank_lines_gives_bounded_records() -> None:
    sentence = "The party shall deliver the goods on time. "
    lines = [sentence * 40 + "\n"] * 50  # one block of 86,000 characters, no blank line anywhere
    small = list(iter_units(iter_blocks(lines, flush_chars=500), "paragraph", 300))
    assert all(len(r) <= 300 for r in small)
    assert " ".join(small) == normalize("".join(lines).replace("\n", " "))
    assert list(iter_units(iter_blocks(lines, flush_chars=500), "sentence", 300)) == [sentence.strip()] * 2000


def test_streaming_a_sentence_without_ends_is_hard_cut() -> None:
    pieces = ["字" * 1000] * 10  # pieces of one 10,000-character line without any sentence end
    records = list(iter_units(iter_blocks(pieces, flush_chars=1500), "paragraph", 2000))
    assert "".join(records) == "字" * 10_000
    assert all(len(r) <= 2000 for r in records)


def test_segment_document_markdown_and_units() -> None:
    md = "# Title\n\n第一条 本法。第二条 施行。\n"
    assert list(segment_document(text_lines(md), markdown=True)) == ["第一条 本法。第二条 施行。"]
    assert list(segment_document(text_lines(md), markdown=True, unit="sentence")) == ["第一条 本法。", "第二条 施行。"]
    assert list(segment_document(text_lines(md))) == ["# Title", "第一条 本法。第二条 施行。"]
