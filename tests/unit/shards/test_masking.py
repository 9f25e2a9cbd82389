"""Batch masking of shard blocks: BERT's rates, whole units, never the special tokens, and a block's mask a function
of its position alone (whatever batch, rank or worker it is in)."""

from __future__ import annotations

import numpy as np

from lmtailor.shards.masking import mask_batch, uniforms
from lmtailor.train.mlm_data import IGNORE, MaskingSpec

SPEC = MaskingSpec(0.15, True, mask_token_id=4, vocab_size=1000, special_ids=(0, 1, 2, 3, 4))


def _blocks(n: int, s: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Blocks of [CLS] … [SEP] with units of 1-4 tokens numbered along the text, and a few unit-less tokens."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, 1000, size=(n, s))
    ids[:, 0], ids[:, -1] = 2, 3
    units = np.full((n, s), -1)
    for row in range(n):
        i, u = 1, 0
        while i < s - 1:
            size = int(rng.integers(1, 5))
            units[row, i : min(i + size, s - 1)] = u if rng.random() > 0.05 else -1
            i, u = i + size, u + 1
    return ids, units


def test_rates_whole_units_and_specials() -> None:
    ids, units = _blocks(400)
    inputs, labels = mask_batch(ids, units, np.arange(400), SPEC, seed=7)
    chosen = labels != IGNORE
    assert np.array_equal(labels[chosen], ids[chosen]) and not chosen[units < 0].any()
    share = chosen.sum() / (units >= 0).sum()
    assert 0.12 < share <= 0.15  # the budget, less the unit that would overshoot it
    assert chosen.any(1).all()  # every block gets at least one unit
    for row in range(400):  # a unit is masked whole or not at all
        for u in np.unique(units[row][units[row] >= 0]):
            picked = chosen[row][units[row] == u]
            assert picked.all() or not picked.any()
    masked, kept = (inputs == 4) & chosen, (inputs == ids) & chosen
    swapped = chosen & ~masked & ~kept
    assert 0.75 < masked.sum() / chosen.sum() < 0.85 and 0.05 < swapped.sum() / chosen.sum() < 0.15
    assert not np.isin(inputs[swapped], SPEC.special_ids).any()


def test_a_blocks_mask_depends_on_its_position_only() -> None:
    ids, units = _blocks(16)
    positions = np.arange(100, 116)
    whole_in, whole_lab = mask_batch(ids, units, positions, SPEC, seed=3)
    for row in (0, 5, 15):  # alone, or in another batch: the same mask
        one_in, one_lab = mask_batch(ids[row : row + 1], units[row : row + 1], positions[row : row + 1], SPEC, 3)
        assert np.array_equal(one_in[0], whole_in[row]) and np.array_equal(one_lab[0], whole_lab[row])
    other = mask_batch(ids, units, positions + 1, SPEC, seed=3)[1]
    assert not np.array_equal(other, whole_lab)  # another position, another mask
    assert not np.array_equal(mask_batch(ids, units, positions, SPEC, seed=4)[1], whole_lab)  # another seed too


def test_token_masking_and_uniforms() -> None:
    ids, units = _blocks(200)
    spec = MaskingSpec(0.15, False, 4, 1000, (0, 1, 2, 3, 4))
    _, labels = mask_batch(ids, units, np.arange(200), spec, seed=0)
    budget = np.maximum(1, np.rint(0.15 * (units >= 0).sum(1)))
    assert np.array_equal((labels != IGNORE).sum(1), budget)  # exactly the budget, token by token
    u = uniforms(0, np.arange(50), 1000, 1)
    assert u.min() >= 0 and u.max() < 1 and abs(u.mean() - 0.5) < 0.01
