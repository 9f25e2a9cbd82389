from tokenizers import pre_tokenizers

from lmtailor.tokenizer.pipeline import build_normalizer, build_pre_tokenizer, to_byte_level


def test_normalizer_nfkc_lowercase_and_spaces():
    n = build_normalizer(lowercase=True)
    assert n.normalize_str("Force  Majeure（ＡＢ）\t合同") == "force▁majeure(ab)▁合同"
    assert build_normalizer(lowercase=False).normalize_str("Force Majeure") == "Force▁Majeure"


def test_pre_tokenizer_splits_han_runs_words_digits_punct():
    n, p = build_normalizer(True), build_pre_tokenizer(byte_level=False)
    pieces = [t for t, _ in p.pre_tokenize_str(n.normalize_str("The force majeure,合同(contract)条款 2010年"))]
    assert pieces == [
        "▁the",
        "▁force",
        "▁majeure",
        ",",
        "合同",
        "(",
        "contract",
        ")",
        "条款",
        "▁2",
        "0",
        "1",
        "0",
        "年",
    ]


def test_byte_level_spelling_matches_hf():
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    for text in ["▁心肌梗死", "abc é ü", "§ 1.5"]:
        assert to_byte_level(text) == "".join(t for t, _ in bl.pre_tokenize_str(text))


def test_python_normalisation_matches_the_tokenizers_normaliser():
    from lmtailor.tokenizer.pipeline import normalize_text

    samples = [
        "Force  Majeure（ＡＢ）\t合同\n\n第1条",
        "ﬁnancial Ⅻ ½ İstanbul ΣΑΣ",
        "a\u3000b\u00a0c\u2028d",
        "①②③ ㈱ ﾊﾝｶｸ",
    ]
    for lowercase in (True, False):
        rust = build_normalizer(lowercase)
        for text in samples:
            assert normalize_text(text, lowercase) == rust.normalize_str(text), text
