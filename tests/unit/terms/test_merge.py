"""Merging: priority, de-duplication, filters with reasons, the cap, and counting terms in a corpus."""

from __future__ import annotations

from pathlib import Path

from lmtailor.terms.glossary import MINED_COLUMNS, TermEntry, TermFile, read_term_file, write_terms_tsv
from lmtailor.terms.merge import MergeReport, cap_terms, collect_terms, filter_by_corpus, priority_rows
from lmtailor.terms.occurrences import count_occurrences


def _file(*terms: str) -> TermFile:
    return TermFile(Path("x"), [TermEntry(t, None, None, f"x:{i}") for i, t in enumerate(terms, 1)])


def test_earlier_inputs_win_and_duplicates_keep_the_first_form() -> None:
    report = MergeReport()
    files = [
        ("mined", _file("Force Majeure", "不可抗力")),
        ("glossary", _file("force  majeure", "人民法院", "不可抗力")),
    ]
    terms = collect_terms(files, lowercase=False, max_chars=32, report=report)
    assert [(t.term, t.source) for t in terms] == [
        ("Force Majeure", "mined"),
        ("不可抗力", "mined"),
        ("人民法院", "glossary"),
    ]
    assert report.read == 5 and report.duplicates == 2


def test_lowercase_option() -> None:
    terms = collect_terms([("g", _file("Force Majeure"))], lowercase=True, max_chars=32, report=MergeReport())
    assert [t.term for t in terms] == ["force majeure"]


def test_filters_are_counted_by_reason() -> None:
    report = MergeReport()
    files = [("g", _file("a", "b" * 40, "123", "ok\x07", "good term", "合同"))]
    terms = collect_terms(files, lowercase=False, max_chars=32, report=report)
    assert [t.term for t in terms] == ["good term", "合同"]
    assert dict(report.filtered) == {"too_short": 1, "too_long": 1, "no_letters": 1, "control_chars": 1}


def test_priority_inside_files_follows_score_then_freq(tmp_path: Path) -> None:
    mined = tmp_path / "terms.tsv"
    write_terms_tsv(mined, MINED_COLUMNS, [("beta", 1.0, 5, "en"), ("alpha", 3.0, 2, "en")])
    glossary = tmp_path / "g.txt"
    glossary.write_text("rare\t2\ncommon\t90\n", encoding="utf-8")
    files = [("terms.tsv", read_term_file(mined)), ("g.txt", read_term_file(glossary))]
    terms = collect_terms(files, lowercase=False, max_chars=32, report=MergeReport())
    assert [(t.term, t.freq) for t in terms] == [("alpha", 2), ("beta", 5), ("common", 90), ("rare", 2)]


def test_corpus_filter_and_cap() -> None:
    report = MergeReport()
    terms = collect_terms([("g", _file("alpha", "beta", "gamma", "delta"))], False, 32, report)
    kept = filter_by_corpus(terms, [5, 0, 2, 9], min_freq=2, report=report)
    assert [(t.term, t.freq) for t in kept] == [("alpha", 5), ("gamma", 2), ("delta", 9)]
    capped = cap_terms(kept, 2, report)
    assert [t.term for t in capped] == ["alpha", "gamma"]
    assert report.as_metrics() == {
        "read": 4,
        "malformed_lines": 0,
        "duplicates": 0,
        "filtered": {"below_min_corpus_freq": 1},
        "capped": 1,
        "kept": 2,
    }


def test_priority_rows_fall_from_one() -> None:
    terms = collect_terms([("g", _file("alpha", "beta"))], False, 32, MergeReport())
    assert priority_rows(terms) == [("alpha", "1.000000", "", "g"), ("beta", "0.500000", "", "g")]


def test_count_occurrences_word_boundaries_case_and_han() -> None:
    texts = [
        "The LAW of lawyers: Force\nMajeure and force  majeure apply.",
        "因不可抗力不能履行的，不可抗力事件。人民法院",
        "aaa 哈哈哈",
    ]
    terms = ["law", "Force Majeure", "不可抗力", "人民法院", "lawyer", "aa", "哈哈", "absent", "LAW"]
    # "aa" is glued inside "aaa"; Han terms have no word boundaries, and overlapping matches count.
    assert count_occurrences(terms, texts) == [1, 2, 2, 1, 0, 0, 2, 0, 1]


def test_count_occurrences_across_chunks(monkeypatch) -> None:
    import lmtailor.terms.occurrences as occ

    monkeypatch.setattr(occ, "_CHUNK_CHARS", 8)
    texts = ["合同约定不可抗力", "不可抗力", "x", "force majeure here"]
    assert count_occurrences(["不可抗力", "force majeure", "合同"], texts) == [2, 1, 1]
    assert count_occurrences([], texts) == []
