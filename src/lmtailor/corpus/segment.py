"""Cutting a stream of lines into records: paragraphs (blank-line separated blocks) or sentences.

Sentence ends are found for Chinese (。！？； and, after NFKC, !?; following a CJK character) and English (.!?
followed by a space and a capital, digit or opening quote, unless the word before the period is a known
abbreviation, an initial, a dotted acronym or a section number like 1.5.). Closing quotes and brackets stay
with the sentence they close. A paragraph longer than `max_chars` is packed greedily into chunks of whole
sentences; a single sentence longer than that is cut at a space (or hard, for text without spaces).

Everything streams: a block is handed on in pieces of `FLUSH_CHARS` characters, cut at a sentence end that is
certain, so a file without a single blank line never has to be held in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

from lmtailor.corpus.markdown import strip_markdown
from lmtailor.corpus.normalize import CJK_CLASS, is_blank, normalize

Unit = Literal["paragraph", "sentence"]
FLUSH_CHARS = 1 << 16

_CLOSERS = "\"'”’」』)）》〉】〕\\]"
_CJK_PUNCT = "\u3000-\u303f\uff00-\uffef"
# The terminator comes first and the CJK context is checked behind it: a pattern that starts with a small set lets
# sre skip ahead to candidates, instead of trying three lookbehinds at every position (8x faster on English).
_ZH_END = re.compile(
    rf"[。！？；!?;](?:(?<=[。！？；])|(?<=[{CJK_CLASS}][!?;])|(?<=[{CJK_CLASS}][{_CLOSERS}][!?;]))"
    rf"[。！？；!?;]*[{_CLOSERS}]*"
)
_EN_END = re.compile(rf"[.!?]+[{_CLOSERS}]*(?=\s+[\"'“‘(\[]*[A-Z0-9])")
# Words ending in a period that do not end a sentence (lower-cased; dotted acronyms are caught by shape).
ABBREVIATIONS = frozenset(
    {
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "prof.",
        "jr.",
        "sr.",
        "st.",
        "inc.",
        "co.",
        "corp.",
        "ltd.",
        "llc.",
        "l.p.",
        "no.",
        "nos.",
        "sec.",
        "secs.",
        "art.",
        "arts.",
        "para.",
        "paras.",
        "cl.",
        "ch.",
        "p.",
        "pp.",
        "vol.",
        "fig.",
        "u.s.",
        "u.k.",
        "e.g.",
        "i.e.",
        "etc.",
        "al.",
        "vs.",
        "v.",
        "cf.",
        "viz.",
        "approx.",
        "esp.",
        "ave.",
        "rev.",
        "gen.",
        "hon.",
        "dept.",
        "est.",
        "jan.",
        "feb.",
        "mar.",
        "apr.",
        "jun.",
        "jul.",
        "aug.",
        "sep.",
        "sept.",
        "oct.",
        "nov.",
        "dec.",
    }
)
_NOT_AN_END = re.compile(r"(?:[A-Za-z]\.){2,}|[A-Z]\.|§*\d+(?:\.\d+)+\.|\d{1,2}\.|[ivxIVX]{1,4}\.")
_OPENERS = "(\"'“‘[§"
# A run of 3+ spaces after a sentence end inside a line: PDF-to-text paragraph breaks (CUAD has no blank lines).
_LAYOUT_BREAK = re.compile(r"(?<=[.!?;:。！？；：])[ \t\u3000]{3,}")
_JOIN_TIGHT = re.compile(f"[{CJK_CLASS}{_CJK_PUNCT}]")


def _ends_sentence(text: str, period: int) -> bool:
    """Whether the '.' at `period` ends a sentence, judged by the word it closes."""
    start = text.rfind(" ", 0, period) + 1  # normalised text: words are separated by single spaces
    word = text[start : period + 1].lstrip(_OPENERS)
    return word.lower() not in ABBREVIATIONS and not _NOT_AN_END.fullmatch(word)


def sentence_ends(text: str) -> list[int]:
    """Offsets just after each sentence end in `text` (after any closing quotes), ascending."""
    ends = {m.end() for m in _ZH_END.finditer(text)}
    for m in _EN_END.finditer(text):
        first = m.start()
        if text[first] != "." or _ends_sentence(text, first):
            ends.add(m.end())
    return sorted(ends)


def hard_cut(text: str, start: int, max_chars: int) -> int:
    """Where to cut `text[start:]` (longer than `max_chars`): its last space in the second half, else hard."""
    space = text.rfind(" ", start + max_chars // 2, start + max_chars + 1)
    return space if space > start else start + max_chars


def pack(text: str, ends: list[int], unit: Unit, max_chars: int) -> Iterator[str]:
    """Records of a normalised paragraph: sentences, or runs of whole sentences of at most `max_chars`."""
    if unit == "paragraph" and len(text) <= max_chars:
        if text.strip():
            yield text.strip()
        return
    start = _skip_space(text, 0)
    fit = 0  # the furthest sentence end that still fits in the current record
    for end in [*ends, len(text)]:
        if end <= start:
            continue
        if unit == "paragraph" and end - start <= max_chars:
            fit = end
            continue
        if fit > start:
            yield from _strip(text[start:fit])
            start = _skip_space(text, fit)
        while end - start > max_chars:
            cut = hard_cut(text, start, max_chars)
            yield from _strip(text[start:cut])
            start = _skip_space(text, cut)
        if unit == "sentence":
            yield from _strip(text[start:end])
            start = _skip_space(text, end)
        fit = end
    yield from _strip(text[start:])


def _skip_space(text: str, i: int) -> int:
    """`i`, moved past the one space that separates records in normalised text (so it is not counted)."""
    return i + 1 if text[i : i + 1] == " " else i


def _strip(piece: str) -> Iterator[str]:
    piece = piece.strip()
    if piece:
        yield piece


def iter_blocks(lines: Iterable[str], flush_chars: int = FLUSH_CHARS) -> Iterator[tuple[str, bool]]:
    """Raw blank-line separated blocks as (text, complete); a long block comes in pieces with complete=False."""
    parts: list[str] = []
    size = 0
    last = ""  # the last character added to the current block ("" = no block open)
    line_start = True
    for line in lines:
        ended = line.endswith("\n")
        body = line.rstrip("\r\n")
        if line_start and is_blank(body):
            if last:
                yield "".join(parts), True
                parts, size, last = [], 0, ""
            line_start = ended
            continue
        for i, piece in enumerate(_LAYOUT_BREAK.split(body)):
            if i and last:
                yield "".join(parts), True
                parts, size, last = [], 0, ""
            if not piece:
                continue
            # Lines inside a block are joined with a space, except between two CJK characters (hard-wrapped
            # Chinese has no spaces); pieces of one over-long line are joined with nothing.
            if last and line_start and i == 0 and not (_JOIN_TIGHT.match(last) and _JOIN_TIGHT.match(piece[0])):
                parts.append(" ")
            parts.append(piece)
            size += len(piece)
            last = piece[-1]
        line_start = ended
        if size >= flush_chars:
            yield "".join(parts), False
            parts, size = [], 0
    if last:
        yield "".join(parts), True


def iter_units(blocks: Iterable[tuple[str, bool]], unit: Unit, max_chars: int, nfkc: bool = True) -> Iterator[str]:
    """Normalised records from raw blocks; an incomplete block's last, unfinished sentence is carried over."""
    carry = ""
    for raw, complete in blocks:
        text = normalize(carry + raw, nfkc=nfkc, strip=complete)
        if complete:
            carry = ""
            # Sentence ends are only needed when the paragraph must be cut: most paragraphs skip the search.
            needs_ends = unit == "sentence" or len(text) > max_chars
            yield from pack(text, sentence_ends(text) if needs_ends else [], unit, max_chars)
            continue
        # An end right at the edge is uncertain: a closing quote may follow in the next piece.
        ends = [e for e in sentence_ends(text) if e < len(text) - 2]
        cut = ends[-1] if ends else 0
        yield from pack(text[:cut], ends, unit, max_chars)
        carry = text[cut:]
        while len(carry) > max_chars:
            split_at = hard_cut(carry, 0, max_chars)
            yield from _strip(carry[:split_at])
            carry = carry[split_at:]
    tail = normalize(carry, nfkc=nfkc)
    if tail:  # only when `blocks` ended on an incomplete block (iter_blocks never does)
        yield from pack(tail, sentence_ends(tail), unit, max_chars)


def segment_document(
    lines: Iterable[str], *, markdown: bool = False, nfkc: bool = True, unit: Unit = "paragraph", max_chars: int = 2000
) -> Iterator[str]:
    """The records of one document's lines: Markdown stripped (if asked), normalised, segmented."""
    if markdown:
        lines = strip_markdown(lines)
    yield from iter_units(iter_blocks(lines), unit, max_chars, nfkc)
