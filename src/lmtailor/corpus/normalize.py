"""Character-level normalisation of record text, and the character classes the rest of the stage counts with.

`normalize` applies NFKC (which also turns full-width ASCII and the ideographic space into their ASCII forms),
drops characters that carry no text (controls other than whitespace, format characters such as zero-width
spaces and BOMs, surrogates, private-use and unassigned code points) and collapses every whitespace run to one
space. Letters of every script, digits and punctuation such as ()·§%-/ are kept.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable

from lmtailor.scripts import HAN_CLASS as _HAN
from lmtailor.scripts import HAN_RE

# Categories dropped from records; whitespace (which is partly Cc) is collapsed instead, never dropped.
DROPPED = ("Cc", "Cf", "Cs", "Co", "Cn")
# Categories that make a decoded file look binary (format characters are legitimate in text, so not Cf).
NOT_TEXT = ("Cc", "Cs", "Co", "Cn")

_ASTRAL = "\U00010000-\U0010ffff"
# Han ideographs (basic, extension A, compatibility, extensions B+) plus kana: scripts written without spaces.
CJK_CLASS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_LATIN_EXT = "\u00aa\u00ba\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff\u2c60-\u2c7f"
_LATIN_EXT_RE = re.compile(f"[{_LATIN_EXT}]")
_OTHER_LETTER_RE = re.compile(f"[^\\W\\d_A-Za-z{_LATIN_EXT}{_HAN}]")
_ASCII_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))
LATIN_WORD_RE = re.compile(
    r"[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+"
    r"(?:['’-][A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f\u1e00-\u1eff]+)*"
)


@functools.cache
def _category_pattern(categories: tuple[str, ...]) -> re.Pattern[str]:
    """A regex matching BMP code points in `categories` (excluding whitespace), plus every astral code point.

    Why this shape: a class of only BMP ranges compiles to sre's constant-time 64K bitmap, whereas one that also
    lists astral ranges is scanned range by range (about 30x slower on real text). Astral matches are rare and
    are checked one by one in Python instead.
    """
    ranges: list[tuple[int, int]] = []
    for cp in range(0x10000):
        ch = chr(cp)
        if unicodedata.category(ch) in categories and not ch.isspace():
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    body = "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in ranges)
    return re.compile(f"[{body}]|[{_ASTRAL}]")


@functools.cache
def _dropper(categories: tuple[str, ...]) -> Callable[[str], str]:
    """A function removing every character of `categories` from a string."""

    def keep_or_drop(match: re.Match[str]) -> str:
        ch = match.group()
        return "" if unicodedata.category(ch) in categories else ch

    return functools.partial(_category_pattern(categories).sub, keep_or_drop)


def bad_char_share(text: str) -> float:
    """Share of characters of `text` that plain text should not contain (controls, unassigned, private use)."""
    if not text:
        return 0.0
    kept = _dropper(NOT_TEXT)(text)
    return (len(text) - len(kept)) / len(text)


def collapse_whitespace(text: str, strip: bool = True) -> str:
    """Every run of whitespace becomes one space; `strip=False` keeps one space at either end if there was one."""
    # str.split() is the fastest whitespace tokenizer in CPython (about 5x a regex sub) and knows Unicode spaces.
    core = " ".join(text.split())
    if strip or not text:
        return core
    if not core:
        return " "
    head = " " if text[0].isspace() else ""
    tail = " " if text[-1].isspace() else ""
    return head + core + tail


def normalize(text: str, nfkc: bool = True, strip: bool = True) -> str:
    """Normalised record text: NFKC (optional), non-text characters dropped, whitespace collapsed."""
    if nfkc:
        text = unicodedata.normalize("NFKC", text)
    text = _dropper(DROPPED)(text)
    return collapse_whitespace(text, strip=strip)


def is_blank(line: str) -> bool:
    """True for a line that holds nothing once invisible characters are dropped (e.g. a lone zero-width space)."""
    if not line or line.isspace():
        return True
    return len(line) < 16 and not normalize(line, nfkc=False)


def count_chars(pattern: re.Pattern[str], text: str) -> int:
    """How many characters of `text` match the single-character `pattern` (C speed: no match objects)."""
    return len(text) - len(pattern.sub("", text))


def script_counts(text: str) -> tuple[int, int, int]:
    """Letters of `text` that are Han, Latin and of any other script."""
    # Deleting ASCII letters from the UTF-8 bytes is ~20x faster than any str regex that matches most characters;
    # the regexes below only match rare characters in English and in Chinese text, which is what keeps them fast.
    raw = text.encode("utf-8")
    latin = len(raw) - len(raw.translate(None, _ASCII_LETTERS)) + count_chars(_LATIN_EXT_RE, text)
    return count_chars(HAN_RE, text), latin, count_chars(_OTHER_LETTER_RE, text)
