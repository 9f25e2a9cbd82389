"""Masked-language-model loss on held-out text, with a fixed masking pattern so that models can be compared."""

from __future__ import annotations

from itertools import islice

import torch
from transformers import PreTrainedModel


@torch.no_grad()
def mlm_loss(
    model: PreTrainedModel, tokenizer, texts: list[str], seed: int = 0, prob: float = 0.15, max_length: int = 128
) -> float:
    """Mean cross-entropy over masked positions (15% of non-special tokens, same positions for the same tokenizer)."""
    gen = torch.Generator().manual_seed(seed)
    total, count = 0.0, 0
    it = iter(texts)
    model.eval()
    while chunk := list(islice(it, 16)):
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                        return_special_tokens_mask=True)  # fmt: skip
        special = enc.pop("special_tokens_mask").bool()
        masked = (torch.rand(enc["input_ids"].shape, generator=gen) < prob) & ~special & enc["attention_mask"].bool()
        if not masked.any():
            continue
        labels = enc["input_ids"].masked_fill(~masked, -100)
        inputs = enc["input_ids"].masked_fill(masked, tokenizer.mask_token_id)
        out = model(input_ids=inputs, attention_mask=enc["attention_mask"], labels=labels)
        n = int(masked.sum())
        total += float(out.loss) * n
        count += n
    return total / count if count else float("nan")
