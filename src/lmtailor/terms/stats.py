"""The termhood statistics both miners score with, as small pure functions that can be checked by hand.

- cohesion PMI: how much more often a string occurs than its two halves would by chance, at its weakest split;
- branching entropy: how freely a string combines with its neighbours (fragments like 人民法 have one neighbour, 院);
- C-value: frequency corrected for occurrences that are only part of longer candidates (Frantzi et al. 2000);
- domain specificity: how much more frequent a term is in the corpus than in general language (wordfreq);
- dispersion: whether a term is spread through the corpus or piled up in one document (company names are).

All logarithms are natural unless the name says otherwise. The vectorised versions used on whole corpora live in
`ngrams.py`; these define what they compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

# wordfreq reports 0 for words it has never seen; treat them as rarer than its rarest listed word (Zipf 1.0).
GENERAL_FREQ_FLOOR = 1e-8


def cohesion_pmi(units: Sequence[str], count: Callable[[Sequence[str]], int], total: int) -> float:
    """min over binary splits a|b of log p(w) / (p(a) p(b)), with p(x) = count(x) / total.

    `units` are the characters (Chinese) or words (English) of the candidate; `count` returns the corpus count of
    any contiguous sub-sequence. A single unit has no split and scores +inf.
    """
    n = len(units)
    if n < 2:
        return math.inf
    log_pw = math.log(count(units) / total)
    return min(log_pw - math.log(count(units[:k]) / total) - math.log(count(units[k:]) / total) for k in range(1, n))


def branching_entropy(neighbour_counts: Sequence[int], breaks: int = 0) -> float:
    """Entropy (nats) of the distribution of neighbours on one side of a string.

    `neighbour_counts` are the counts of each distinct neighbouring unit; `breaks` is how many occurrences had
    punctuation or a text boundary on that side. Each break counts as its own distinct neighbour: standing alone is
    the strongest sign of being free on that side.
    """
    total = sum(neighbour_counts) + breaks
    if total == 0:
        return 0.0
    return math.log(total) - sum(c * math.log(c) for c in neighbour_counts if c > 0) / total


def c_value(length: int, freq: int, longer_freqs: Sequence[int]) -> float:
    """log2(length) * (freq - mean frequency of the longer candidates that contain this one)."""
    nested = sum(longer_freqs) / len(longer_freqs) if longer_freqs else 0.0
    return math.log2(length) * (freq - nested)


def specificity(domain_freq: float, general_freq: float) -> float:
    """log(domain relative frequency / general relative frequency); unseen general words get the floor."""
    return math.log(domain_freq / max(general_freq, GENERAL_FREQ_FLOOR))


def dispersion(blocks_seen: int, freq: int, n_blocks: int) -> float:
    """Blocks a term occurs in, divided by the blocks `freq` randomly placed occurrences would reach; at most 1.

    The corpus is cut into `n_blocks` equal blocks in reading order (files are read sorted, so a block is roughly a
    document or a stretch of one). A name repeated 800 times in one contract reaches 1 block of an expected ~170.
    """
    if n_blocks <= 1 or freq <= 0:
        return 1.0
    expected = n_blocks * (1.0 - (1.0 - 1.0 / n_blocks) ** freq)
    return min(1.0, blocks_seen / expected)
