"""Which characters belong to which writing system, shared by every stage so they all count text the same way."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Han ideographs: CJK Unified Ideographs, Extension A, the compatibility block and Extensions B and later.
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
# Latin letters with their accented forms (Latin-1 Supplement and Latin Extended-A/B, without × and ÷).
LATIN_CLASS = "A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f"

HAN_RE = re.compile(f"[{HAN_CLASS}]")
HAN_RUN_RE = re.compile(f"[{HAN_CLASS}]+")
LATIN_RUN_RE = re.compile(f"[{LATIN_CLASS}]+")
LATIN_RE = re.compile(f"[{LATIN_CLASS}]")


def mostly_han(texts: Sequence[str], sample: int = 500) -> bool:
    """Whether the first `sample` texts are Chinese: more Han characters than half their Latin letters (a Han
    character carries about what two letters do). Picks character features and a Chinese-capable teacher."""
    chars = "".join(texts[:sample])
    return len(HAN_RE.findall(chars)) > len(LATIN_RE.findall(chars)) / 2
