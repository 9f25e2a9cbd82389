"""Reading labelled task data: classification records and named-entity sentences, checked and made uniform.

Classification (`read_cls`): JSON lines (or a JSON list) of records, or a CSV file with a header row; the text and
label field names are configurable. Each example is a `ClsExample`.

Named entities (`read_ner`), every format turned into `NerExample`s with IOB2 tags ("O", "B-TYPE", "I-TYPE"), one
per evaluation unit:

- Column files: one token a line, blank line between sentences, the token first and the tag last, separated by a
  tab or a space. A file whose tokens are (nearly) all single characters is a character file: its sentence text
  is the characters joined with "" and each character is a unit, whitespace characters included, because the file
  tags them (cMedQANER writes full-width and no-break spaces as `\\u3000 O`, `\\xa0 O`; a line that starts with two
  spaces is the space character and its tag). Any other file is a word file: words joined with " ", one unit each.
- Tag schemes, detected from the tags themselves, all converted to IOB2:
  IOB2 `B-X`/`I-X`/`O` as is; the underscore spelling `B_X`/`I_X` becomes `B-X`/`I-X`;
  BMES / BIOES: `B-X` → `B-X`, `M-X` or `I-X` → `I-X`, `E-X` → `I-X`, `S-X` → `B-X` (an `E-` or `S-` also ends
  the entity, so a following `I-X` starts a new one).
- Invalid sequences: an `I-X` (or `M-X`/`E-X`) that does not continue a `B-X`/`I-X` of the same type. With
  `invalid_tags="repair"` it becomes `B-X`, counted in `TaskData.repaired` and logged with file:line (this is also
  how IOB1 files, where `I-` starts entities, come out right); with `"error"` it raises.
- Span JSON (CMeEE style): a JSON list, or JSON lines, of `{"text", "entities": [{"start_idx", "end_idx",
  "type", "entity"}]}` with an INCLUSIVE `end_idx`. Every non-whitespace character is a unit; whitespace is not
  (no tokenizer gives it a token, and an entity's surrounding whitespace is trimmed so it cannot decide overlaps).

Nested entities: flat IOB2 tags can hold only non-overlapping entities, so overlapping spans in span JSON are
resolved by the `nested` policy, and every span it drops is counted in `TaskData.dropped_nested`:

- "outer" (default): the longest spans win; a span overlapping one already kept is dropped. Between equally long
  spans the earlier start wins, then file order. On CMeEE, sym "细胞下降" is kept and its bod "细胞" dropped.
- "inner": the same with the shortest spans first (keeps "细胞", drops "细胞下降").
- "first": file order; a span overlapping an earlier kept one is dropped.

Exact duplicates (same span, same type) are merged silently; they are not nesting. Column files cannot express
nesting, so nothing is dropped there. The tag arithmetic itself (scheme conversion, nesting, spans <-> tags) lives
in `lmtailor.tasks.tags`; this module owns files, formats and error messages.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lmtailor.corpus.encoding import csv_problem, sniff_file
from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.tasks.tags import NESTED_POLICIES, resolve_nested, spans_from_tags, split_tag, tags_from_spans, to_iob2

log = logging.getLogger(__name__)

FORMATS = ("auto", "columns", "spans")
INVALID_TAG_POLICIES = ("repair", "error")
# Share of one-character tokens above which a column file is read as characters: Chinese character files are at
# ~100%, English word files (NCBI-disease, BC5CDR) at ~20%, so the exact value hardly matters.
CHAR_FILE_SHARE = 0.9
# Skips and repairs beyond this many per file go to DEBUG, so one broken export cannot flood the console.
_LOGGED_PER_KIND = 20
# Legal documents in one CSV cell exceed the csv module's 128 KiB default; 2**31-1 fits a C long everywhere.
_CSV_FIELD_LIMIT = 2**31 - 1
_TEXT_NAMES = ("text", "sentence", "content", "fact", "abstract", "document", "body", "question")
_LABEL_NAMES = ("label", "labels", "category", "class", "intent", "target", "accusation", "y")


@dataclass(frozen=True)
class ClsExample:
    """One classification example; `id` is "<file name>:<line or record number>"."""

    text: str
    label: str
    id: str


@dataclass(frozen=True)
class NerExample:
    """One sentence: its text, the [start, end) offsets of its evaluation units, and one IOB2 tag per unit."""

    text: str
    units: tuple[tuple[int, int], ...]
    tags: tuple[str, ...]
    id: str


@dataclass
class TaskData:
    """The examples of one file, its sorted labels (class labels, or entity types without B-/I-) and what was fixed."""

    path: Path
    kind: str  # "cls" or "ner"
    examples: list = field(default_factory=list)  # ClsExample or NerExample
    labels: list[str] = field(default_factory=list)
    skipped: int = 0  # malformed lines/records skipped, each logged with file:line
    repaired: int = 0  # invalid tag sequences repaired (ner)
    dropped_nested: int = 0  # nested entities dropped by the nested policy (span JSON)


class _Notes:
    """Counts the skips and repairs of one file, logging each with file:line (the first few at WARNING)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0
        self.repaired = 0

    def skip(self, where: str, why: str) -> None:
        self.skipped += 1
        level = logging.WARNING if self.skipped <= _LOGGED_PER_KIND else logging.DEBUG
        log.log(level, "%s: skipped: %s", where, why)

    def repair(self, where: str, why: str) -> None:
        self.repaired += 1
        level = logging.WARNING if self.repaired <= _LOGGED_PER_KIND else logging.DEBUG
        log.log(level, "%s: repaired: %s", where, why)

    def finish(self, data: TaskData) -> TaskData:
        data.skipped, data.repaired = self.skipped, self.repaired
        if self.skipped or self.repaired:
            log.warning("%s: %d skipped, %d tags repaired (details above)", self.path, self.skipped, self.repaired)
        return data


