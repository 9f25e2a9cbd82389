"""Apriori n-gram counting over an integer-encoded corpus, shared by the English (word) and Chinese (character) miners.

The corpus is one flat array of unit ids (word ids or character ids) in which -1 marks a break that no n-gram may
cross (punctuation, a digit, the end of a text). Counting proceeds one length at a time: an n-gram is counted only
where the (n-1)-gram starting at the same position (its prefix) and the one starting one position later (its suffix)
were both frequent. Each pass is a handful of vectorised numpy operations over the whole array, so a 4 M-word corpus
is counted in seconds and memory stays at a few int arrays of corpus length plus the frequent n-grams themselves;
a `collections.Counter` over all n-grams would hold tens of millions of Python tuples instead.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

BREAK = -1


@dataclass
class NgramLevel:
    """The frequent n-grams of one length n, and where each of them starts in the corpus."""

    n: int
    grams: np.ndarray  # (k, n) int32 unit ids, one row per frequent n-gram, rows sorted lexicographically
    counts: np.ndarray  # (k,) int64 occurrences of each row
    starts: np.ndarray  # (N,) int32: row index of the frequent n-gram starting at each corpus position, else -1


class IdEncoder:
    """Maps units (words or characters) to dense ids and collects the flat, break-separated id stream."""

    def __init__(self) -> None:
        self.vocab: dict[str, int] = {}
        self._ids = array("i", [BREAK])  # 4 bytes a unit; a list of ints would take 8 for the pointers alone

    def add_segment(self, units: list[str]) -> None:
        """Append one unbroken run of units followed by a break."""
        if not units:
            return
        vocab = self.vocab
        self._ids.extend(vocab.setdefault(u, len(vocab)) for u in units)
        self._ids.append(BREAK)

    def array(self) -> np.ndarray:
        """The id stream as int32, starting and ending with a break (so i-1 and i+n are always valid indices)."""
        arr = np.frombuffer(self._ids, dtype=np.int32).copy()
        self._ids = array("i", [BREAK])
        return arr

    def units(self) -> list[str]:
        """Unit strings indexed by id."""
        out = [""] * len(self.vocab)
        for unit, i in self.vocab.items():
            out[i] = unit
        return out


def count_unigrams(ids: np.ndarray, vocab_size: int, min_count: int) -> NgramLevel:
    """Level 1: every unit id with at least `min_count` occurrences."""
    valid = ids >= 0
    counts_all = np.bincount(ids[valid], minlength=vocab_size)
    frequent = np.flatnonzero(counts_all >= min_count).astype(np.int32)
    row_of = np.full(vocab_size + 1, -1, dtype=np.int32)  # last slot absorbs BREAK (-1 indexes it)
    row_of[frequent] = np.arange(len(frequent), dtype=np.int32)
    starts = row_of[ids]
    return NgramLevel(1, frequent.reshape(-1, 1), counts_all[frequent].astype(np.int64), starts)


def next_level(ids: np.ndarray, prev: NgramLevel, min_count: int) -> NgramLevel:
    """Count n-grams (n = prev.n + 1) whose prefix and suffix (n-1)-grams are both frequent."""
    n = prev.n + 1
    starts_prev = prev.starts
    # Position i can hold an n-gram only if the prefix starts at i and the suffix at i+1 (both frequent, so neither
    # crosses a break); the last n-1 positions cannot start one.
    ok = (starts_prev[:-1] >= 0) & (starts_prev[1:] >= 0)
    pos = np.flatnonzero(ok)
    if len(pos) == 0:
        return _empty_level(n, len(ids))
    vocab_size = int(ids.max()) + 1
    last = ids[pos + n - 1].astype(np.int64)
    keys = starts_prev[pos].astype(np.int64) * vocab_size + last
    uniq, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    keep = counts >= min_count
    if not keep.any():
        return _empty_level(n, len(ids))
    new_row = np.full(len(uniq), -1, dtype=np.int32)
    new_row[keep] = np.arange(int(keep.sum()), dtype=np.int32)
    starts = np.full(len(ids), -1, dtype=np.int32)
    starts[pos] = new_row[inverse]
    kept_keys = uniq[keep]
    prefix_rows = (kept_keys // vocab_size).astype(np.int64)
    grams = np.concatenate([prev.grams[prefix_rows], (kept_keys % vocab_size).astype(np.int32)[:, None]], axis=1)
    return NgramLevel(n, grams.astype(np.int32), counts[keep].astype(np.int64), starts)


def _empty_level(n: int, length: int) -> NgramLevel:
    return NgramLevel(n, np.zeros((0, n), np.int32), np.zeros(0, np.int64), np.full(length, -1, np.int32))


def iter_levels(ids: np.ndarray, vocab_size: int, min_count: int, max_n: int) -> Iterator[NgramLevel]:
    """Yield levels 1..max_n, stopping early when a level has no frequent n-grams."""
    level = count_unigrams(ids, vocab_size, min_count)
    yield level
    while level.n < max_n and len(level.counts):
        level = next_level(ids, level, min_count)
        yield level


def neighbour_entropy(ids: np.ndarray, level: NgramLevel, rows: np.ndarray, side: str) -> np.ndarray:
    """Branching entropy (nats) of the unit just left or right of each n-gram in `rows` (indices into the level).

    A break counts as a new, distinct neighbour every time: a term that often stands alone between punctuation is
    free on that side, which is exactly what high entropy is meant to show.
    Returns an array aligned with `rows`.
    """
    if len(rows) == 0:
        return np.zeros(0)
    slot = np.full(len(level.counts), -1, dtype=np.int64)
    slot[rows] = np.arange(len(rows))
    pos = np.flatnonzero(level.starts >= 0)
    cand = slot[level.starts[pos]]
    pos, cand = pos[cand >= 0], cand[cand >= 0]
    neighbour = ids[pos - 1] if side == "left" else ids[pos + level.n]
    total = np.bincount(cand, minlength=len(rows)).astype(np.float64)
    inner = neighbour >= 0
    vocab_size = int(ids.max()) + 1
    keys = cand[inner] * vocab_size + neighbour[inner]
    uniq, group_counts = np.unique(keys, return_counts=True)
    gc = group_counts.astype(np.float64)
    # H = log N - (1/N) * sum n_i log n_i; breaks are singletons, whose n log n is 0.
    s = np.bincount(uniq // vocab_size, weights=gc * np.log(gc), minlength=len(rows))
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(total > 0, np.log(np.maximum(total, 1)) - s / np.maximum(total, 1), 0.0)
    return h


def block_spread(level: NgramLevel, block_size: int) -> tuple[np.ndarray, int]:
    """How many distinct blocks of `block_size` corpus positions each n-gram of the level occurs in, and the number
    of blocks the corpus was cut into (the last block absorbs the remainder)."""
    n_blocks = max(1, len(level.starts) // block_size)
    pos = np.flatnonzero(level.starts >= 0)
    if len(pos) == 0:
        return np.zeros(len(level.counts), dtype=np.int64), n_blocks
    rows = level.starts[pos].astype(np.int64)
    blocks = np.minimum(pos // block_size, n_blocks - 1)
    pairs = np.unique(rows * n_blocks + blocks)
    return np.bincount(pairs // n_blocks, minlength=len(level.counts)), n_blocks
