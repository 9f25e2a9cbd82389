from lmtailor.tokenizer.pipeline import build_normalizer
from lmtailor.tokenizer.protect import ProtectedTerms, TermMatcher


def test_terms_are_split_by_protection_mechanism():
    p = ProtectedTerms.from_terms(["Indemnification", "force majeure", "心肌梗死", "  ", "DNA测序", "indemnification"],
                                  build_normalizer(lowercase=True))  # fmt: skip
    assert p.vocab_words == ["indemnification"]
    assert p.added == ["force▁majeure", "心肌梗死", "dna测序"]
    assert p.dropped == ["  "]
    contents = [t.content for t in p.added_tokens()]
    assert contents == ["force▁majeure", "▁force▁majeure", "心肌梗死", "dna测序", "▁dna测序"]


def test_matcher_is_leftmost_longest_and_respects_word_boundaries():
    m = TermMatcher(["心肌梗死", "急性心肌梗死", "law", "Force Majeure"], lowercase=True)
    [occ] = m.find(["急性心肌梗死和心肌梗死; the law, a lawyer; FORCE MAJEURE."])
    assert [t for _, _, t in occ] == ["急性心肌梗死", "心肌梗死", "law", "force majeure"]
    assert occ[0][:2] == (0, 6) and occ[1][:2] == (7, 11)


def test_matcher_split_removes_terms():
    m = TermMatcher(["不可抗力"], lowercase=True)
    assert list(m.split(["因不可抗力不能履行", "无"])) == ["因", "不能履行", "无"]
