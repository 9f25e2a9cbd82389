"""Termhood statistics on hand-computed examples, and the vectorised n-gram counter against them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lmtailor.terms.ngrams import block_spread, iter_levels, neighbour_entropy
from lmtailor.terms.stats import (
    GENERAL_FREQ_FLOOR,
    branching_entropy,
    c_value,
    cohesion_pmi,
    dispersion,
    specificity,
)


def test_cohesion_pmi_two_units() -> None:
    counts = {"a": 10, "b": 20, "ab": 5}
    # p(ab) / (p(a) p(b)) = 0.05 / (0.1 * 0.2) = 2.5
    assert cohesion_pmi("ab", lambda s: counts["".join(s)], 100) == pytest.approx(math.log(2.5))


def test_cohesion_pmi_takes_the_weakest_split() -> None:
    counts = {"a": 10, "b": 10, "c": 50, "ab": 8, "bc": 8, "abc": 8}
    # a|bc: 0.08 / (0.1 * 0.08) = 10;  ab|c: 0.08 / (0.08 * 0.5) = 2  -> the weaker, log 2, wins
    assert cohesion_pmi("abc", lambda s: counts["".join(s)], 100) == pytest.approx(math.log(2))


def test_cohesion_pmi_of_one_unit_is_unbounded() -> None:
    assert cohesion_pmi("a", lambda s: 1, 10) == math.inf


def test_branching_entropy() -> None:
    assert branching_entropy([2, 2]) == pytest.approx(math.log(2))
    assert branching_entropy([5]) == pytest.approx(0.0)
    # two breaks are two distinct neighbours: counts (2, 1, 1) -> log 4 - 2 log 2 / 4
    assert branching_entropy([2], breaks=2) == pytest.approx(1.5 * math.log(2))
    assert branching_entropy([]) == 0.0


def test_c_value() -> None:
    assert c_value(2, 10, [4, 2]) == pytest.approx(7.0)  # log2(2) * (10 - mean(4, 2))
    assert c_value(3, 8, []) == pytest.approx(math.log2(3) * 8)
    assert c_value(2, 5, [5]) == 0.0  # only ever inside the longer term


def test_specificity_and_floor() -> None:
    assert specificity(1e-3, 1e-5) == pytest.approx(math.log(100))
    assert specificity(1e-3, 0.0) == pytest.approx(math.log(1e-3 / GENERAL_FREQ_FLOOR))


def test_dispersion() -> None:
    assert dispersion(1, 10, 1) == 1.0  # one block: nothing to compare
    assert dispersion(1, 100, 10) == pytest.approx(1 / (10 * (1 - 0.9**100)))
    assert dispersion(3, 3, 100) == 1.0  # as spread as 3 occurrences can be


# word ids: 0 1 0 1 2 | 0 1   (-1 = break)
IDS = np.array([-1, 0, 1, 0, 1, 2, -1, 0, 1, -1], dtype=np.int32)


def test_apriori_levels_count_only_frequent_extensions() -> None:
    levels = list(iter_levels(IDS, 3, min_count=2, max_n=4))
    assert levels[0].grams.ravel().tolist() == [0, 1]  # id 2 occurs once
    assert levels[0].counts.tolist() == [3, 3]
    assert levels[1].grams.tolist() == [[0, 1]]  # (1, 0) occurs once; nothing crosses a break
    assert levels[1].counts.tolist() == [3]
    assert len(levels) == 3 and len(levels[2].counts) == 0  # (0,1,0) needs suffix (1,0), which is rare
    assert levels[1].starts.tolist() == [-1, 0, -1, 0, -1, -1, -1, 0, -1, -1]


def test_neighbour_entropy_matches_the_definition() -> None:
    bigrams = list(iter_levels(IDS, 3, min_count=2, max_n=2))[1]
    rows = np.array([0])
    # (0,1) at 1, 3, 7: left neighbours break, 1, break -> [1] + 2 breaks; right: 0, 2, break -> [1, 1] + 1 break
    left = neighbour_entropy(IDS, bigrams, rows, "left")
    right = neighbour_entropy(IDS, bigrams, rows, "right")
    assert left[0] == pytest.approx(branching_entropy([1], breaks=2))
    assert right[0] == pytest.approx(branching_entropy([1, 1], breaks=1))


def test_block_spread() -> None:
    unigrams = next(iter_levels(IDS, 3, min_count=2, max_n=1))
    seen, n_blocks = block_spread(unigrams, block_size=5)
    assert n_blocks == 2
    assert seen.tolist() == [2, 2]  # ids 0 and 1 occur in both halves