def _choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}")


def _read_text(path: Path) -> str:
    """The whole decoded file (task files are small), with any BOM removed; the errors say what to do."""
    if not path.exists():
        raise InputNotFoundError(f"task data file {path} does not exist; check the path.")
    if path.is_dir():
        raise InputFormatError(f"{path} is a folder; pass one task data file (e.g. train.jsonl).")
    sniffed = sniff_file(path)
    if sniffed.encoding is None:
        raise InputFormatError(sniffed.detail)
    try:
        # Decoded by hand, not with read_text: universal newlines would also split at a lone "\r" inside a token.
        text = path.read_bytes().decode(sniffed.encoding).lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise InputFormatError(
            f"{path}: invalid {sniffed.encoding} bytes at byte {exc.start} ({exc.reason}); re-save it as UTF-8"
        ) from None
    if not text.strip():
        raise EmptyInputError(f"{path} is empty; it must hold labelled examples.")
    return text


def _lines(text: str) -> list[str]:
    # Only "\n" ends a line: str.splitlines() would also split at U+2028, U+0085 and \x1c, which can be tokens.
    return [line.removesuffix("\r") for line in text.split("\n")]


def _json_records(path: Path, text: str) -> Iterator[tuple[int, str, object, str]]:
    """(number, where, record, problem) for each record of a JSON list (numbered from 1) or of JSON lines
    (numbered by line); a line that is not JSON comes with record None and the parse error as the problem."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            if exc.msg != "Extra data":  # "Extra data": JSON lines whose first record is a list
                raise InputFormatError(
                    f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); the file must be one "
                    "JSON list of records, or one JSON record a line"
                ) from None
        else:
            for number, item in enumerate(items, 1):
                yield number, f"{path} record {number}", item, ""
            return
    for number, line in enumerate(_lines(text), 1):
        if not line.strip():
            continue
        try:
            yield number, f"{path}:{number}", json.loads(line), ""
        except json.JSONDecodeError as exc:
            yield number, f"{path}:{number}", None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _csv_records(path: Path, text: str, needed: dict[str, str]) -> Iterator[tuple[int, str, object, str]]:
    """(line, where, row dict, "") for each CSV row after the header; the line is where the row starts."""
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)  # strict: an unclosed quote is an error
    columns = reader.fieldnames or []
    missing = {name: role for name, role in needed.items() if name not in columns}
    if missing:
        raise InputFormatError(_missing_fields_message(path, missing, columns, "column"))
    start = reader.line_num + 1
    try:
        for row in reader:
            yield start, f"{path}:{start}", row, ""
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InputFormatError(f"{path}:{start}: {csv_problem(exc)}") from None


def _missing_fields_message(path: Path, missing: dict[str, str], found: Iterable[str], what: str) -> str:
    """The error for fields (`missing`: name -> "text" or "label") absent from a whole file, with a likely fix."""
    found = sorted(set(found))
    hints = []
    for role in missing.values():
        names = _TEXT_NAMES if role == "text" else _LABEL_NAMES
        guess = next((f for f in names if f in found and f not in missing), None)
        hints.append(f"pass --{role}-field {guess}" if guess else f"pass --{role}-field with the right {what}")
    return (
        f"no {what} {', '.join(map(repr, missing))} in {path}; {what}s found: {', '.join(found) or 'none'}; "
        + "; ".join(hints)
    )


def read_cls(path: Path, text_field: str = "text", label_field: str = "label") -> TaskData:
    """Classification examples from `.jsonl`/`.json` (JSON lines or a JSON list of records) or `.csv` (header row).

    Malformed lines, records without the text or label, empty texts and non-scalar labels are skipped and logged;
    a field absent from every record is an error that names the fields the file does have.
    """
    path = Path(path)
    text = _read_text(path)
    roles = {text_field: "text", label_field: "label"}
    records = _csv_records(path, text, roles) if path.suffix.lower() == ".csv" else _json_records(path, text)
    notes, examples = _Notes(path), []
    seen_fields: set[str] = set()
    has_text = has_label = False
    for number, where, record, problem in records:
        if not isinstance(record, dict):
            notes.skip(where, problem or f"expected a JSON object, got {type(record).__name__}")
            continue
        seen_fields.update(k for k in record if isinstance(k, str))
        has_text, has_label = has_text or text_field in record, has_label or label_field in record
        body, label = record.get(text_field), record.get(label_field)
        if not isinstance(body, str) or not body.strip():
            notes.skip(where, f"no text in field {text_field!r}")
            continue
        if isinstance(label, bool) or not isinstance(label, str | int) or not str(label).strip():
            notes.skip(where, f"field {label_field!r} is {label!r}; a label must be a non-empty string or integer")
            continue
        examples.append(ClsExample(body, str(label), f"{path.name}:{number}"))
    absent = {name: roles[name] for name, present in ((text_field, has_text), (label_field, has_label)) if not present}
    if seen_fields and absent:
        raise InputFormatError(_missing_fields_message(path, absent, seen_fields, "field"))
    if not examples:
        raise EmptyInputError(f"{path}: no usable examples ({notes.skipped} skipped, see the log); fix the file.")
    labels = sorted({ex.label for ex in examples})
    log.info("%s: %d examples, %d labels", path, len(examples), len(labels))
    return notes.finish(TaskData(path, "cls", examples, labels))


def read_ner(path: Path, fmt: str = "auto", nested: str = "outer", invalid_tags: str = "repair") -> TaskData:
    """Entity-tagged sentences from a column file or span JSON; see the module docstring for the policies."""
    _choice("fmt", fmt, FORMATS)
    _choice("nested", nested, NESTED_POLICIES)
    _choice("invalid_tags", invalid_tags, INVALID_TAG_POLICIES)
    path = Path(path)
    if fmt == "auto":
        fmt = "spans" if path.suffix.lower() in (".json", ".jsonl") else "columns"
    text = _read_text(path)
    notes = _Notes(path)
    data = _read_spans(path, text, nested, notes) if fmt == "spans" else _read_columns(path, text, invalid_tags, notes)
    if not data.examples:
        raise EmptyInputError(f"{path}: no usable sentences ({notes.skipped} skipped, see the log); fix the file.")
    data.labels = sorted({tag[2:] for ex in data.examples for tag in ex.tags if tag != "O"})
    log.info("%s: %d sentences, entity types %s", path, len(data.examples), ", ".join(data.labels) or "none")
    return notes.finish(data)


def _split_columns(line: str) -> list[str]:
    if "\t" in line:
        return line.split("\t")
    if line.startswith("  "):  # a character file's space character, then its tag
        return [" ", *line[2:].split(" ")]
    return line.split(" ")


def _parse_tag(path: Path, lineno: int, tag: str) -> tuple[str, str]:
    parsed = split_tag(tag)
    if parsed is None:
        raise InputFormatError(
            f"{path}:{lineno}: unknown tag {tag!r}; tags must be O or a prefix B, I, M, E or S, then '-' or '_', "
            "then the entity type (e.g. B-Disease, I_drug, S-dis); fix that line"
        )
    return parsed


def _read_column_sentences(path: Path, text: str) -> list[tuple[list[str], list[tuple[str, str]], list[int]]]:
    """(tokens, (prefix, type) tags, line numbers) for each blank-line-separated sentence."""
    sentences: list[tuple[list[str], list[tuple[str, str]], list[int]]] = []
    tokens: list[str] = []
    tags: list[tuple[str, str]] = []
    lines: list[int] = []
    for lineno, raw in enumerate([*_lines(text), ""], 1):
        line = raw.rstrip(" \t")
        if not line.strip(" \t") or line.startswith("-DOCSTART-"):
            if tokens:
                sentences.append((tokens, tags, lines))
                tokens, tags, lines = [], [], []
            continue
        parts = _split_columns(line)
        if len(parts) < 2 or not parts[0] or not parts[-1]:
            raise InputFormatError(
                f"{path}:{lineno}: expected a token and its tag separated by a tab or a space, got {raw!r}; "
                "every non-blank line needs both, and sentences are separated by blank lines"
            )
        tokens.append(parts[0])
        tags.append(_parse_tag(path, lineno, parts[-1]))
        lines.append(lineno)
    return sentences


def _iob2_checked(
    path: Path, tags: list[tuple[str, str]], lines: list[int], invalid_tags: str, notes: _Notes
) -> tuple[str, ...]:
    """IOB2 tags for one sentence, each invalid continuation repaired (counted, logged) or refused."""
    iob2, invalid = to_iob2(tags)
    for i in invalid:
        prefix, etype = tags[i]
        previous = iob2[i - 1] if i else "the sentence start"
        why = f"{prefix}-{etype} after {previous} continues no {etype} entity"
        if invalid_tags == "error":
            raise InputFormatError(
                f"{path}:{lines[i]}: {why}; fix the tags, or read with invalid_tags='repair' (--invalid-tags "
                f"repair) to start a new entity there (B-{etype})"
            )
        notes.repair(f"{path}:{lines[i]}", f"{why}; made it B-{etype}")
    return tuple(iob2)


def _read_columns(path: Path, text: str, invalid_tags: str, notes: _Notes) -> TaskData:
    sentences = _read_column_sentences(path, text)
    n_tokens = sum(len(tokens) for tokens, _, _ in sentences)
    n_chars = sum(len(tok) == 1 for tokens, _, _ in sentences for tok in tokens)
    joiner = "" if n_tokens and n_chars / n_tokens >= CHAR_FILE_SHARE else " "
    prefixes = {prefix for _, tags, _ in sentences for prefix, _ in tags}
    scheme = "BMES/BIOES" if prefixes & set("MES") else "IOB2"
    log.info("%s: %s tags, %s units", path, scheme, "character" if joiner == "" else "word")
    examples = []
    for tokens, tags, lines in sentences:
        units, start = [], 0
        for tok in tokens:
            units.append((start, start + len(tok)))
            start += len(tok) + len(joiner)
        iob2 = _iob2_checked(path, tags, lines, invalid_tags, notes)
        examples.append(NerExample(joiner.join(tokens), tuple(units), iob2, f"{path.name}:{lines[0]}"))
    return TaskData(path, "ner", examples)


def _entity(where: str, text: str, ent: object) -> tuple[int, int, str] | None:
    """The checked [start, end) span and type of one span-JSON entity, whitespace trimmed; None if only whitespace."""
    if not isinstance(ent, dict):
        raise InputFormatError(f"{where}: entity {ent!r} is not an object with start_idx, end_idx, type, entity")
    start, end, etype = ent.get("start_idx"), ent.get("end_idx"), ent.get("type")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not isinstance(etype, str):
        raise InputFormatError(
            f"{where}: entity {ent!r} needs integer start_idx and end_idx (inclusive) and a string type; fix it"
        )
    inclusive = "end_idx is inclusive (text[start_idx:end_idx+1] is the entity): if your offsets are exclusive,"
    inclusive += " subtract 1 from every end_idx"
    if not etype.strip():
        raise InputFormatError(f"{where}: entity {ent!r} has an empty type; give every entity a type")
    if not 0 <= start <= end < len(text):
        raise InputFormatError(
            f"{where}: entity span [{start}, {end}] ({etype}) is outside the text of {len(text)} characters "
            f"(offsets 0..{len(text) - 1}); {inclusive}"
        )
    mention, got = ent.get("entity"), text[start : end + 1]
    if mention is not None and got != mention:
        looks = " The offsets look exclusive: text[start_idx:end_idx] matches." if text[start:end] == mention else ""
        raise InputFormatError(
            f"{where}: entity span [{start}, {end}] ({etype}): the text there is {got!r} but 'entity' is "
            f"{mention!r}.{looks} {inclusive}; otherwise fix the offsets or the entity text"
        )
    while start <= end and text[start].isspace():
        start += 1
    while end >= start and text[end].isspace():
        end -= 1
    if start > end:
        log.warning("%s: entity %r is only whitespace; it has no units and was left out", where, ent)
        return None
    return start, end + 1, etype


def _read_spans(path: Path, text: str, nested: str, notes: _Notes) -> TaskData:
    data = TaskData(path, "ner")
    for number, where, record, problem in _json_records(path, text):
        if not isinstance(record, dict):
            notes.skip(where, problem or f"expected a JSON object, got {type(record).__name__}")
            continue
        body, entities = record.get("text"), record.get("entities")
        if not isinstance(body, str) or not body.strip():
            notes.skip(where, "no text in field 'text'")
            continue
        if not isinstance(entities, list):
            notes.skip(where, "no 'entities' list (use [] for a sentence without entities)")
            continue
        spans = [span for ent in entities if (span := _entity(where, body, ent)) is not None]
        kept, dropped = resolve_nested(spans, nested)
        data.dropped_nested += dropped
        units = tuple((i, i + 1) for i, ch in enumerate(body) if not ch.isspace())
        data.examples.append(NerExample(body, units, tags_from_spans(units, kept), f"{path.name}:{number}"))
    if data.dropped_nested:
        log.info("%s: %d nested entities dropped (nested=%r)", path, data.dropped_nested, nested)
    return data


def entity_spans(example: NerExample) -> list[tuple[int, int, str]]:
    """The character [start, end) spans and types of the entities in `example`'s IOB2 tags."""
    return spans_from_tags(example.units, example.tags)


