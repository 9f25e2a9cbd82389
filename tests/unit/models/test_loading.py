"""Loading a checkpoint for another task: one plain log line for the new head, a warning for missing encoder
weights, and none of transformers' alarms ("This checkpoint seem corrupted", the LOAD REPORT table)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForSequenceClassification, BertModel

from lmtailor.models import PRESETS
from lmtailor.models.loading import load_mlm, load_pretrained
from lmtailor.models.presets import bert_config


@pytest.fixture()
def encoder(tmp_path: Path) -> tuple[BertModel, Path]:
    """A sentence encoder as sentence-transformers saves it: a `BertModel`, pooler included, no MLM head."""
    torch.manual_seed(0)
    model = BertModel(bert_config(PRESETS["tiny"], vocab_size=50), add_pooling_layer=True)
    model.save_pretrained(tmp_path / "encoder")
    return model, tmp_path / "encoder"


def _messages(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def test_a_headless_encoder_gets_a_tied_mlm_head_and_one_plain_line(encoder, tmp_path: Path, caplog, capsys) -> None:
    source, folder = encoder
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        model, new = load_mlm(str(folder))
    assert new and all(k.startswith("cls.predictions.") for k in new)
    assert model.cls.predictions.decoder.weight is model.bert.embeddings.word_embeddings.weight
    assert torch.equal(model.bert.embeddings.word_embeddings.weight, source.embeddings.word_embeddings.weight)
    info = _messages(caplog, logging.INFO)
    assert len(info) == 1 and "new cls (6)" in info[0] and "BertForMaskedLM" in info[0]
    assert not _messages(caplog, logging.WARNING)
    err = capsys.readouterr().err
    assert "corrupted" not in err and "LOAD REPORT" not in err

    model.save_pretrained(tmp_path / "mlm")  # an MLM checkpoint reloads with nothing new and nothing said
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        again, new = load_mlm(str(tmp_path / "mlm"))
    assert new == [] and not caplog.records
    assert torch.equal(again.cls.predictions.transform.dense.weight, model.cls.predictions.transform.dense.weight)


def test_a_classifier_from_an_mlm_names_its_new_head_and_the_dropped_one(encoder, tmp_path: Path, caplog) -> None:
    _, folder = encoder
    load_mlm(str(folder))[0].save_pretrained(tmp_path / "mlm")
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        _, new = load_pretrained(AutoModelForSequenceClassification, str(tmp_path / "mlm"), num_labels=3)
    assert {k.rsplit(".", 1)[0] for k in new} == {"classifier", "bert.pooler.dense"}
    lines = _messages(caplog, logging.INFO)
    assert len(lines) == 1, lines
    (line,) = lines
    assert "new bert.pooler (2), classifier (2)" in line and "not used: cls (5)" in line
    assert not _messages(caplog, logging.WARNING)


def test_missing_encoder_weights_are_a_warning_by_name(encoder, tmp_path: Path, caplog) -> None:
    """A checkpoint that lacks encoder layers (a smaller model, a damaged file) starts partly random: say which."""
    torch.manual_seed(0)
    small = BertModel(bert_config(PRESETS["tiny"], vocab_size=50), add_pooling_layer=True)
    small.encoder.layer = small.encoder.layer[:1]
    small.config.num_hidden_layers = 1
    small.save_pretrained(tmp_path / "one-layer")
    config = small.config.__class__.from_pretrained(tmp_path / "one-layer")
    config.num_hidden_layers = 2
    config.save_pretrained(tmp_path / "one-layer")  # the config says 2 layers, the weights have 1
    with caplog.at_level(logging.INFO, logger="lmtailor"):
        load_mlm(str(tmp_path / "one-layer"))
    (warning,) = _messages(caplog, logging.WARNING)
    assert "encoder tensors" in warning and "bert.encoder.layer.1." in warning
