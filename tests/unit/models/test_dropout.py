"""set_dropout: the attention-probability dropout is found and set apart from the hidden ones, in the modules that
use it and in the config that is saved, for BERT and for an architecture with other module names (DistilBERT)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from lmtailor.errors import ConfigError
from lmtailor.models.dropout import set_dropout


def _bert():
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                     max_position_embeddings=64, num_labels=3)  # fmt: skip
    return BertForSequenceClassification(cfg).train()


def _distilbert():
    torch.manual_seed(0)
    cfg = DistilBertConfig(vocab_size=50, dim=32, n_layers=2, n_heads=4, hidden_dim=64, max_position_embeddings=64,
                           num_labels=3)  # fmt: skip
    return DistilBertForSequenceClassification(cfg).train()


def _two_forwards_differ(model) -> bool:
    ids = torch.randint(5, 50, (4, 24))
    a, b = (model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits for _ in range(2))
    return not torch.equal(a, b)


@pytest.mark.parametrize("make", [_bert, _distilbert])
def test_attention_dropout_alone_is_what_the_forward_uses(make) -> None:
    model = make()
    set_dropout(model, 0.0)
    assert not _two_forwards_differ(model)  # every dropout off: a train-mode forward is deterministic
    set_dropout(model, 0.0, attention=0.5)
    assert _two_forwards_differ(model)  # so the 0.5 reached the attention probabilities the forward uses
    rates = sorted({m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)})
    assert rates == [0.0, 0.5]
    saved = model.config.to_dict()  # what save_pretrained writes
    assert [saved[k] for k in ("attention_probs_dropout_prob", "attention_dropout") if k in saved] == [0.5]


def test_rates_go_to_the_saved_config_and_none_keeps_the_model_s_own() -> None:
    model = _bert()
    set_dropout(model)  # nothing asked: nothing changes
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    set_dropout(model, attention=0.0)
    attn = [m.dropout.p for m in model.modules() if type(m).__name__ == "BertSelfAttention"]
    hidden = [m.dropout.p for m in model.modules() if type(m).__name__ in ("BertSelfOutput", "BertOutput")]
    assert attn == [0.0, 0.0] and hidden == [0.1] * 4 and model.dropout.p == 0.1  # the classifier head's too
    assert model.config.attention_probs_dropout_prob == 0.0 and model.config.hidden_dropout_prob == 0.1
    set_dropout(model, 0.2)  # `dropout` alone sets both
    assert {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)} == {0.2}
    assert model.config.attention_probs_dropout_prob == 0.2 == model.config.hidden_dropout_prob


def test_a_model_without_attention_dropout_is_a_clear_error() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Dropout(0.1))
    model.config = SimpleNamespace()
    with pytest.raises(ConfigError, match="attention_dropout"):
        set_dropout(model, attention=0.0)
    set_dropout(model, 0.0)  # the hidden rate alone is fine
    assert model[1].p == 0.0


def test_attention_dropout_0_is_what_lets_the_cpu_use_its_fused_attention_kernel() -> None:
    """The reason for the option: with a nonzero rate PyTorch runs attention on its math path (an S×S mask drawn at
    every layer); at 0 it runs the fused flash kernel (2.4x the tokens/s at 512 tokens, docs/benchmarks.md)."""
    from torch.profiler import profile

    model = _bert()
    ids = torch.randint(5, 50, (2, 48))

    def kernels() -> set[str]:
        with profile() as prof:
            model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits.sum().backward()
        return {e.key for e in prof.key_averages() if e.key.startswith("aten::_scaled_dot_product")}

    set_dropout(model, attention=0.1)
    assert "aten::_scaled_dot_product_attention_math" in kernels()
    set_dropout(model, attention=0.0)
    fused = kernels()
    assert any("flash_attention" in k for k in fused) and "aten::_scaled_dot_product_attention_math" not in fused
