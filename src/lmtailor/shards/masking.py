"""Masking a whole batch of shard blocks at once, each block's mask a function of (seed, its position) alone.

The on-the-fly stream masks block by block (`mlm_data.mask_block`, a seeded generator and a loop over units); at the
rate shards are read, that loop was most of the cost. Here every random number is a hash of (seed, position, token
index, purpose) (splitmix64, vectorised over the batch), so a block's mask does not depend on which batch, rank or
worker it lands in, and the batch is masked with a few array operations:
- whole units (terms, words, jieba words): each unit gets a random key; units are taken in key order while the
  running token count stays within the budget (`mlm_probability` of the block's maskable tokens); the unit that
  would overshoot ends the choice (the per-block loop would look on for a smaller one), and a block always gets at
  least one unit;
- BERT's replacement: 80% [MASK], 10% a random non-special token (uniform), 10% unchanged.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from lmtailor.train.mlm_data import IGNORE, MaskingSpec

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-mixed uint64 per input (numpy wraps the products mod 2**64)."""
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniforms(seed: int, positions: np.ndarray, length: int, purpose: int) -> np.ndarray:
    """[B, length] floats in [0, 1), a function of (seed, position, index, purpose) only."""
    with np.errstate(over="ignore"):
        base = _mix(np.uint64(seed % 2**64) * _GOLDEN + np.uint64(purpose))
        key = _mix(positions.astype(np.uint64)[:, None] * _GOLDEN ^ base)
        x = _mix(key + np.arange(1, length + 1, dtype=np.uint64)[None, :] * _GOLDEN)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


@lru_cache(maxsize=8)
def _ordinary_ids(vocab_size: int, special_ids: tuple[int, ...]) -> np.ndarray:
    """The ids a random replacement draws from: every id but the special ones."""
    return np.setdiff1d(np.arange(vocab_size), np.asarray(special_ids, dtype=np.int64))


def mask_batch(ids: np.ndarray, units: np.ndarray, positions: np.ndarray, spec: MaskingSpec,
               seed: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(input_ids, labels) for blocks `ids` [B, S] with unit ids `units` [B, S] (-1: never masked)."""
    b, s = ids.shape
    candidate = units >= 0
    budget = np.maximum(1, np.rint(spec.mlm_probability * candidate.sum(1))).astype(np.int64)  # [B]
    key = uniforms(seed, positions, s, 1)
    if spec.whole_units:
        # A unit's key is its first token's: units are runs of equal ids (numbered along the text).
        starts = candidate & np.concatenate([np.ones((b, 1), bool), units[:, 1:] != units[:, :-1]], axis=1)
        first = np.where(starts, np.arange(s)[None, :], 0)
        first = np.maximum.accumulate(first, axis=1)  # index of each token's unit start
        key = np.take_along_axis(key, first, axis=1)
    key = np.where(candidate, key, 2.0)  # never-maskable tokens sort last
    order = np.argsort(key, axis=1, kind="stable")  # a unit's tokens stay together, in text order
    count = np.cumsum(np.take_along_axis(candidate, order, axis=1), axis=1)  # tokens taken up to here, key order
    within = np.zeros((b, s), dtype=bool)
    np.put_along_axis(within, order, count <= budget[:, None], axis=1)
    chosen = within & candidate
    if spec.whole_units:
        # The unit that crosses the budget is left out whole: a unit is kept if its last token is within.
        ends = candidate & np.concatenate([units[:, 1:] != units[:, :-1], np.ones((b, 1), bool)], axis=1)
        last = np.where(ends, np.arange(s)[None, :], s - 1)
        last = np.minimum.accumulate(last[:, ::-1], axis=1)[:, ::-1]  # index of each token's unit end
        chosen &= np.take_along_axis(within, last, axis=1)
        # Every block gets at least one unit: the first in key order, whatever its size.
        empty = ~chosen.any(1) & candidate.any(1)
        if empty.any():
            head = order[:, :1]  # the token with the smallest key starts the first unit in key order
            unit_of_head = np.take_along_axis(units, head, axis=1)
            chosen[empty] = (units == unit_of_head)[empty] & candidate[empty]
    labels = np.where(chosen, ids, IGNORE)
    roll = uniforms(seed, positions, s, 2)
    inputs = np.where(chosen & (roll < 0.8), spec.mask_token_id, ids)
    swap = chosen & (roll >= 0.8) & (roll < 0.9)
    if swap.any():
        pool = _ordinary_ids(spec.vocab_size, spec.special_ids)
        pick = (uniforms(seed, positions, s, 3) * len(pool)).astype(np.int64)
        inputs = np.where(swap, pool[np.minimum(pick, len(pool) - 1)], inputs)
    return inputs, labels
