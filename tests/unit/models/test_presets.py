"""Presets build plain HF BERTs sized to the tokenizer, and refuse impossible shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForMaskedLM, PreTrainedTokenizerFast

from lmtailor.errors import ConfigError
from lmtailor.models import PRESETS, Shape, build_mlm, preset_shape


def test_presets_have_the_documented_shapes() -> None:
    assert (PRESETS["mini"].layers, PRESETS["mini"].hidden, PRESETS["mini"].heads) == (4, 256, 4)
    assert (PRESETS["small"].layers, PRESETS["small"].hidden) == (6, 512)
    assert (PRESETS["litebert"].layers, PRESETS["litebert"].hidden, PRESETS["litebert"].heads) == (6, 768, 12)


def test_build_mlm_uses_the_tokenizers_vocabulary_and_reloads(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models

    vocab = {t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b"])}
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
                                  pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]",
                                  mask_token="[MASK]")  # fmt: skip
    model = build_mlm("tiny", tok)
    assert model.config.vocab_size == 7 and model.config.pad_token_id == 0
    model.save_pretrained(tmp_path)
    again = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(again).__name__ == "BertForMaskedLM"


def test_bad_shapes_and_names() -> None:
    with pytest.raises(ConfigError, match="divisible"):
        Shape(layers=2, hidden=100, heads=3, intermediate=10)
    with pytest.raises(ConfigError, match="unknown model preset"):
        preset_shape("huge")
