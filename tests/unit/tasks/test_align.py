"""NER alignment with a tokenizer that merges characters into one token (心肌梗死), or crosses an entity boundary."""

from __future__ import annotations

import numpy as np
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from lmtailor.tasks.align import (
    IGNORE,
    decode_cls,
    decode_ner,
    encode_cls,
    encode_ner,
    ner_alignment_stats,
    repair_iob2,
)
from lmtailor.tasks.readers import NerExample

TEXT = "患者心肌梗死入院"
#        0 1 2 3 4 5 6 7 ; entity 心肌梗死 = units 2..5
TAGS = ("O", "O", "B-dis", "I-dis", "I-dis", "I-dis", "O", "O")
LABELS = ["O", "B-dis", "I-dis"]
L2I = {t: i for i, t in enumerate(LABELS)}


def _tokenizer(pieces: list[str]) -> PreTrainedTokenizerFast:
    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *pieces])}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]")  # fmt: skip


def _example() -> NerExample:
    return NerExample(TEXT, tuple((i, i + 1) for i in range(len(TEXT))), TAGS, "t:1")


def test_merged_term_is_one_token_and_scores_on_characters():
    tok = _tokenizer(["患", "##者", "##心肌梗死", "##入", "##院"])
    enc = encode_ner(tok, [_example()], L2I, max_length=32, stride=4)
    assert tok.convert_ids_to_tokens(enc.features[0]["input_ids"]) == [
        "[CLS]",
        "患",
        "##者",
        "##心肌梗死",
        "##入",
        "##院",
        "[SEP]",
    ]
    # The merged token begins unit 2 and carries its tag; specials are ignored.
    assert enc.features[0]["labels"] == [IGNORE, 0, 0, L2I["B-dis"], 0, 0, IGNORE]
    assert enc.covers_of[0][3] == [3, 4, 5]
    # Predicting B-dis on that one token gives the four characters B I I I: the entity is right at character level.
    pred = [0, 0, 0, L2I["B-dis"], 0, 0, 0]
    assert decode_ner([_example()], enc, [pred], dict(enumerate(LABELS))) == [list(TAGS)]
    assert ner_alignment_stats([_example()], enc)["entities_crossing_token_boundaries"] == 0


def test_token_crossing_an_entity_boundary_is_counted():
    # "者心" glues the last character outside the entity to its first one: the entity cannot be predicted exactly.
    tok = _tokenizer(["患", "##者心", "##肌梗死", "##入", "##院"])
    enc = encode_ner(tok, [_example()], L2I, max_length=32, stride=4)
    assert enc.features[0]["labels"][2] == L2I["O"]  # the crossing token takes its first character's tag
    stats = ner_alignment_stats([_example()], enc)
    assert stats["entities_crossing_token_boundaries"] == 1 and stats["max_recall_from_tokenization"] == 0.0


def test_windows_cover_long_text_and_take_the_most_central_prediction():
    text = "abcdefghij"
    ex = NerExample(text, tuple((i, i + 1) for i in range(10)), ("O",) * 4 + ("B-dis",) + ("O",) * 5, "t:2")
    tok = _tokenizer(["a", *[f"##{c}" for c in "bcdefghij"]])
    enc = encode_ner(tok, [ex], L2I, max_length=6, stride=2)  # 4 content tokens per window, 2 shared
    assert len(enc.features) > 1 and set(enc.example_of) == {0}
    begun = sorted({u for units in enc.units_of for u in units if u >= 0})
    assert begun == list(range(10))  # every character is reached by some window
    # Every window predicts the gold tags of its own tokens: the decode must reproduce them.
    preds = [[L2I[ex.tags[u]] if u >= 0 else 0 for u in units] for units in enc.units_of]
    assert decode_ner([ex], enc, preds, dict(enumerate(LABELS))) == [list(ex.tags)]
    # Reordering the windows (the Trainer evaluates them shortest first) changes nothing.
    ordered = enc.sorted_by_length()
    preds = [[L2I[ex.tags[u]] if u >= 0 else 0 for u in units] for units in ordered.units_of]
    assert decode_ner([ex], ordered, preds, dict(enumerate(LABELS))) == [list(ex.tags)]


def test_repair_dangling_inside_tag():
    assert repair_iob2(["O", "I-a", "I-a", "I-b", "B-a"]) == ["O", "B-a", "I-a", "B-b", "B-a"]


@pytest.mark.parametrize("policy", ["head", "head_tail", "windows"])
def test_cls_long_text_policies(policy):
    tok = _tokenizer(["a", *[f"##{c}" for c in "bcdefghij"]])
    enc = encode_cls(tok, ["abcdefghij", "ab"], [1, 0], max_length=6, long_text=policy, stride=1)
    lengths = [len(f["input_ids"]) for f in enc.features]
    assert max(lengths) <= 6 and all(
        f["labels"] == [1, 0][e] for f, e in zip(enc.features, enc.example_of, strict=True)
    )
    if policy == "head_tail":  # 4 content tokens: 1 from the head, 3 from the tail
        assert tok.convert_ids_to_tokens(enc.features[0]["input_ids"]) == ["[CLS]", "a", "##h", "##i", "##j", "[SEP]"]
    if policy == "windows":
        assert enc.example_of.count(0) > 1
        probs = decode_cls(enc, np.zeros((len(enc.features), 2)), 2)
        assert np.allclose(probs, 0.5)


def test_head_tail_does_not_warn_about_the_long_texts_it_cuts():
    """head_tail tokenises whole texts before cutting them; transformers' "Token indices sequence length is longer
    than the specified maximum" would be printed for every long fact of a run, though nothing too long reaches the
    model."""
    import logging

    tok = _tokenizer(["a", *[f"##{c}" for c in "bcdefghij"]])
    tok.model_max_length = 6
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    hf = logging.getLogger("transformers")
    hf.addHandler(handler)
    try:
        enc = encode_cls(tok, ["abcdefghij"], [1], max_length=6, long_text="head_tail", stride=1)
        assert len(enc.features[0]["input_ids"]) == 6
        assert not [r for r in records if "sequence length is longer" in r.getMessage()]
        tok("abcdefghij")  # the same tokenizer does warn for an uncut text, so the check above can fail
        assert [r for r in records if "sequence length is longer" in r.getMessage()]
    finally:
        hf.removeHandler(handler)
