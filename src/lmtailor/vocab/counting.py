"""Counting how often a model's own tokenizer uses each token on a domain corpus (batched; Rust encodes in parallel)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import numpy as np
from tokenizers import Tokenizer


def count_token_ids(tokenizer: Tokenizer, texts: Iterable[str], batch_size: int = 1000) -> tuple[np.ndarray, int]:
    """Occurrences of every token id (special tokens excluded) and the number of texts read."""
    tokenizer.no_truncation()
    tokenizer.no_padding()
    counts = np.zeros(tokenizer.get_vocab_size(with_added_tokens=True), dtype=np.int64)
    n = 0
    it = iter(texts)
    while batch := list(islice(it, batch_size)):
        n += len(batch)
        encodings = tokenizer.encode_batch(batch, add_special_tokens=False)
        ids = np.fromiter((i for enc in encodings for i in enc.ids), dtype=np.int64)
        counts += np.bincount(ids, minlength=len(counts))
    return counts, n
