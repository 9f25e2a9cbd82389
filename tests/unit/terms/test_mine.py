"""Known-answer tests of the English miner and of per-text language detection."""

from __future__ import annotations

import pytest

from lmtailor.terms.mine import EnglishParams, mine_english, split_segments
from lmtailor.terms.script import detect_language
from lmtailor.terms.stopwords import ENGLISH_STOPWORDS

PARTIES = ["supplier", "customer", "licensor", "distributor", "vendor", "buyer"]
FORCE_MAJEURE = [
    "Neither {p} is liable for any failure caused by force majeure.",
    "A force majeure event affecting the {p} includes fire, flood and war.",
    "Notice of force majeure must be given by the {p} promptly.",
    "The {p} may invoke force majeure when strikes stop work.",
    "Delays from force majeure do not make the {p} default.",
]
GOVERNING_LAW = [
    "The governing law of this contract binds the {p}.",
    "Questions about governing law are settled for the {p} in court.",
    "Each {p} accepts the governing law chosen here.",
    "Disputes with the {p} follow the governing law clause.",
    "The {p} agreed that governing law is New York.",
]
FILLER = [
    "Payment is due within thirty days of the invoice to the {p}.",
    "The {p} keeps records for three years after delivery.",
    "All notices to the {p} are sent by mail or email.",
]


def contract_texts() -> list[str]:
    return [t.format(p=p) for p in PARTIES for t in FORCE_MAJEURE + GOVERNING_LAW + FILLER]


def test_force_majeure_and_governing_law_are_the_top_multiword_terms() -> None:
    result = mine_english(contract_texts(), EnglishParams(min_count=3))
    multi = [t.term for t in result.terms if " " in t.term]
    assert set(multi[:2]) == {"force majeure", "governing law"}
    fm = next(t for t in result.terms if t.term == "force majeure")
    assert fm.freq == 30 and fm.lang == "en"


def test_no_term_starts_or_ends_with_a_stopword() -> None:
    result = mine_english(contract_texts(), EnglishParams(min_count=3))
    terms = [t.term for t in result.terms]
    assert "of the" not in terms and "the governing law" not in terms and "governing law of" not in terms
    for term in terms:
        words = term.split()
        assert words[0] not in ENGLISH_STOPWORDS and words[-1] not in ENGLISH_STOPWORDS, term
        assert not any(ch.isdigit() for ch in term)


def test_fragment_inside_a_longer_term_is_not_a_term() -> None:
    # "majeure" never occurs outside "force majeure": nothing is left for it as a word of its own.
    result = mine_english(contract_texts(), EnglishParams(min_count=3))
    assert "majeure" not in {t.term for t in result.terms}


def test_scores_are_sorted_and_deterministic() -> None:
    first = mine_english(contract_texts(), EnglishParams(min_count=3)).terms
    second = mine_english(contract_texts(), EnglishParams(min_count=3)).terms
    assert first == second
    assert [t.score for t in first] == sorted((t.score for t in first), reverse=True)


def test_single_words_can_be_switched_off() -> None:
    result = mine_english(contract_texts(), EnglishParams(min_count=3, single_words=False))
    assert result.terms and all(" " in t.term for t in result.terms)


def test_segments_break_at_punctuation_digits_and_possessives() -> None:
    text = "The Licensor's rights, under Section 2.1 (Force Majeure) survive; co-operation isn't 10-K."
    assert split_segments(text) == [
        ["the", "licensor"],
        ["rights"],
        ["under", "section"],
        ["force", "majeure"],
        ["survive"],
        ["co-operation", "isn't"],
    ]


def test_empty_input_gives_no_terms() -> None:
    result = mine_english(["12345 !!!", "不可抗力"])
    assert result.terms == [] and result.units == 0


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("The force majeure clause applies.", "en"),
        ("因不可抗力不能履行合同的，部分或者全部免除责任。", "zh"),
        ("根据《民法典》第590条，Force Majeure（不可抗力）免除责任的规定适用于本案。", "zh"),
        ("The Chinese term 合同 means contract in English law texts.", "en"),
        ("12345 -- 678", None),
    ],
)
def test_detect_language(text: str, lang: str | None) -> None:
    assert detect_language(text) == lang
