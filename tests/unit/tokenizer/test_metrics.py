from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from lmtailor.tokenizer.metrics import measure
from lmtailor.tokenizer.protect import TermMatcher


def _wordpiece() -> Tokenizer:
    vocab = {t: i for i, t in enumerate(["[UNK]", "force", "maj", "##eure", "applies", "心肌梗死", "患", "##者", ","])}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    return tok


def test_known_answer_metrics():
    texts = ["Force majeure applies, here", "心肌梗死患者"]
    matcher = TermMatcher(["force majeure", "applies", "心肌梗死"], lowercase=True)
    [r] = measure({"wp": _wordpiece()}, [texts], matcher).values()
    # Tokens: force | maj ##eure | applies | , | [UNK]   and   心肌梗死患者 is one pre-token -> [UNK].
    assert r["tokens"] == 7 and r["words"] == 4
    assert r["whole_word_coverage"] == 0.75  # majeure is split; "here" is one [UNK] token
    assert r["tokens_per_word"] == 1.25  # (1 + 2 + 1 + 1) / 4
    assert r["unk_rate"] == round(2 / 7, 4)
    assert r["han_chars"] == 6 and r["tokens_per_han_char"] == round(1 / 6, 4)
    assert r["han_char_coverage"] == 0.0  # all six sit in the [UNK]
    # force majeure: 3 tokens (broken); applies: intact; 心肌梗死 sits inside one [UNK] that is wider than the term.
    assert r["term_occurrences"] == 3 and r["term_integrity"] == round(1 / 3, 4)
    assert r["most_broken_terms"] == {"force majeure": 1, "心肌梗死": 1}


def test_han_character_coverage_counts_characters_outside_unk_and_byte_fallback():
    vocab = {t: i for i, t in enumerate(["[UNK]", "<0xE9>", "<0x80>", "<0x9B>", "心肌梗死", "患", "者"])}
    tok = Tokenizer(models.BPE(vocab, [], unk_token="[UNK]", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")  # one character a pre-token
    [r] = measure({"bpe": tok}, [["心肌梗死患者逛"]], None).values()
    # One character a pre-token, no merges: 心 肌 梗 死 are not tokens and their bytes are not either -> [UNK];
    # 患 and 者 are tokens; 逛 becomes its three byte tokens. Covered: 患 and 者.
    assert r["han_chars"] == 7 and r["han_char_coverage"] == round(2 / 7, 4)
