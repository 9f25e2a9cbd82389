"""Finding input files and reading them as a stream of documents, one format at a time.

A `.txt` or `.md` file is one document whose lines are decoded lazily, so a file of any size is never held in
memory. Each line of a `.jsonl` file and each row of a `.csv` file is its own document, and so is each sentence of
a labelled NER file given as an NER input (so a task's training texts can be its pretraining text). Files or lines that
cannot be read become `Skip` items in the same stream, so the caller can count and report them instead of
crashing on them; only a mistake that makes a whole file unusable (a missing CSV column) raises.
"""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmtailor.corpus.encoding import csv_problem, sniff_file
from lmtailor.errors import InputFormatError, InputNotFoundError, LmtailorError

log = logging.getLogger(__name__)

SUPPORTED = {".txt": "text", ".md": "markdown", ".jsonl": "jsonl", ".csv": "csv"}
# Longest piece of a line handed on at once: a file without newlines is read in pieces of this many characters.
LINE_CHARS = 1 << 16
# Legal documents in one CSV cell exceed the csv module's 128 KiB default; 2**31-1 fits a C long everywhere.
_CSV_FIELD_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ReadOptions:
    """What the readers need to know: where the text and id live in structured files, and a forced encoding."""

    text_field: str = "text"
    id_field: str | None = None
    csv_column: str = "text"
    encoding: str | None = None


@dataclass(frozen=True)
class SourceFile:
    """One input file: its path, its name relative to the input it was found under, and its format."""

    path: Path
    rel: str
    kind: str | None  # a value of SUPPORTED, or None for a file we do not read


@dataclass
class Document:
    """One document: `key` names it stably (relative path, plus row id or line number for .jsonl/.csv)."""

    key: str
    path: Path
    markdown: bool
    lines: Iterator[str]  # decoded lazily; "\n"-terminated except the last line and pieces of over-long lines
    encoding: str = "utf-8"


