"""Deterministic train/dev/test assignment by document.

The bucket of a document is a function of its key and the seed only: no document straddles two splits, adding or
removing other documents never moves it, and the same inputs and seed always give the same split on any machine.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence


class Splitter:
    """Maps a document key to one of `names` with probabilities `ratios` (which must sum to 1; zeros allowed)."""

    def __init__(self, names: Sequence[str], ratios: Sequence[float], seed: int = 0) -> None:
        if len(names) != len(ratios):
            raise ValueError(f"{len(names)} split names but {len(ratios)} ratios")
        self.names = list(names)
        self.seed = seed
        # Cumulative upper bounds; the last is forced to 1 so rounding can never leave a key without a split.
        self.bounds = list(itertools.accumulate(ratios))
        self.bounds[-1] = 1.0

    def position(self, key: str) -> float:
        """A uniform number in [0, 1) derived from the seed and the key."""
        digest = hashlib.blake2b(f"{self.seed}\x00{key}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def assign(self, key: str) -> str:
        """The split that the document `key` belongs to."""
        u = self.position(key)
        for name, bound in zip(self.names, self.bounds, strict=True):
            if u < bound:
                return name
        return self.names[-1]
