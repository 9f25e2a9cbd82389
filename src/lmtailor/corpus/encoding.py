"""Per-file text encoding detection, the test that tells text from binary, and the messages for a file that stops
reading part-way (a decode error, a malformed CSV row); shared by the corpus and the task readers.

Supported without being told: UTF-8 (with or without BOM), UTF-16 (with a BOM, or BOM-less LE/BE recognised from
where the NUL bytes fall) and GB18030 (a superset of GBK/GB2312). Anything else is refused with a message that
names the file and the fix, because guessing a legacy code page silently mangles text. charset-normalizer is only
asked for a *suggestion* to put into that message, never to decode: its guesses on short samples are too often
wrong to trust unseen.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from lmtailor.corpus.normalize import bad_char_share

SAMPLE_BYTES = 1 << 20
# Share of NULs in one byte lane above which, with at most a quarter as many in the other lane, we try UTF-16
# without a BOM. The other lane is not NUL-free: U+4E00 一 and every U+xx00 character puts a NUL there.
_UTF16_NUL_LANE = 0.2
_UTF16_LANE_RATIO = 4
# Decoded text with more than this share of control, unassigned or private-use characters is not text.
BINARY_SHARE = 0.01
# GB18030 decodes many byte sequences; real Chinese text is mostly Han and CJK punctuation, so ask for that,
# and for mostly common (GB2312) ideographs. The cost: GBK-encoded *traditional* Chinese is refused too, with a
# message that suggests passing --encoding (e.g. gbk).
_GB_MIN_CJK_SHARE = 0.6
_GB_MIN_GB2312_SHARE = 0.8
_GB_MIN_HAN = 10  # below this many ideographs, every one must be a common (GB2312) one
_GB_CHECK_HAN = 2000
_HAN = re.compile(r"[\u4e00-\u9fff]")
_CJK_LIKE = re.compile(r"[\u2000-\u206f\u2460-\u27bf\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]")
# BOM-less UTF-16 of mostly non-ASCII text (Chinese) has too few NULs for the lane test; it is taken as UTF-16 when
# this share of its characters decoded in one byte order are CJK, ASCII or Latin letters (random bytes: about 45%).
_UTF16_MIN_PLAUSIBLE = 0.95
# Characters of cp1252 text besides ASCII that say "Western European text" rather than another code page.
_CP1252_SIGNS = set("€°§©®±×÷µ·¢£¥¿¡«»\xa0")


@dataclass(frozen=True)
class Sniffed:
    """The result of looking at the start of a file: an encoding to decode with, or why not."""

    encoding: str | None
    reason: str = ""  # short, countable: "binary" or "undecodable"
    detail: str = ""  # the sentence a user reads: what is wrong and what to do


def _decodes(data: bytes, encoding: str, final: bool) -> str | None:
    """`data` decoded strictly, or None. With final=False a multi-byte character cut off at the end is fine."""
    try:
        return codecs.getincrementaldecoder(encoding)(errors="strict").decode(data, final=final)
    except UnicodeDecodeError:
        return None


def _utf16_lane(sample: bytes) -> str | None:
    """'utf-16-le'/'utf-16-be' when NULs sit in one byte lane only (ASCII-range text in UTF-16), else None."""
    even, odd = sample[0::2], sample[1::2]
    if not even or not odd:
        return None
    nul_even, nul_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if nul_odd >= _UTF16_NUL_LANE and nul_even * _UTF16_LANE_RATIO <= nul_odd:
        return "utf-16-le"
    if nul_even >= _UTF16_NUL_LANE and nul_odd * _UTF16_LANE_RATIO <= nul_even:
        return "utf-16-be"
    return None


def _utf16_by_text(sample: bytes, whole: bool) -> tuple[str, str] | None:
    """(encoding, text) when the sample reads as UTF-16 text in one byte order (no BOM, few NULs: Chinese), else
    None."""
    best = None
    for encoding in ("utf-16-le", "utf-16-be"):
        text = _decodes(sample[: len(sample) - len(sample) % 2], encoding, whole)
        if not text:
            continue
        plausible = sum(1 for ch in text if ch.isascii() or _CJK_LIKE.match(ch) or _latin_letter(ch)) / len(text)
        if plausible >= _UTF16_MIN_PLAUSIBLE and (best is None or plausible > best[0]):
            best = (plausible, encoding, text)
    return (best[1], best[2]) if best else None


def _latin_letter(ch: str) -> bool:
    return "\u00c0" <= ch <= "\u024f" and unicodedata.category(ch).startswith("L")


def _reads_as_cp1252(sample: bytes) -> bool:
    """Whether every non-ASCII character of the sample read as cp1252 is a letter or a usual sign of Western
    European text (ü, é, ß, €, “”): then cp1252 is the encoding to suggest. charset-normalizer tends to say cp1250
    for short German or French text, which turns ü into ü but ł-less Polish letters into others."""
    text = _decodes(sample, "cp1252", True)
    if text is None:
        return False
    odd = [ch for ch in text if not ch.isascii()]
    return bool(odd) and all(unicodedata.category(ch)[0] in "LP" or ch in _CP1252_SIGNS for ch in odd)


def _suggestion(sample: bytes) -> str:
    """The fix to print for an unreadable file, naming the encoding it most likely is."""
    if _reads_as_cp1252(sample[:65536]):
        return "re-save it as UTF-8, or pass --encoding cp1252 if that is its encoding (Western European text)"
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(sample[:65536]).best()
        guess = best.encoding if best is not None else None
    except Exception:  # a suggestion must never turn a skip into a crash
        guess = None
    if guess and guess.replace("_", "-") not in ("utf-8", "ascii", "gb18030"):
        return f"re-save it as UTF-8, or pass --encoding {guess.replace('_', '-')} if that is its encoding"
    return "re-save it as UTF-8, or pass --encoding with its real encoding (e.g. cp1252)"


def _check_text(path: Path, text: str, encoding: str) -> Sniffed:
    share = bad_char_share(text)
    if share > BINARY_SHARE:
        return Sniffed(
            None,
            "binary",
            f"{path}: {share:.1%} control/unassigned characters when read as {encoding}; "
            "this looks like a binary file, convert it to plain text first",
        )
    return Sniffed(encoding)


def _gb18030_plausible(text: str) -> bool:
    """Whether GB18030-decoded text reads as Chinese rather than as another legacy encoding decoded wrongly."""
    non_ascii = sum(1 for ch in text if ord(ch) > 0x7F)
    if non_ascii and len(_CJK_LIKE.findall(text)) / non_ascii < _GB_MIN_CJK_SHARE:
        return False
    # Simplified Chinese keeps to the 6,763 GB2312 characters; Shift-JIS or Big5 bytes read as GBK land all
    # over the 21,000 GBK ideographs instead (measured: 0% and 70% inside GB2312, against 100% for PRC laws).
    han = _HAN.findall(text, 0, 1 << 16)[:_GB_CHECK_HAN]
    if len(han) < _GB_MIN_HAN:
        # Too few to take a share of. A Latin-1/cp1252 "ü" followed by a letter reads as one GBK ideograph whose
        # second byte is ASCII ("Bürger" → "B黵ger"); GB2312 has no such character, so ask all to be GB2312.
        return all(_in_gb2312(ch) for ch in han)
    return sum(_in_gb2312(ch) for ch in han) / len(han) >= _GB_MIN_GB2312_SHARE


def _in_gb2312(ch: str) -> bool:
    try:
        ch.encode("gb2312")
    except UnicodeEncodeError:
        return False
    return True


def sniff_bytes(path: Path, sample: bytes, whole: bool) -> Sniffed:
    """Decide how to decode a file from its first bytes (`whole`: the sample is the entire file)."""
    if sample.startswith(codecs.BOM_UTF8):
        return _check_text(path, _decodes(sample, "utf-8-sig", whole) or "", "utf-8-sig")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        text = _decodes(sample[: len(sample) - len(sample) % 2], "utf-16", whole)
        if text is not None:
            return _check_text(path, text, "utf-16")
    if b"\x00" in sample:
        lane = _utf16_lane(sample)
        text = _decodes(sample[: len(sample) - len(sample) % 2], lane, whole) if lane else None
        if text is None and (found := _utf16_by_text(sample, whole)) is not None:
            lane, text = found
        if text is None:
            return Sniffed(
                None,
                "binary",
                f"{path}: contains NUL bytes and reads as neither UTF-16 (either byte order) nor UTF-8 text; it "
                "looks like a binary file (if it is text, re-save it as UTF-8 or pass --encoding)",
            )
        return _check_text(path, text, lane)
    text = _decodes(sample, "utf-8", whole)
    if text is not None:
        return _check_text(path, text, "utf-8")
    text = _decodes(sample, "gb18030", whole)
    if text is not None and _gb18030_plausible(text):
        return _check_text(path, text, "gb18030")
    detail = f"{path}: does not read as UTF-8, UTF-16 or GB18030 text; {_suggestion(sample)}"
    return Sniffed(None, "undecodable", detail)


def sniff_file(path: Path, override: str | None = None) -> Sniffed:
    """How to decode `path`: `override` if given (still checked for binary content), else detected."""
    with open(path, "rb") as fh:
        sample = fh.read(SAMPLE_BYTES)
        whole = not fh.read(1)
    if override is not None:
        text = _decodes(sample, override, whole)
        if text is None:
            detail = f"{path}: not valid {override} (from --encoding); {_suggestion(sample)}"
            return Sniffed(None, "undecodable", detail)
        return _check_text(path, text, override)
    return sniff_bytes(path, sample, whole)


def decode_failure(path: Path, encoding: str, exc: UnicodeDecodeError) -> str:
    """The message for a decode error found mid-file, after the start of the file looked fine."""
    return (
        f"{path}: invalid {encoding} bytes ({exc.reason}) part-way through; the whole "
        "document was discarded; re-save it as UTF-8 or pass --encoding with its real encoding"
    )


def csv_problem(exc: csv.Error) -> str:
    """The csv module's complaint in words a user can act on."""
    if "unexpected end of data" in str(exc):
        return "a quote opened in this row is never closed (everything after it would become one cell); close it"
    return f"malformed CSV ({exc}); fix the quoting there"
