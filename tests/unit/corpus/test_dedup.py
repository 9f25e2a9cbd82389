"""Exact and near-duplicate detection."""

from __future__ import annotations

from datasketch import MinHash

from lmtailor.corpus.dedup import ExactDedup, NearDupIndex, record_digest, shingle_hashes, shingles

BASE = (
    "The Supplier shall deliver the Products to the Purchaser at the Delivery Point on the dates set out in the "
    "Schedule, and title and risk in the Products shall pass to the Purchaser upon delivery. The Purchaser shall "
    "inspect the Products within ten business days after delivery and notify the Supplier of any defect. "
)
OTHER = (
    "This Agreement is governed by the laws of the State of New York without regard to its conflict of laws "
    "principles, and each party submits to the exclusive jurisdiction of the courts located in New York County. "
)


def _sketch(index: NearDupIndex, *records: str) -> MinHash | None:
    sketch = index.new_sketch()
    for text in records:
        sketch.add(text)
    return sketch.finish()


def test_exact_dedup_commits_only_kept_documents() -> None:
    dedup = ExactDedup()
    assert dedup.is_new("a") and not dedup.is_new("a")  # a repeat inside the same document
    dedup.discard()
    assert dedup.is_new("a")  # the discarded document left nothing behind
    dedup.commit()
    assert not dedup.is_new("a")
    assert record_digest("a") == record_digest("a") != record_digest("b")
    assert record_digest("a") < 2**64


def test_shingles_are_word_5grams_for_latin_and_char_5grams_for_cjk() -> None:
    assert shingles("One two three four five six") == ["one two three four five", "two three four five six"]
    assert shingles("中华人民共和国") == ["中 华 人 民 共", "华 人 民 共 和", "人 民 共 和 国"]
    assert shingles("short text") == ["short text"]
    assert shingles("!!!") == []
    assert len(shingle_hashes("One two three four five six")) == 2
    assert shingle_hashes("x y z") == shingle_hashes("X, y; z.")  # case and punctuation do not matter


def test_near_duplicate_document_is_found_and_original_named() -> None:
    index = NearDupIndex(threshold=0.8, num_perm=128)
    assert index.check_and_add("a.txt", _sketch(index, BASE * 3, OTHER)) is None
    assert index.check_and_add("b.txt", _sketch(index, OTHER * 2)) is None
    almost = (BASE * 3).replace("ten business days", "ten (10) business days")
    assert index.check_and_add("c.txt", _sketch(index, almost, OTHER)) == "a.txt"


def test_document_without_tokens_has_no_sketch() -> None:
    index = NearDupIndex(threshold=0.8)
    assert _sketch(index, "...", "!!!") is None
