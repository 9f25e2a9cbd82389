"""Markdown stripping: what goes, what stays, on a LawRefBook-style file."""

from __future__ import annotations

from lmtailor.corpus.markdown import strip_inline, strip_markdown
from lmtailor.corpus.readers import text_lines

LAW = """# 中华人民共和国测试法

2001年8月31日 第九届全国人民代表大会常务委员会第二十三次会议通过

<!-- INFO END -->

## 第一章 总则

第一条 为了测试,制定本法。

第二条 依照<中华人民共和国民法典>的规定。
"""


def _prose(text: str) -> list[str]:
    return [line.strip() for line in strip_markdown(text_lines(text)) if line.strip()]


def test_info_end_header_and_headings_removed() -> None:
    assert _prose(LAW) == ["第一条 为了测试,制定本法。", "第二条 依照<中华人民共和国民法典>的规定。"]


def test_front_matter_removed() -> None:
    assert _prose("---\ntitle: x\ntags: [a]\n---\nBody text.\n") == ["Body text."]


def test_without_header_marker_everything_after_headings_stays() -> None:
    assert _prose("# Title\nIntro line.\n\nMore.\n") == ["Intro line.", "More."]


def test_dropped_lines_become_blank_lines() -> None:
    lines = list(strip_markdown(text_lines("para one\n## Heading\npara two\n")))
    assert lines == ["para one\n", "\n", "para two\n"]


def test_inline_markup() -> None:
    assert strip_inline("See [the law](http://x.y/z) and ![fig](a.png).") == "See the law and fig."
    assert strip_inline("**bold** and *em* and _u_ and `code`") == "bold and em and u and code"
    assert strip_inline("a<!-- note -->b <span class='x'>c</span>") == "ab c"
    assert strip_inline("snake_case_name and 2*3*4") == "snake_case_name and 2*3*4"


def test_multiline_comment_and_lists() -> None:
    text = "keep\n<!-- start\nhidden\nend -->after\n- item one\n> quoted\n"
    assert _prose(text) == ["keep", "after", "item one", "quoted"]