def check_splits(train: TaskData, *others: TaskData) -> None:
    """Raise InputFormatError when a dev/test file has a class label or entity type the training file lacks."""
    known = set(train.labels)
    for other in others:
        if other.kind != train.kind:
            raise InputFormatError(
                f"{other.path} holds {other.kind} data but {train.path} holds {train.kind} data; pass files of one task"
            )
        unknown = sorted(set(other.labels) - known)
        if not unknown:
            continue
        what = "class label" if train.kind == "cls" else "entity type"
        seen: dict[str, list[str]] = {label: [] for label in unknown}
        for ex in other.examples:
            found = {ex.label} if isinstance(ex, ClsExample) else {tag[2:] for tag in ex.tags if tag != "O"}
            for label in found & seen.keys():
                seen[label].append(ex.id)
        shown = "; ".join(f"{lab!r} (e.g. {', '.join(seen[lab][:3])})" for lab in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise InputFormatError(
            f"{other.path}: {len(unknown)} {what}(s) not in the training file {train.path}: {shown}{more}. "
            f"A model cannot learn them: move some of their examples into {train.path.name} (or re-split so every "
            f"{what} occurs in train), or remove them from {other.path.name}."
        )


def read_inputs(text: str | None, path: Path | None) -> list[str]:
    """Texts to label: one given on the command line, or a file (.jsonl with a "text" field, else one per line)."""
    if text is not None:
        return [text]
    if path is None or not Path(path).is_file():
        raise InputNotFoundError(f"input file {path} does not exist; pass --text or an existing file.")
    if Path(path).suffix in (".jsonl", ".json"):
        texts = [ex.text for ex in read_cls(path, label_field="text").examples]
    else:
        texts = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not texts:
        raise EmptyInputError(f"{path} has no text to label.")
    return texts
