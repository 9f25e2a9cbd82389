from collections import Counter

from lmtailor.tokenizer.fit import VocabPlan, fit_ordered, fit_unigram
from lmtailor.tokenizer.pipeline import BYTE_TOKENS, SPECIAL_TOKENS


def _bpe() -> dict:
    # specials, alphabet, then merges in learning order: ▁a+b, ▁ab+c, c+d
    tokens = [*SPECIAL_TOKENS, "▁", "a", "b", "c", "d", "▁a", "▁ab", "▁abc", "cd"]
    merges = [["▁", "a"], ["▁a", "b"], ["▁ab", "c"], ["c", "d"]]
    return {"vocab": {t: i for i, t in enumerate(tokens)}, "merges": merges}


def test_ordered_fit_drops_latest_learned_tokens_for_protected_words():
    model = _bpe()
    plan = VocabPlan(protected=["▁dd"])
    assert fit_ordered(model, plan, limit=14, byte_fallback=True) == 1
    vocab = list(model["vocab"])
    # "cd" (learned last) makes room for "▁dd"; byte tokens come after the budgeted tokens.
    assert vocab[:14] == [*SPECIAL_TOKENS, "▁", "a", "b", "c", "d", "▁a", "▁ab", "▁abc", "▁dd"]
    assert vocab[14:] == BYTE_TOKENS
    assert model["merges"] == [["▁", "a"], ["▁a", "b"], ["▁ab", "c"]]


def test_ordered_fit_keeps_protected_learned_words_and_drops_around_them():
    model = _bpe()
    plan = VocabPlan(protected=["▁abc", "▁dd"])
    fit_ordered(model, plan, limit=12, byte_fallback=False)
    vocab = list(model["vocab"])
    # three latest tokens go, skipping the protected "▁abc"; the alphabet always stays
    assert vocab == [*SPECIAL_TOKENS, "▁", "a", "b", "c", "d", "▁abc", "▁dd"]
    # every merge lost its result or a part; ignore_merges still maps the pre-token "▁abc" straight to its token
    assert model["merges"] == []


def test_frequent_words_fill_their_share():
    plan = VocabPlan.from_counts([], Counter({"▁ab": 9, "▁dc": 5, "▁bb": 1}), min_count=2, max_len=8, slots=1)
    assert plan.frequent == ["▁ab", "▁dc"]
    model = _bpe()
    fit_ordered(model, plan, limit=14, byte_fallback=False)
    assert "▁dc" in model["vocab"] and "▁ab" in model["vocab"] and "▁bb" not in model["vocab"]


def test_unigram_fit_gives_protected_words_top_score():
    vocab = [[t, 0.0] for t in SPECIAL_TOKENS] + [["▁", -1.0], ["a", -2.0], ["▁a", -3.0], ["ab", -4.0], ["b", -5.0]]
    model = {"vocab": vocab, "unk_id": 1}
    fit_unigram(model, VocabPlan(protected=["▁a", "▁ba"]), limit=10)
    pieces = dict((p, s) for p, s in model["vocab"])
    assert pieces["▁a"] == 0.0 and pieces["▁ba"] == 0.0
    assert "ab" not in pieces  # the least likely multi-character piece made room
    assert [p for p, _ in model["vocab"][:5]] == SPECIAL_TOKENS
