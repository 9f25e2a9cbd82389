"""Setting a loaded model's dropout rates: the hidden ones, and the attention-probability one on its own.

The attention dropout is the expensive one on a CPU. It acts on the batch × heads × S × S probabilities, and PyTorch's
fused attention kernels take no dropout on the CPU, so a nonzero rate sends every layer through the math path. At
512 tokens a `mini` training step there runs at half the speed of the same step with the rate at 0 (bf16, 2-core
EPYC; docs/benchmarks.md). MosaicBERT pretrains with attention dropout 0 and hidden dropout 0.1 for the same reason.
"""

from __future__ import annotations

import torch

from lmtailor.errors import ConfigError

HIDDEN_KEYS = ("hidden_dropout_prob", "dropout")  # BERT and its kin; DistilBERT
ATTENTION_KEYS = ("attention_probs_dropout_prob", "attention_dropout")


def _attention_dropouts(model: torch.nn.Module) -> set[int]:
    """ids of the dropout modules applied to attention probabilities: the `dropout` of each `*Attention` module
    (BertSelfAttention, RobertaSelfAttention, DistilBERT's MultiHeadSelfAttention, …); the attention output's
    dropout sits in a `*SelfOutput` module and is a hidden one."""
    return {
        id(module.dropout)
        for module in model.modules()
        if type(module).__name__.endswith("Attention")
        and isinstance(getattr(module, "dropout", None), torch.nn.Dropout)
    }


def set_dropout(model: torch.nn.Module, dropout: float | None = None, attention: float | None = None) -> None:
    """Set every dropout rate to `dropout`, then the attention-probability ones to `attention` (None: keep), in the
    modules and in `model.config`, so that the saved model says how it was trained. The hidden ones include a
    classification head's."""
    attn = _attention_dropouts(model)
    if attention is not None and not attn:
        raise ConfigError(
            f"{type(model).__name__} has no attention dropout that lmtailor can find (no `*Attention` module with a "
            "`dropout`); leave attention_dropout unset for this model."
        )
    hidden, attention = dropout, dropout if attention is None else attention
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            rate = attention if id(module) in attn else hidden
            if rate is not None:
                module.p = rate
    for keys, rate in ((HIDDEN_KEYS, hidden), (ATTENTION_KEYS, attention)):
        for key in keys if rate is not None else ():
            if isinstance(getattr(model.config, key, None), int | float):
                setattr(model.config, key, rate)
