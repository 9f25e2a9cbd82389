"""What "the same model" means after export or quantisation: probe batches and the logit comparisons over them.

Probe batches are text the tokenizer itself writes (its own vocabulary, decoded and re-encoded, or a user's file),
so special tokens, padding and segment ids are exactly what `predict` will feed; they come in several batch sizes
and lengths, with ragged padding, because a graph traced at one shape must hold at all of them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import numpy as np

# (batch size, share of the maximum length) of each probe batch: a single short text, a small ragged batch, a
# larger one up to the full length.
PROBE_SHAPES = ((1, 0.1), (3, 0.5), (4, 1.0))


def _random_texts(tokenizer, n: int, tokens: int, rng: random.Random) -> list[str]:
    """`n` texts of random vocabulary tokens, the first `tokens` long (so the batch reaches that length after
    truncation), the others shorter (so it is padded)."""
    special = set(tokenizer.all_special_ids)
    vocab = sorted(i for i in tokenizer.get_vocab().values() if i not in special)
    lengths = [tokens] + [rng.randint(1, tokens) for _ in range(n - 1)]
    return [tokenizer.decode([rng.choice(vocab) for _ in range(k)]) for k in lengths]


def probe_batches(
    tokenizer, max_length: int, input_names: Sequence[str], seed: int = 0, texts: Sequence[str] | None = None
) -> list[dict[str, np.ndarray]]:
    """Int64 input batches ([B, T] each) of several shapes, from `texts` or random vocabulary text.

    The last batch pairs texts, so segment ids of 1 are probed too where the model takes token_type_ids.
    """
    rng = random.Random(seed)
    batches = []
    for k, (size, share) in enumerate(PROBE_SHAPES):
        length = max(4, int(max_length * share))
        if texts:
            chosen = [texts[rng.randrange(len(texts))] for _ in range(size)]
        else:
            chosen = _random_texts(tokenizer, size, length, rng)
        pair = None
        if k == len(PROBE_SHAPES) - 1 and "token_type_ids" in input_names:
            pair = _random_texts(tokenizer, size, length // 2, rng)
        enc = tokenizer(chosen, pair, truncation=True, max_length=length, padding="longest", return_tensors="np")
        batches.append({name: enc[name].astype(np.int64) for name in input_names if name in enc})
    return batches


def compare(
    reference: Callable[[dict[str, np.ndarray]], np.ndarray],
    candidate: Callable[[dict[str, np.ndarray]], np.ndarray],
    batches: Sequence[dict[str, np.ndarray]],
) -> dict:
    """Max and mean absolute logit difference and argmax agreement of two models over `batches`.

    Only real positions count: for token logits ([B, T, C]) padded positions are masked out, since nothing
    downstream reads them and a fused attention kernel is free to leave anything there.
    """
    diffs, agree, total = [], 0, 0
    for batch in batches:
        ref, got = np.asarray(reference(batch), np.float32), np.asarray(candidate(batch), np.float32)
        if ref.shape != got.shape:
            raise ValueError(f"logit shapes differ: {ref.shape} vs {got.shape}")
        if ref.ndim == 3:
            keep = batch["attention_mask"].astype(bool)  # [B, T]
            ref, got = ref[keep], got[keep]  # [N, C]
        diffs.append(np.abs(ref - got).reshape(-1))
        agree += int((ref.argmax(-1) == got.argmax(-1)).sum())
        total += ref.shape[0]
    d = np.concatenate(diffs)
    return {
        "max_abs_diff": float(d.max()),
        "mean_abs_diff": float(d.mean()),
        "argmax_agreement": round(agree / total, 6),
        "positions": total,
        "shapes": [list(b["input_ids"].shape) for b in batches],
    }
