"""Writing-system helpers for term mining: Han runs, Latin letters, and which language a text is in.

Language is decided per text from its characters (Han vs Latin share), not per corpus, so a mixed corpus (Chinese
laws quoting English contract clauses, say) feeds each miner only the texts written in its script.
"""

from __future__ import annotations

from lmtailor.scripts import HAN_RUN_RE as HAN_RE
from lmtailor.scripts import LATIN_RUN_RE as LATIN_RE

# Only the opening of a long text is looked at: the share of scripts is settled long before 2,000 characters.
_DETECT_CHARS = 2000


def detect_language(text: str) -> str | None:
    """'zh' when Han characters carry the text, 'en' when Latin letters do, None when it has neither.

    A Han character carries about as much as a short Latin word, so Han wins as soon as it makes up a third of the
    letters: a Chinese paragraph quoting an English name stays Chinese, an English one citing 合同 stays English.
    """
    head = text[:_DETECT_CHARS]
    han = sum(len(m) for m in HAN_RE.findall(head))
    latin = sum(len(m) for m in LATIN_RE.findall(head))
    if han == 0 and latin == 0:
        return None
    return "zh" if 3 * han >= han + latin else "en"


def is_han(text: str) -> bool:
    """True when `text` contains at least one Han character."""
    return HAN_RE.search(text) is not None
