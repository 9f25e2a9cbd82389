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


def test_load_mlm_of_a_headless_encoder_says_so_plainly(tmp_path: Path, caplog, capsys) -> None:
    """A sentence encoder saved as `BertModel` (MiniLM) gets a new, tied MLM head and one plain log line, not
    transformers' "This checkpoint seem corrupted"; an MLM checkpoint loads with nothing new."""
    import logging

    import torch
    from transformers import BertModel

    from lmtailor.models.presets import bert_config, load_mlm

    torch.manual_seed(0)
    encoder = BertModel(bert_config(PRESETS["tiny"], vocab_size=50), add_pooling_layer=True)
    encoder.save_pretrained(tmp_path / "encoder")
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        model, new = load_mlm(str(tmp_path / "encoder"))
    assert new and all(k.startswith("cls.predictions.") for k in new)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, encoder.embeddings.word_embeddings.weight)
    assert any("has no MLM head" in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    assert "corrupted" not in capsys.readouterr().err

    model.save_pretrained(tmp_path / "mlm")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        again, new = load_mlm(str(tmp_path / "mlm"))
    assert new == [] and not caplog.records
    assert torch.equal(again.cls.predictions.transform.dense.weight, model.cls.predictions.transform.dense.weight)
