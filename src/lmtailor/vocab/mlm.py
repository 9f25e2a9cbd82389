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
        inputs = enc["input_ids"].masked_fill(masked, tokenizer.mask_token_id)
        loss = masked_lm_loss(model, inputs, enc["attention_mask"], masked, enc["input_ids"])
        n = int(masked.sum())
        total += float(loss) * n
        count += n
    return total / count if count else float("nan")


def masked_lm_loss(
    model: PreTrainedModel, inputs: torch.Tensor, attention: torch.Tensor, masked: torch.Tensor, targets: torch.Tensor
) -> torch.Tensor:
    """Cross-entropy at the masked positions only. The vocabulary projection is most of an MLM step's cost, so the
    head runs on the ~15% masked positions instead of all of them (BERT `cls`, RoBERTa `lm_head`)."""
    head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
    if head is None:  # an unknown head layout: the model's own forward, with labels
        labels = targets.masked_fill(~masked, -100)
        return model(input_ids=inputs, attention_mask=attention, labels=labels).loss
    hidden = model.base_model(input_ids=inputs, attention_mask=attention).last_hidden_state  # [B, T, H]
    logits = head(hidden[masked])  # [N masked, V]
    return torch.nn.functional.cross_entropy(logits, targets[masked])


def fit_mlm_head(
    model: PreTrainedModel, tokenizer, texts: list[str], steps: int = 300, batch: int = 16, lr: float = 1e-3,
    seed: int = 0, max_length: int = 128,
) -> list[float]:  # fmt: skip
    """Train only the MLM head (encoder and embeddings frozen) so a model saved without one can be scored.

    Encoders published for sentence embeddings (all-MiniLM-L6-v2) ship without their MLM head; an untrained head
    makes every MLM loss sit at chance and says nothing about the embeddings. The output decoder stays tied to the
    input embeddings, so only the head's transform and bias learn. Returns the loss curve.
    """
    torch.manual_seed(seed)
    head = [p for n, p in model.named_parameters() if _is_head(model, n)]
    for p in model.parameters():
        p.requires_grad_(False)
    for p in head:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(head, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    curve = []
    for step in range(steps):
        chunk = [texts[(step * batch + i) % len(texts)] for i in range(batch)]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=max_length,
                        return_special_tokens_mask=True)  # fmt: skip
        special = enc.pop("special_tokens_mask").bool()
        masked = (torch.rand(enc["input_ids"].shape, generator=gen) < 0.15) & ~special & enc["attention_mask"].bool()
        if not masked.any():
            continue
        inputs = enc["input_ids"].masked_fill(masked, tokenizer.mask_token_id)
        with torch.enable_grad():
            loss = masked_lm_loss(model, inputs, enc["attention_mask"], masked, enc["input_ids"])
            loss.backward()
        opt.step()
        opt.zero_grad()
        curve.append(loss.item())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(True)
    return curve


def _is_head(model: PreTrainedModel, name: str) -> bool:
    """Parameters of the MLM head other than the (tied) decoder weight."""
    prefix = next((p for p in ("cls.", "lm_head.", "vocab_transform", "vocab_layer_norm", "vocab_projector")
                   if name.startswith(p)), None)  # fmt: skip
    out = model.get_output_embeddings()
    return prefix is not None and not (out is not None and name.endswith("decoder.weight"))
