"""IOB2 tag arithmetic: other tag schemes to IOB2, nested spans to flat ones, and spans to tags and back.

Pure functions on tags and offsets, no files. The policies they implement (scheme conversion, repair of invalid
`I-` tags, the nested-entity policies) are described for users in `lmtailor.tasks.readers`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence

NESTED_POLICIES = ("outer", "inner", "first")
_TAG = re.compile(r"([BIMES])[-_](\S.*)")

Span = tuple[int, int, str]  # character [start, end) and entity type


def split_tag(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of a tag in any supported scheme: ("O", "") or e.g. ("B", "drug") for "B-drug" or "B_drug";
    None for anything else."""
    if tag == "O":
        return "O", ""
    match = _TAG.fullmatch(tag)
    return (match.group(1), match.group(2)) if match else None


def to_iob2(tags: Sequence[tuple[str, str]]) -> tuple[list[str], list[int]]:
    """IOB2 tags from IOB2, BMES or BIOES (prefix, type) pairs, and the positions of invalid continuations.

    B→B, S→B, I/M/E→I when they continue an entity of the same type (E and S also end it). An I/M/E that continues
    nothing (after O, after another type, after E/S, or first) is invalid: it becomes B and its position is listed,
    so the caller can count it or refuse the file.
    """
    out: list[str] = []
    invalid: list[int] = []
    open_type: str | None = None  # the type of the entity that the next I/M/E may continue
    for i, (prefix, etype) in enumerate(tags):
        if prefix == "O":
            out.append("O")
            open_type = None
            continue
        if prefix in "IME" and open_type == etype:
            out.append(f"I-{etype}")
        else:
            if prefix in "IME":
                invalid.append(i)
            out.append(f"B-{etype}")
        open_type = None if prefix in "ES" else etype
    return out, invalid


def resolve_nested(spans: Sequence[Span], policy: str) -> tuple[list[Span], int]:
    """The non-overlapping spans that `policy` keeps (sorted by start) and how many it dropped.

    "outer": longest first; "inner": shortest first; "first": file order. A span overlapping one already kept is
    dropped; equal lengths go by earlier start, then file order. Exact duplicates are merged, not counted as dropped.
    """
    if policy not in NESTED_POLICIES:
        raise ValueError(f"nested policy {policy!r} is not one of {NESTED_POLICIES}")
    unique = list(dict.fromkeys(spans))
    order = list(range(len(unique)))
    if policy == "outer":
        order.sort(key=lambda i: (unique[i][0] - unique[i][1], unique[i][0], i))
    elif policy == "inner":
        order.sort(key=lambda i: (unique[i][1] - unique[i][0], unique[i][0], i))
    kept: list[Span] = []
    for i in order:
        start, end, _ = unique[i]
        if all(end <= k_start or start >= k_end for k_start, k_end, _ in kept):
            kept.append(unique[i])
    return sorted(kept), len(unique) - len(kept)


def tags_from_spans(units: Sequence[tuple[int, int]], spans: Iterable[Span]) -> tuple[str, ...]:
    """IOB2 tags for `units` (sorted, non-overlapping [start, end) offsets) from non-overlapping character spans.

    A span tags every unit it touches. Raises ValueError for a span that touches no unit or shares a unit with
    another span (resolve nesting first).
    """
    starts, ends = [u[0] for u in units], [u[1] for u in units]
    tags = ["O"] * len(units)
    for start, end, etype in sorted(spans):
        first, stop = bisect_right(ends, start), bisect_left(starts, end)  # units with end > start and start < end
        if first >= stop:
            raise ValueError(f"span [{start}, {end}) {etype} covers no unit")
        if any(tag != "O" for tag in tags[first:stop]):
            raise ValueError(f"span [{start}, {end}) {etype} shares a unit with another span; resolve nesting first")
        tags[first] = f"B-{etype}"
        tags[first + 1 : stop] = [f"I-{etype}"] * (stop - first - 1)
    return tuple(tags)


def span_records(
    text: str, units: Sequence[tuple[int, int]], tags: Sequence[str], scores: Sequence[float] | None = None
) -> list[dict]:
    """The entities of `tags` as the prediction files and the API write them: start, end, type and text, and with
    per-unit `scores` the entity's score, the mean over its units."""
    records = []
    for first, last, etype in unit_spans(units, tags):
        start, end = units[first][0], units[last][1]
        record = {"start": start, "end": end, "type": etype, "text": text[start:end]}
        if scores is not None:
            record["score"] = round(sum(scores[first : last + 1]) / (last + 1 - first), 4)
        records.append(record)
    return records


def spans_from_tags(units: Sequence[tuple[int, int]], tags: Sequence[str]) -> list[Span]:
    """The character spans of the entities in IOB2 `tags`, from the first unit's start to the last unit's end.

    An `I-X` that continues nothing starts an entity, as the readers' repair would have made it.
    """
    return [(units[first][0], units[last][1], etype) for first, last, etype in unit_spans(units, tags)]


def unit_spans(units: Sequence[tuple[int, int]], tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """(first unit, last unit, type) of each entity in IOB2 `tags`."""
    if len(units) != len(tags):
        raise ValueError(f"{len(units)} units but {len(tags)} tags")
    spans: list[tuple[int, int, str]] = []
    first = last = -1
    current = ""
    for i, tag in enumerate((*tags, "O")):
        if tag != "O" and not tag.startswith(("B-", "I-")):
            raise ValueError(f"{tag!r} is not an IOB2 tag")
        if tag.startswith("I-") and tag[2:] == current:
            last = i
            continue
        if current:
            spans.append((first, last, current))
        current, first, last = (tag[2:], i, i) if tag != "O" else ("", -1, -1)
    return spans
