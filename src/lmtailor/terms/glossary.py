"""Term files: reading glossaries and mined/merged `terms.tsv`, normalising terms, and writing `terms.tsv`.

Formats read (UTF-8, a BOM is fine):
- a `terms.tsv` written by `terms mine` (`term score freq lang`) or `terms merge` (`term score freq source`), or a
  terms output folder holding one: any file whose first line is a tab-separated header starting with `term`;
- a glossary: one term a line, or `term<TAB>freq` (THUOCL); blank lines and lines starting with `#` are skipped.

Priority order within a file: by the `score` column when there is one, else by the `freq` column, else file order.
`load_terms` is what later stages (the tokenizer) import to get a clean, de-duplicated term list.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmtailor.errors import InputFormatError, InputNotFoundError

log = logging.getLogger(__name__)

TERMS_FILE = "terms.tsv"
MINED_COLUMNS = ("term", "score", "freq", "lang")
MERGED_COLUMNS = ("term", "score", "freq", "source")
_KNOWN_COLUMNS = {"term", "score", "freq", "lang", "source"}
DEFAULT_MAX_TERM_CHARS = 32


@dataclass(frozen=True)
class TermEntry:
    """One term as read from a file, before normalisation."""

    term: str
    score: float | None
    freq: int | None
    where: str  # "file:line", for messages


@dataclass
class TermFile:
    """The entries of one term file in priority order, and how many lines could not be read."""

    path: Path
    entries: list[TermEntry] = field(default_factory=list)
    malformed: int = 0
    has_header: bool = False


def resolve_term_file(path: Path) -> Path:
    """The file to read for `path`: the file itself, or `terms.tsv` inside a terms output folder."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"term input {path} does not exist; pass a terms.tsv, a terms folder or a glossary.")
    if path.is_dir():
        inner = path / TERMS_FILE
        if not inner.is_file():
            raise InputFormatError(
                f"folder {path} has no {TERMS_FILE}; pass the output folder of `lmtailor terms` or a glossary file."
            )
        return inner
    return path


def read_term_file(path: Path) -> TermFile:
    """Read a terms.tsv or glossary (see the module docstring); malformed lines are counted and logged, not fatal."""
    path = resolve_term_file(path)
    result = TermFile(path)
    columns: list[str] | None = None
    try:
        with open(path, encoding="utf-8-sig", newline=None) as fh:
            for lineno, raw in enumerate(fh, start=1):
                line = raw.rstrip("\n").rstrip("\r")
                if lineno == 1 and _is_header(line):
                    columns = line.lower().split("\t")
                    result.has_header = True
                    continue
                if not line.strip() or (columns is None and line.lstrip().startswith("#")):
                    continue
                entry = _parse_line(line, columns, f"{path}:{lineno}")
                if entry is None:
                    result.malformed += 1
                else:
                    result.entries.append(entry)
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}); re-save it as UTF-8, "
            f"e.g. `iconv -f GB18030 -t UTF-8 {path} > {path.stem}.utf8{path.suffix}`."
        ) from None
    result.entries = _priority_order(result.entries)
    return result


def _is_header(line: str) -> bool:
    fields = line.strip().lower().split("\t")
    return len(fields) >= 2 and fields[0] == "term" and set(fields) <= _KNOWN_COLUMNS


def _parse_line(line: str, columns: list[str] | None, where: str) -> TermEntry | None:
    fields = line.split("\t")
    if columns is None:
        if len(fields) > 2:
            log.warning("skipping %s: expected `term` or `term<TAB>freq`, got %d fields", where, len(fields))
            return None
        values = dict(zip(("term", "freq"), fields, strict=False))
    else:
        if len(fields) != len(columns):
            log.warning("skipping %s: expected the %d columns %s, got %d", where, len(columns), columns, len(fields))
            return None
        values = dict(zip(columns, fields, strict=True))
    term = values.get("term", "")
    if not term.strip():
        log.warning("skipping %s: empty term", where)
        return None
    try:
        freq = _number(values.get("freq"), int)
        score = _number(values.get("score"), float)
    except ValueError as exc:
        log.warning("skipping %s: %s", where, exc)
        return None
    return TermEntry(term, score, freq, where)


def _number(text: str | None, kind: type) -> int | float | None:
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{text.strip()!r} is not a finite number")
    return int(value) if kind is int else value


def _priority_order(entries: list[TermEntry]) -> list[TermEntry]:
    """By score, else by freq (both descending; entries lacking the value go last), else file order; stable."""
    if any(e.score is not None for e in entries):
        return sorted(entries, key=lambda e: -e.score if e.score is not None else float("inf"))
    if any(e.freq is not None for e in entries):
        return sorted(entries, key=lambda e: -e.freq if e.freq is not None else float("inf"))
    return entries


def normalise_term(raw: str, lowercase: bool = False) -> str:
    """NFKC (full-width letters and digits become ASCII), whitespace runs collapsed to one space, stripped."""
    term = " ".join(unicodedata.normalize("NFKC", raw).split())
    return term.lower() if lowercase else term


def term_problem(raw: str, max_chars: int = DEFAULT_MAX_TERM_CHARS) -> str | None:
    """Why a term (raw, or normalised) is unusable, as a short metrics key; None when it is fine."""
    nfkc = unicodedata.normalize("NFKC", raw)
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in " \t" for ch in nfkc):
        return "control_chars"
    term = " ".join(nfkc.split())
    if len(term) < 2:
        return "too_short"
    if len(term) > max_chars:
        return "too_long"
    if not any(ch.isalpha() for ch in term):
        return "no_letters"
    return None


def dedup_key(term: str) -> str:
    """Terms that differ only in letter case are the same term (a no-op for Han, which has no case)."""
    return term.casefold()


def load_terms(path: Path, max_chars: int = DEFAULT_MAX_TERM_CHARS) -> list[str]:
    """Normalised, valid, de-duplicated terms of a terms.tsv, terms folder or glossary, in priority order."""
    seen: set[str] = set()
    terms: list[str] = []
    for entry in read_term_file(Path(path)).entries:
        if term_problem(entry.term, max_chars) is not None:
            continue
        term = normalise_term(entry.term)
        key = dedup_key(term)
        if key not in seen:
            seen.add(key)
            terms.append(term)
    return terms


def write_terms_tsv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> int:
    """Write a header and one tab-separated line per row (floats with 4 decimals); returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("\t".join(columns) + "\n")
        for row in rows:
            fh.write("\t".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row) + "\n")
            n += 1
    return n
