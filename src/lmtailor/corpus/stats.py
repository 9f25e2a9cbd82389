"""What the corpus stage counts and reports in `stats.json`: documents, records, characters, words, language mix,
duplicates removed and every file or line skipped, with its reason.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from lmtailor.corpus.normalize import LATIN_WORD_RE, script_counts
from lmtailor.corpus.readers import Skip

LANGUAGES = ("chinese", "latin", "other")
# stats.json lists at most this many skipped items one by one; the counts by reason are always complete.
MAX_LISTED_SKIPS = 1000


@dataclass
class DocCounts:
    """Counts over the records of one document, merged into the totals only if the document is kept."""

    records: int = 0
    chars: int = 0
    latin_words: int = 0
    han: int = 0
    latin_letters: int = 0
    other_letters: int = 0
    too_short: int = 0
    exact_duplicates: int = 0

    def add(self, text: str) -> None:
        self.records += 1
        self.chars += len(text)
        self.latin_words += len(LATIN_WORD_RE.findall(text))
        han, latin, other = script_counts(text)
        self.han += han
        self.latin_letters += latin
        self.other_letters += other

    def add_counted(self, chars: int, latin_words: int, han: int, latin: int, other: int) -> None:
        """`add` with the counts already made (by a corpus worker process)."""
        self.records += 1
        self.chars += chars
        self.latin_words += latin_words
        self.han += han
        self.latin_letters += latin
        self.other_letters += other

    def language(self) -> str:
        """The script most of this document's letters are written in."""
        if self.han == self.latin_letters == self.other_letters == 0:
            return "other"
        return max(zip((self.han, self.latin_letters, self.other_letters), LANGUAGES, strict=True))[1]


@dataclass
class CorpusStats:
    """Running totals of the whole stage."""

    splits: tuple[str, ...]
    files_seen: int = 0
    files_skipped: int = 0  # whole files; skips with a line number are single rows of .jsonl/.csv files
    documents_read: int = 0
    documents_kept: int = 0
    documents_empty: int = 0
    near_duplicate_documents: int = 0
    records: Counter[str] = field(default_factory=Counter)
    chars: Counter[str] = field(default_factory=Counter)
    exact_duplicate_records: int = 0
    too_short_records: int = 0
    latin_words: int = 0
    cjk_chars: int = 0
    doc_languages: Counter[str] = field(default_factory=Counter)
    letters: Counter[str] = field(default_factory=Counter)
    skip_reasons: Counter[str] = field(default_factory=Counter)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def add_skip(self, skip: Skip) -> None:
        self.skip_reasons[skip.reason] += 1
        self.files_skipped += skip.line is None
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append(
                {"path": str(skip.path), "line": skip.line, "reason": skip.reason, "detail": skip.detail}
            )

    def add_filtered(self, counts: DocCounts) -> None:
        """Merge the record filter counts of a document that was not dropped whole."""
        self.exact_duplicate_records += counts.exact_duplicates
        self.too_short_records += counts.too_short

    def add_kept(self, split: str, counts: DocCounts) -> None:
        """Merge the counts of a document that was written to `split`."""
        self.documents_kept += 1
        self.records[split] += counts.records
        self.chars[split] += counts.chars
        self.latin_words += counts.latin_words
        self.cjk_chars += counts.han
        self.doc_languages[counts.language()] += 1
        self.letters.update(
            {
                "chinese": counts.han,
                "latin": counts.latin_letters,
                "other": counts.other_letters,
            }
        )

    def total_records(self) -> int:
        return sum(self.records.values())

    def _shares(self, counter: Counter[str]) -> dict[str, float]:
        total = sum(counter.values())
        return {lang: round(counter[lang] / total, 4) if total else 0.0 for lang in LANGUAGES}

    def to_json(self) -> dict[str, Any]:
        """The content of stats.json."""
        return {
            "documents": {
                "read": self.documents_read,
                "kept": self.documents_kept,
                "near_duplicate": self.near_duplicate_documents,
                "empty": self.documents_empty,
            },
            "records": {**{s: self.records[s] for s in self.splits}, "total": self.total_records()},
            "characters": {**{s: self.chars[s] for s in self.splits}, "total": sum(self.chars.values())},
            "words": {"latin_words": self.latin_words, "cjk_chars": self.cjk_chars},
            "language": {
                "documents": self._shares(self.doc_languages),
                "characters": self._shares(self.letters),
            },
            "duplicates_removed": {
                "exact_records": self.exact_duplicate_records,
                "near_dup_documents": self.near_duplicate_documents,
            },
            "too_short_records": self.too_short_records,
            "files": {"seen": self.files_seen, "skipped": self.files_skipped},
            "skipped": {
                "by_reason": dict(sorted(self.skip_reasons.items())),
                "items": self.skipped,
                "items_not_listed": max(0, sum(self.skip_reasons.values()) - len(self.skipped)),
            },
        }

    def metrics(self) -> dict[str, Any]:
        """The key numbers for the manifest."""
        return {
            "documents_read": self.documents_read,
            "documents_kept": self.documents_kept,
            "records": self.total_records(),
            **{f"records_{s}": self.records[s] for s in self.splits},
            "characters": sum(self.chars.values()),
            "exact_duplicate_records": self.exact_duplicate_records,
            "near_duplicate_documents": self.near_duplicate_documents,
            "skipped": sum(self.skip_reasons.values()),
        }
