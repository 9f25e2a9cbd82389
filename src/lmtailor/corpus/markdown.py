"""Removing Markdown markup from a stream of lines, keeping the prose.

Removed: YAML front matter (`---` ... `---` at the top), a metadata header ending in `<!-- INFO END -->` (the
LawRefBook layout: title and enactment history above the marker), heading lines, HTML comments and tags, fences,
rules, table rules, quote and bullet markers, emphasis markers; links and images keep their text. Removed lines
become blank lines so they still separate paragraphs. Works line by line, so it streams.

Why hand-written rather than a Markdown library: a renderer needs the whole document (memory) and produces HTML
we would strip again; these few line rules cover the prose corpora we see.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

INFO_END = "<!-- INFO END -->"
# How far down a header ending in INFO_END may reach; past this the lines are prose and are let through.
HEADER_LINES = 200
FRONT_MATTER_LINES = 200

_HEADING = re.compile(r"^ {0,3}#{1,6}(?:\s|$)")
_DROP_LINE = re.compile(r"^ {0,3}(?:```|~~~|(?:[-*_] *){3,}$|=+ *$|\|? *:?-{3,}:? *(?:\| *:?-{3,}:? *)*\|? *$)")
_LINE_PREFIX = re.compile(r"^ {0,3}(?:> ?)+|^ *[-*+] +")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
_COMMENT = re.compile(r"<!--.*?-->")
# Tag names must start with an ASCII letter: Chinese text uses <…> as title quotes (<中华人民共和国民法典>).
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_STRONG = re.compile(r"(\*\*|__|~~)(?=\S)(.+?)(?<=\S)\1")
_EMPH = re.compile(r"(?<![\w*])\*(?=\S)([^*]+?)(?<=\S)\*(?![\w*])|(?<!\w)_(?=\S)([^_]+?)(?<=\S)_(?!\w)")
_CODE = re.compile(r"`([^`]*)`")


def strip_inline(text: str) -> str:
    """Inline markup of one line removed: comments, tags, images and links (text kept), emphasis, code ticks."""
    text = _COMMENT.sub("", text)
    text = _TAG.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _STRONG.sub(r"\2", text)
    text = _EMPH.sub(lambda m: m.group(1) or m.group(2) or "", text)
    return _CODE.sub(r"\1", text)


def _skip_header(lines: Iterator[str]) -> Iterator[str]:
    """The lines after front matter and an INFO END header, if the document starts with either."""
    first = next(lines, None)
    if first is None:
        return
    head: list[str] = [first]
    if first.strip() == "---":
        for _ in range(FRONT_MATTER_LINES):
            line = next(lines, None)
            if line is None:
                break
            head.append(line)
            if line.strip() in ("---", "..."):
                head = []  # closed: drop it all
                break
    # Buffer the top of the document until we know whether a metadata header ends in INFO_END.
    while len(head) < HEADER_LINES:
        line = next(lines, None)
        if line is None:
            break
        head.append(line)
        if INFO_END in line:
            head = [line.split(INFO_END, 1)[1]]
            break
    yield from head
    yield from lines


def strip_markdown(lines: Iterable[str]) -> Iterator[str]:
    """Markdown lines in, prose lines out (dropped lines become "\n" so paragraphs stay apart)."""
    at_line_start = True
    dropping = False  # inside a dropped line that arrives in pieces, or inside a multi-line comment
    in_comment = False
    for line in _skip_header(iter(lines)):
        ends = line.endswith("\n")
        if in_comment:
            if "-->" not in line:
                continue
            line = line.split("-->", 1)[1]
            in_comment = False
        elif at_line_start:
            dropping = bool(_HEADING.match(line) or _DROP_LINE.match(line))
            line = _LINE_PREFIX.sub("", line)
        if dropping:
            at_line_start = ends
            if ends:
                yield "\n"
            continue
        if "<!--" in line:
            line = _COMMENT.sub("", line)
            if "<!--" in line:
                line, in_comment = line.split("<!--", 1)[0] + ("\n" if ends else ""), True
        at_line_start = ends
        yield strip_inline(line)