@dataclass(frozen=True)
class Skip:
    """Something that was not read: `reason` is short and countable, `detail` says what to do about it."""

    path: Path
    reason: str
    detail: str
    line: int | None = None

    def where(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


def check_inputs(paths: Sequence[Path]) -> list[Path]:
    """The inputs as Paths, raising `InputNotFoundError` for the first one that does not exist."""
    resolved = [Path(p) for p in paths]
    for p in resolved:
        if not p.exists():
            raise InputNotFoundError(f"input {p} does not exist; pass existing files or folders of documents.")
    return resolved


def discover(paths: Sequence[Path], kind: str | None = None) -> list[SourceFile]:
    """Every file under `paths` (folders recursively), in sorted order, with its format; hidden entries skipped.

    The format comes from the extension, unless `kind` gives it for every file (`"ner"`: labelled NER task files).
    """
    found: list[SourceFile] = []
    for root in check_inputs(paths):
        if root.is_file():
            found.append(SourceFile(root, root.name, kind or SUPPORTED.get(root.suffix.lower())))
            continue
        files = [p for p in root.rglob("*") if p.is_file()]
        for path in sorted(files, key=lambda p: p.relative_to(root).parts):
            rel = path.relative_to(root)
            if any(part.startswith(".") for part in rel.parts):
                continue  # .git, .DS_Store, editor swap files: never documents, not worth a skip entry each
            found.append(SourceFile(path, rel.as_posix(), kind or SUPPORTED.get(path.suffix.lower())))
    return found


def read_file(src: SourceFile, options: ReadOptions) -> Iterator[Document | Skip]:
    """The documents of one file, or `Skip`s for what cannot be read."""
    if src.kind is None:
        yield Skip(src.path, "unsupported extension", f"{src.path}: convert it to one of {', '.join(SUPPORTED)}")
        return
    sniffed = sniff_file(src.path, options.encoding)
    if sniffed.encoding is None:
        yield Skip(src.path, sniffed.reason, sniffed.detail)
        return
    if src.kind == "ner":
        yield from _read_ner_texts(src)
    elif src.kind in ("text", "markdown"):
        lines = _iter_lines(src.path, sniffed.encoding)
        yield Document(src.rel, src.path, src.kind == "markdown", lines, sniffed.encoding)
    elif src.kind == "jsonl":
        yield from _read_jsonl(src, options, sniffed.encoding)
    else:
        yield from _read_csv(src, options, sniffed.encoding)


def _read_ner_texts(src: SourceFile) -> Iterator[Document | Skip]:
    """The sentences of an NER task file (IOB columns or span JSON), one document each, read by the task reader.

    The task reader owns the formats (and their line-level skips); a file it cannot use at all becomes one Skip.
    """
    from lmtailor.tasks.readers import read_ner  # the task layer imports the corpus layer, not the other way round

    try:
        data = read_ner(src.path)
    except LmtailorError as exc:
        yield Skip(src.path, "not an NER task file", f"{exc} (it was given as an NER input)")
        return
    for i, example in enumerate(data.examples, 1):
        key = f"{src.rel}#{i}"
        yield Document(key, src.path, False, text_lines(example.text))


def _iter_lines(path: Path, encoding: str) -> Iterator[str]:
    # TextIOWrapper decodes incrementally with strict errors, so a bad byte raises where it is found.
    with open(path, encoding=encoding, errors="strict") as fh:
        while line := fh.readline(LINE_CHARS):
            yield line


def text_lines(text: str) -> Iterator[str]:
    """The lines of an in-memory text, "\n"-terminated like lines read from a file."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for line in lines[:-1]:
        yield line + "\n"
    if lines[-1]:
        yield lines[-1]


def _decode_skip(src: SourceFile, encoding: str, line: int, exc: UnicodeDecodeError) -> Skip:
    detail = f"{src.path}:{line}: invalid {encoding} ({exc.reason}); the rest of the file was not read; " + (
        "re-save it as UTF-8 or pass --encoding with its real encoding"
    )
    return Skip(src.path, "decode error", detail, line)


def _row_key(src: SourceFile, row: dict[str, Any], id_field: str | None, line: int) -> str:
    ident = row.get(id_field) if id_field else None
    return f"{src.rel}#{ident}" if ident not in (None, "") else f"{src.rel}:{line}"


def _read_jsonl(src: SourceFile, options: ReadOptions, encoding: str) -> Iterator[Document | Skip]:
    lineno = 0
    try:
        with open(src.path, encoding=encoding, errors="strict") as fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                row, problem = _parse_jsonl_line(line, options.text_field)
                if problem:
                    yield Skip(src.path, "malformed jsonl line", f"{src.path}:{lineno}: {problem}", lineno)
                    continue
                key = _row_key(src, row, options.id_field, lineno)
                yield Document(key, src.path, False, text_lines(row[options.text_field]), encoding)
    except UnicodeDecodeError as exc:
        yield _decode_skip(src, encoding, lineno + 1, exc)


def _parse_jsonl_line(line: str, field: str) -> tuple[dict[str, Any], str]:
    """The parsed row and "" if it has a string `field`; else {} and what is wrong with it."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        return {}, f"not valid JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(row, dict):
        return {}, f"expected a JSON object, got {type(row).__name__}"
    if field not in row:
        return {}, f"no field {field!r} (fields: {', '.join(map(str, row)) or 'none'}); pass --text-field"
    if not isinstance(row[field], str):
        return {}, f"field {field!r} is {type(row[field]).__name__}, not a string"
    return row, ""


def _read_csv(src: SourceFile, options: ReadOptions, encoding: str) -> Iterator[Document | Skip]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader: csv.DictReader[str] | None = None
    start = 2  # the line where the row being read starts
    try:
        with open(src.path, encoding=encoding, errors="strict", newline="") as fh:
            # strict: a quote never closed is an error, not the rest of the file merged into one cell
            reader = csv.DictReader(fh, strict=True)
            columns = reader.fieldnames or []
            if columns and options.csv_column not in columns:
                raise InputFormatError(
                    f"{src.path}: no column {options.csv_column!r}; its columns are {', '.join(columns)}. "
                    "Pass --csv-column with the column that holds the text."
                )
            for row in reader:
                text = row.get(options.csv_column)
                if not isinstance(text, str):
                    detail = f"{src.path}:{reader.line_num}: row has fewer cells than the header"
                    yield Skip(src.path, "malformed csv row", detail, reader.line_num)
                    continue
                key = _row_key(src, row, options.id_field, reader.line_num)
                yield Document(key, src.path, False, text_lines(text), encoding)
                start = reader.line_num + 1
    except UnicodeDecodeError as exc:
        yield _decode_skip(src, encoding, (reader.line_num if reader else 0) + 1, exc)
    except csv.Error as exc:
        detail = f"{src.path}:{start}: {csv_problem(exc)}; the rest of the file was not read"
        yield Skip(src.path, "malformed csv row", detail, start)
