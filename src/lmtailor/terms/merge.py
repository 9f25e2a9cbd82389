"""Merging term lists: normalise, drop unusable terms, de-duplicate, optionally prune by corpus frequency, cap.

Priority decides which form of a duplicate survives and which terms the cap keeps: earlier inputs first, then each
file's own order (`glossary.read_term_file`). Every term dropped is counted under the reason it was dropped, so the
manifest says where a 9,896-line glossary went.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from lmtailor.terms.glossary import TermFile, dedup_key, normalise_term, term_problem

log = logging.getLogger(__name__)


@dataclass
class MergedTerm:
    """A surviving term, the frequency known for it (corpus count, else its source's), and its source's name."""

    term: str
    freq: int | None
    source: str


@dataclass
class MergeReport:
    """What happened to every term read, for the stage metrics."""

    read: int = 0
    malformed_lines: int = 0
    duplicates: int = 0
    filtered: Counter = field(default_factory=Counter)
    capped: int = 0
    kept: int = 0

    def as_metrics(self) -> dict[str, object]:
        return {
            "read": self.read,
            "malformed_lines": self.malformed_lines,
            "duplicates": self.duplicates,
            "filtered": dict(sorted(self.filtered.items())),
            "capped": self.capped,
            "kept": self.kept,
        }


def collect_terms(
    files: Sequence[tuple[str, TermFile]], lowercase: bool, max_chars: int, report: MergeReport
) -> list[MergedTerm]:
    """Normalised, valid, de-duplicated terms of all `(source name, file)` pairs, in priority order."""
    seen: set[str] = set()
    terms: list[MergedTerm] = []
    for source, term_file in files:
        report.malformed_lines += term_file.malformed
        for entry in term_file.entries:
            report.read += 1
            problem = term_problem(entry.term, max_chars)
            if problem is not None:
                report.filtered[problem] += 1
                log.debug("dropping %r from %s: %s", entry.term, entry.where, problem)
                continue
            term = normalise_term(entry.term, lowercase)
            key = dedup_key(term)
            if key in seen:
                report.duplicates += 1
                continue
            seen.add(key)
            terms.append(MergedTerm(term, entry.freq, source))
    return terms


def filter_by_corpus(
    terms: list[MergedTerm], corpus_counts: Sequence[int], min_freq: int, report: MergeReport
) -> list[MergedTerm]:
    """Keep terms occurring at least `min_freq` times; their freq becomes the corpus count."""
    kept = []
    for term, n in zip(terms, corpus_counts, strict=True):
        if n >= min_freq:
            kept.append(MergedTerm(term.term, n, term.source))
        else:
            report.filtered["below_min_corpus_freq"] += 1
    return kept


def cap_terms(terms: list[MergedTerm], max_terms: int, report: MergeReport) -> list[MergedTerm]:
    """The first `max_terms` terms; the rest are counted as capped."""
    report.capped = max(0, len(terms) - max_terms)
    kept = terms[:max_terms]
    report.kept = len(kept)
    return kept


def priority_rows(terms: list[MergedTerm]) -> list[tuple[str, str, str, str]]:
    """TSV rows `term, score, freq, source`; score falls from 1.0 with priority so that sorting by it keeps order
    (6 decimals keep 10^5 terms distinct; ties would keep file order anyway, as the sort is stable)."""
    n = len(terms)
    return [
        (t.term, f"{1.0 - i / n:.6f}", "" if t.freq is None else str(t.freq), t.source) for i, t in enumerate(terms)
    ]
