import json

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers

from lmtailor.errors import ConfigError
from lmtailor.vocab.selection import alphabet_ids, close_merges, select
from lmtailor.vocab.tokenizer_edit import trim_tokenizer_json

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "##a", "##b", "##c", "ab", "##ca", "cab", "bac"]


def _wordpiece_json() -> dict:
    tok = Tokenizer(models.WordPiece({t: i for i, t in enumerate(VOCAB)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.add_special_tokens(VOCAB[:5])
    return json.loads(tok.to_str())


def test_wordpiece_alphabet_is_single_chars_and_their_continuations():
    assert sorted(alphabet_ids(_wordpiece_json())) == [5, 6, 7, 8, 9, 10]


def test_known_answer_trimming_map():
    tok_json = _wordpiece_json()
    # counts per old id: "ab" used 50x, "cab" 30x, "##ca" 1x, "bac" never
    counts = np.zeros(len(VOCAB), dtype=np.int64)
    counts[[11, 13, 12]] = [50, 30, 1]
    required = {0, 1, 2, 3, 4} | alphabet_ids(tok_json)
    sel = select(counts, required, coverage=0.98, size=None)
    assert sel.kept == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]  # "##ca" (1 of 81) and "bac" (unused) go
    old_to_new = {old: new for new, old in enumerate(sel.kept)}
    assert old_to_new[13] == 12
    new = trim_tokenizer_json(tok_json, old_to_new)
    assert new["model"]["vocab"] == {t: i for i, t in enumerate([*VOCAB[:12], "cab"])}
    trimmed = Tokenizer.from_str(json.dumps(new))
    assert trimmed.encode("cab ca bac").tokens == ["cab", "c", "##a", "b", "##a", "##c"]  # no [UNK]


def test_size_target_and_its_floor():
    counts = np.arange(len(VOCAB), dtype=np.int64)
    assert len(select(counts, {0, 1}, coverage=None, size=6).kept) == 6
    with pytest.raises(ConfigError, match="--size 1 is smaller than the 2 tokens"):
        select(counts, {0, 1}, coverage=None, size=1)
    with pytest.raises(ConfigError, match="no tokens"):
        select(np.zeros(3, dtype=np.int64), {0}, coverage=0.9, size=None)


def test_bpe_kept_set_is_closed_under_merge_parts():
    vocab = {"a": 0, "b": 1, "c": 2, "ab": 3, "abc": 4, "bc": 5}
    tok_json = json.loads(Tokenizer(models.BPE(vocab, [("a", "b"), ("ab", "c"), ("b", "c")])).to_str())
    assert close_merges(tok_json, {4}) == {4, 3, 0, 1, 2}
    new = trim_tokenizer_json(tok_json, {0: 0, 1: 1, 2: 2, 3: 3, 4: 4})
    assert new["model"]["merges"] == [["a", "b"], ["ab", "c"]]  # "bc" was dropped, so its merge goes too
