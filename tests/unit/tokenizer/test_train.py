import pytest

from lmtailor.errors import ConfigError, EmptyInputError
from lmtailor.tokenizer.config import TokenizerTrainConfig
from lmtailor.tokenizer.train import train_tokenizer

CORPUS = [
    "因不可抗力不能履行合同的，根据不可抗力的影响，部分或者全部免除责任。",
    "急性心肌梗死患者应当立即治疗，心肌梗死是常见病。",
    "The force majeure clause, the indemnification clause and the governing law clause apply.",
] * 50
TERMS = ["不可抗力", "心肌梗死", "急性心肌梗死", "force majeure", "indemnification", "law", "licenses granted"]


def _cfg(**kw) -> TokenizerTrainConfig:
    return TokenizerTrainConfig(inputs=["unused"], out_dir="unused", show_progress=False, **({"vocab_size": 500} | kw))


def test_bpe_known_answer():
    tok, report = train_tokenizer(CORPUS, TERMS, _cfg(algorithm="bpe"))
    enc = tok.encode("The force majeure clause; 因不可抗力不能履行", add_special_tokens=False)
    assert enc.tokens == ["▁the", "▁force▁majeure", "▁clause", "<0x3B>", "▁", "因", "不可抗力", "不能履行"]
    assert report["protected_as_vocab_words"] == 2 and report["protected_as_added_tokens"] == 5


@pytest.mark.parametrize("algorithm", ["bpe", "unigram", "wordpiece"])
def test_latin_terms_do_not_match_inside_words(algorithm):
    tok, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm=algorithm))
    for text in ["all sublicenses granted", "(sublicenses granted)"]:
        pieces = [text[a:b].strip() for a, b in tok.encode(text, add_special_tokens=False).offsets]
        assert "licenses granted" not in pieces, (text, pieces)


@pytest.mark.parametrize("algorithm", ["bpe", "unigram", "wordpiece"])
def test_protected_terms_are_one_token_wherever_they_occur(algorithm):
    tok, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm=algorithm))
    cases = {
        "急性心肌梗死和心肌梗死": ["急性心肌梗死", "心肌梗死"],
        "前不可抗力后": ["不可抗力"],
        "A Force Majeure event": ["force majeure"],
        "(indemnification)": ["indemnification"],
        "Indemnification of the law": ["indemnification", "law"],
        "all licenses granted, (licenses granted)": ["licenses granted"],
    }
    for text, terms in cases.items():
        enc = tok.encode(text, add_special_tokens=False)
        pieces = [text[a:b].strip().lower() for a, b in enc.offsets]
        for term in terms:
            assert term in pieces, (algorithm, text, enc.tokens)


def test_bpe_protects_single_words_only_as_whole_words():
    # Added tokens would match "law" inside "lawyer"; vocabulary words only match a whole pre-token.
    tok, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm="bpe"))
    assert "▁law" not in tok.encode("the lawyer", add_special_tokens=False).tokens
    assert "▁law" in tok.encode("the law", add_special_tokens=False).tokens


@pytest.mark.parametrize("algorithm", ["bpe", "unigram", "wordpiece"])
def test_no_unknown_token_and_lossless_decode(algorithm):
    tok, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm=algorithm))
    text = "罕见字龘𠀀, Ωμέγα кириллица 😀 § 12.5% — 心肌梗死"
    enc = tok.encode(text, add_special_tokens=False)
    assert tok.token_to_id("[UNK]") not in enc.ids
    assert tok.decode(enc.ids) == text.lower()


def test_vocab_too_small_for_alphabet_and_terms():
    with pytest.raises(ConfigError, match="vocab_size=300 is too small"):
        train_tokenizer(CORPUS, [f"术语{i}" for i in range(100)], _cfg(vocab_size=300))


def test_empty_training_text():
    with pytest.raises(EmptyInputError):
        train_tokenizer(["   ", ""], [], _cfg())


def test_same_inputs_same_tokenizer():
    a, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm="unigram"))
    b, _ = train_tokenizer(CORPUS, TERMS, _cfg(algorithm="unigram"))
    assert a.to_str() == b.to_str()


@pytest.mark.parametrize("algorithm", ["bpe", "wordpiece"])
def test_budget_is_met_exactly_and_protected_words_survive_truncation(algorithm):
    words = ["clause", "obligations", "apply", "indemnification", "law"]
    tok, report = train_tokenizer(CORPUS, [*TERMS, *words], _cfg(algorithm=algorithm, vocab_size=360))
    assert report["vocab_size"] == tok.get_vocab_size() == 360
    enc = tok.encode("the indemnification clause obligations apply law", add_special_tokens=False)
    assert len(enc.ids) == 6


def test_whole_word_share_makes_frequent_words_single_tokens():
    corpus = [f"the {w} clause binds the parties" for w in ["warranty", "termination", "assignment"] * 40]
    plain, _ = train_tokenizer(corpus, [], _cfg(vocab_size=300, min_frequency=40, whole_word_share=0.0))
    rich, _ = train_tokenizer(corpus, [], _cfg(vocab_size=300, min_frequency=40, whole_word_share=0.5))
    text = "the warranty termination assignment"
    assert len(rich.encode(text, add_special_tokens=False).ids) == 4
    assert len(plain.encode(text, add_special_tokens=False).ids) > 4


def test_character_level_tokenizer_keeps_only_protected_terms_whole():
    tok, report = train_tokenizer(CORPUS, ["心肌梗死"], _cfg(algorithm="bpe", max_token_length=1))
    assert tok.encode("急性心肌梗死患者", add_special_tokens=False).tokens == ["▁", "急", "性", "心肌梗死", "患", "者"]
    plain, _ = train_tokenizer(CORPUS, [], _cfg(algorithm="bpe", max_token_length=1))
    enc = plain.encode("急性心肌梗死患者 clause", add_special_tokens=False)
    assert all(len(t.lstrip("▁")) <= 1 for t in enc.tokens), enc.tokens
    assert plain.decode(enc.ids) == "急性心肌梗死患者 clause"
    assert report["vocab_size"] < 500  # the alphabet, byte fallback and the term: no learned merges fill the budget


def test_examples_show_a_byte_fallback_character_once_and_count_every_token():
    from lmtailor.tokenizer.report import examples

    tok, _ = train_tokenizer(CORPUS, ["心肌梗死"], _cfg(algorithm="bpe", max_token_length=1))
    text = "逛心肌梗死患者"  # 逛 is not in the alphabet: three byte-fallback tokens
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.tokens[:4] == ["▁", "<0xE9>", "<0x80>", "<0x9B>"]
    row = examples({"domain": tok}, [text], None, 1)[0]
    assert row["domain"][:4] == ["逛", "心肌梗死", "患", "者"]
    assert row["counts"]["domain"] == len(enc.ids) == 7


def test_a_vocabulary_the_text_cannot_fill_is_announced(caplog):
    # Before: --vocab-size 10000000 silently gave a few thousand tokens.
    with caplog.at_level("WARNING", logger="lmtailor.tokenizer.train"):
        _, report = train_tokenizer(["a small text, a small text."] * 10, [], _cfg(vocab_size=50_000))
    assert report["vocab_size"] < 1000 and report["target_vocab_size"] == 50_000
    assert f"the tokenizer has {report['vocab_size']:,} tokens, not the 50,000 asked for" in caplog.text
    with pytest.raises(ValueError, match="less than or equal to 1000000"):
        _cfg(vocab_size=10_000_000)
