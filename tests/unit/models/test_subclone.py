"""Weight subcloning: exact slices of the source, the most active parts kept, identity at the same size, errors."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.models.presets import Shape, bert_config
from lmtailor.models.subclone import subclone

SOURCE = Shape(layers=4, hidden=64, heads=4, intermediate=128)  # heads of 16


def _source(seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    model = BertForMaskedLM(bert_config(SOURCE, vocab_size=50)).eval()
    model.tie_weights()
    return model


def _batches(n: int = 3, seed: int = 1) -> list[dict]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (n * 4, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 8:] = 0  # padding is not counted
    return [{"input_ids": ids[i : i + 4], "attention_mask": mask[i : i + 4]} for i in range(0, n * 4, 4)]


def test_same_size_is_the_source_itself():
    source = _source()
    clone, report = subclone(source, SOURCE, _batches())
    assert report.layers == [0, 1, 2, 3] and report.heads == [[0, 1, 2, 3]] * 4
    assert all(v == pytest.approx(1.0) for v in report.layernorm_scale.values())
    batch = _batches()[0]
    with torch.no_grad():
        a = source(**batch).logits
        b = clone(**batch).logits
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert report.fidelity_cosine == pytest.approx(1.0, abs=1e-4)


def test_smaller_clone_keeps_the_most_active_dims_heads_and_neurons(tmp_path):
    source = _source()
    loud_dims = [3, 17, 40, 41, 60]
    with torch.no_grad():  # these dims dominate the residual stream from the embeddings on
        source.bert.embeddings.LayerNorm.weight[loud_dims] *= 20
        # layer 3 (kept: every_other keeps 0, 2, 3 of 4): head 1 silent, FFN neuron 7 very loud
        source.bert.encoder.layer[3].attention.self.value.weight[16:32] = 0
        source.bert.encoder.layer[3].attention.self.value.bias[16:32] = 0
        source.bert.encoder.layer[3].intermediate.dense.bias[7] = 50.0
    target = Shape(layers=3, hidden=32, heads=4, intermediate=64)  # heads follow the source's head size (16)
    clone, report = subclone(source, target, _batches())
    c = clone.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (3, 32, 2, 64)
    assert report.layers == [0, 2, 3]
    assert 1 not in report.heads[2]
    # The kept dims: the loud ones are among them, and the word embeddings are exactly those columns.
    emb_src = source.bert.embeddings.word_embeddings.weight
    emb = clone.bert.embeddings.word_embeddings.weight
    dims = [d for d in range(64) if any(torch.equal(emb[:, j], emb_src[:, d]) for j in range(32))]
    assert len(dims) == 32 and set(loud_dims) <= set(dims)
    assert report.hidden_dims_kept_share_of_magnitude > 0.5
    # FFN neuron 7 of source layer 3 is kept: its input row, restricted to the kept dims, is in the clone's layer 2.
    row = source.bert.encoder.layer[3].intermediate.dense.weight[7, dims]
    assert any(torch.equal(row, r) for r in clone.bert.encoder.layer[2].intermediate.dense.weight)
    # Decoder tied to the embeddings, parameters exactly those of a fresh model of that shape, and HF loads it.
    assert clone.cls.predictions.decoder.weight.data_ptr() == emb.data_ptr()
    fresh = BertForMaskedLM(BertConfig(**{**c.to_dict()}))
    assert sum(p.numel() for p in clone.parameters()) == sum(p.numel() for p in fresh.parameters())
    clone.save_pretrained(tmp_path)
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path).eval()
    batch = _batches()[0]
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, clone(**batch).logits)
    assert 0.3 < report.fidelity_cosine < 1.0


def test_layernorm_scale_keeps_the_kept_dims_at_the_source_scale(monkeypatch):
    """A LayerNorm over fewer dims divides by another σ; the scale puts its output back near the source's."""
    import lmtailor.models.subclone as sc

    source, target, batches = _source(), Shape(layers=4, hidden=32, heads=2, intermediate=128), _batches()
    with torch.no_grad():  # as in trained BERTs, a few residual dims carry most of the magnitude
        source.bert.embeddings.LayerNorm.weight[[3, 17, 40]] *= 10
        source.bert.embeddings.word_embeddings.weight[:, [3, 17, 40]] += 1.0
    scaled, report = subclone(source, target, batches)
    real = sc._layernorm_scales
    monkeypatch.setattr(sc, "_layernorm_scales", lambda *a: {k: 1.0 for k in real(*a)})
    plain, _ = subclone(source, target, batches)
    assert report.layernorm_scale["bert.embeddings.LayerNorm"] > 1.2
    emb_src = source.bert.embeddings.word_embeddings.weight
    dims = [
        next(d for d in range(64) if torch.equal(col, emb_src[:, d]))
        for col in scaled.bert.embeddings.word_embeddings.weight.T
    ]
    ids = batches[0]["input_ids"]
    with torch.no_grad():
        want = source.bert.embeddings(input_ids=ids)[..., dims]
        err_scaled = (scaled.bert.embeddings(input_ids=ids) - want).norm() / want.norm()
        err_plain = (plain.bert.embeddings(input_ids=ids) - want).norm() / want.norm()
    assert err_scaled < 0.5 * err_plain, (err_scaled, err_plain)


def test_errors():
    source = _source()
    with pytest.raises(ConfigError, match="smaller than its source"):
        subclone(source, Shape(layers=6, hidden=64, heads=4, intermediate=128), _batches())
    with pytest.raises(ConfigError, match="head size 16"):
        subclone(source, Shape(layers=2, hidden=40, heads=5, intermediate=64), _batches())
    with pytest.raises(InputFormatError, match="BertForMaskedLM"):
        subclone(source.bert, Shape(layers=2, hidden=32, heads=2, intermediate=64), _batches())
    empty = [{"input_ids": torch.ones(1, 4, dtype=torch.long), "attention_mask": torch.zeros(1, 4, dtype=torch.long)}]
    with pytest.raises(InputFormatError, match="no tokens"):
        subclone(source, Shape(layers=2, hidden=32, heads=2, intermediate=64), empty)
