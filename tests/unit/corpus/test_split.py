"""Deterministic, document-level train/dev/test assignment."""

from __future__ import annotations

from collections import Counter

from lmtailor.corpus.split import Splitter

NAMES = ("train", "dev", "test")
KEYS = [f"folder/doc-{i}.txt" for i in range(3000)]


def test_assignment_is_stable_and_follows_ratios() -> None:
    first = [Splitter(NAMES, [0.8, 0.1, 0.1], seed=3).assign(k) for k in KEYS]
    again = [Splitter(NAMES, [0.8, 0.1, 0.1], seed=3).assign(k) for k in reversed(KEYS)][::-1]
    assert first == again
    counts = Counter(first)
    assert 0.76 < counts["train"] / len(KEYS) < 0.84
    assert 0.07 < counts["dev"] / len(KEYS) < 0.13


def test_seed_changes_assignment() -> None:
    a = [Splitter(NAMES, [0.5, 0.25, 0.25], seed=0).assign(k) for k in KEYS]
    b = [Splitter(NAMES, [0.5, 0.25, 0.25], seed=1).assign(k) for k in KEYS]
    assert a != b


def test_zero_ratios_are_never_chosen() -> None:
    assert {Splitter(NAMES, [1.0, 0.0, 0.0]).assign(k) for k in KEYS} == {"train"}
    assert {Splitter(NAMES, [0.5, 0.5, 0.0]).assign(k) for k in KEYS} == {"train", "dev"}
    assert {Splitter(NAMES, [0.0, 0.0, 1.0]).assign(k) for k in KEYS} == {"test"}
