"""Mining Chinese domain terms: strings of 2-6 Han characters, ranked against general Chinese (wordfreq).

Chinese has no spaces, so candidates are all character n-grams within Han runs (punctuation, Latin, digits and
Chinese numerals such as 第二十七条 end a run). Apriori counting (`ngrams.py`) keeps this to frequent n-grams only.
A candidate must then pass, in order of cost:

1. cohesion PMI >= min_pmi at its weakest split: its characters belong together;
2. word boundaries: in most occurrences it starts and ends where jieba puts a word boundary (drops 级人民政府,
   a fragment of 县级/人民政府 whose left neighbours vary just like a real term's would);
3. branching entropy >= min_entropy on both sides, computed only for the survivors of 1-2: 人民法 is always
   followed by 院, 可抗力 always preceded by 不;
4. shape, from jieba's part-of-speech tags: at most `max_words` words (longer strings are phrases: 违反本法规定),
   and no function word at either edge (conjunctions, prepositions, particles, pronouns, adverbs: 或者, 的规定,
   因不可抗力, 由县级以上, 其他), nor a locative at the end (县级以上).

Survivors are scored specificity x log2(1 + frequency x dispersion), as English single words are.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import jieba
import numpy as np
from wordfreq import word_frequency, zipf_frequency

from lmtailor.scripts import HAN_RUN_RE as HAN_RE
from lmtailor.terms.mine import MinedTerm, MineResult
from lmtailor.terms.ngrams import IdEncoder, NgramLevel, block_spread, iter_levels, neighbour_entropy
from lmtailor.terms.stats import cohesion_pmi, dispersion, specificity

log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)  # jieba announces its dictionary loading on every first use

_NUMERALS = "零〇一二三四五六七八九十百千万亿两"
# Article and section numbers (第二十七条) and numbers (三十, 二百) are not terms; ordinals before a noun (第三人) stay.
_NUMBER_RE = re.compile(f"第[{_NUMERALS}]+[条款项章节编目]|[{_NUMERALS}]{{2,}}")
# wordfreq counts words while we count characters; Chinese words average about 1.5 characters.
CHARS_PER_WORD = 1.5
# jieba (ICTCLAS) tags of function words: conjunction, preposition, particles (uj, ul, ...), pronoun, adverb,
# quantifier, modal, interjection, onomatopoeia. A term may not start or end with one.
_FUNCTION_TAGS = ("c", "p", "u", "r", "d", "q", "y", "e", "o")
# jieba's dictionary tags some function characters as content words (内 n, 无 v); a single-character edge word at
# least this common on wordfreq's Zipf scale counts as a function word too (的 7.8, 内 5.9, 无 5.7), while
# content characters that end real terms stay below it (法 5.3 in 民事诉讼法, 县 5.5).
EDGE_CHAR_ZIPF = 5.6
# Share of a candidate's occurrences that must start and end on a jieba word boundary.
MIN_ALIGNED = 0.5


@dataclass(frozen=True)
class ChineseParams:
    """Thresholds of the Chinese miner (see `MineConfig` for what each means)."""

    min_count: int = 5
    max_chars: int = 6
    min_pmi: float = 3.0
    min_entropy: float = 1.5
    max_words: int = 2
    word_boundaries: bool = True
    block_size: int = 20_000


class ChineseMiner:
    """Feed texts one at a time, then `mine()` once."""

    def __init__(self, params: ChineseParams | None = None) -> None:
        self.params = params or ChineseParams()
        self._encoder = IdEncoder()
        self._starts_word = bytearray(b"\x01")  # aligned with the id stream: does a jieba word start here?

    def feed(self, text: str) -> None:
        for run in HAN_RE.findall(_NUMBER_RE.sub(" ", text)):
            self._encoder.add_segment(list(run))
            if self.params.word_boundaries:
                for word in jieba.cut(run, HMM=False):
                    self._starts_word += b"\x01" + b"\x00" * (len(word) - 1)
                self._starts_word.append(1)  # the break after the run

    def mine(self) -> MineResult:
        p = self.params
        ids = self._encoder.array()
        chars = self._encoder.units()
        starts_word = np.frombuffer(self._starts_word, dtype=np.uint8).astype(bool) if p.word_boundaries else None
        result = MineResult(units=int((ids >= 0).sum()))
        if result.units == 0:
            return result
        count: dict[str, int] = {}
        scored: list[MinedTerm] = []
        for level in iter_levels(ids, len(chars), p.min_count, p.max_chars):
            grams = ["".join(chars[c] for c in row) for row in level.grams.tolist()]
            count.update(zip(grams, level.counts.tolist(), strict=True))
            if level.n >= 2:
                result.ngrams_counted += len(grams)
                survivors = _filter_level(ids, level, grams, count, starts_word, result.units, p)
                result.candidates += len(survivors)
                scored.extend(_score_level(level, grams, survivors, result.units, p))
        scored.sort(key=lambda t: (-t.score, t.term))
        result.terms = scored
        log.info(
            "Chinese: %d Han characters, %d frequent n-grams, %d candidates, %d terms",
            result.units,
            result.ngrams_counted,
            result.candidates,
            len(scored),
        )
        return result


def _filter_level(
    ids: np.ndarray,
    level: NgramLevel,
    grams: list[str],
    count: dict[str, int],
    starts_word: np.ndarray | None,
    total: int,
    p: ChineseParams,
) -> np.ndarray:
    """Rows of this level that pass PMI, word boundaries and branching entropy (steps 1-3 of the docstring)."""
    pmi = np.array([cohesion_pmi(g, count.__getitem__, total) for g in grams])
    rows = np.flatnonzero(pmi >= p.min_pmi)
    if starts_word is not None and len(rows):
        pos = np.flatnonzero(level.starts >= 0)
        aligned = starts_word[pos] & starts_word[pos + level.n]
        n_aligned = np.bincount(level.starts[pos][aligned], minlength=len(grams))
        rows = rows[n_aligned[rows] >= MIN_ALIGNED * level.counts[rows]]
    if len(rows):
        left = neighbour_entropy(ids, level, rows, "left")
        right = neighbour_entropy(ids, level, rows, "right")
        rows = rows[np.minimum(left, right) >= p.min_entropy]
    return rows


def _score_level(
    level: NgramLevel, grams: list[str], rows: np.ndarray, total: int, p: ChineseParams
) -> list[MinedTerm]:
    seen, n_blocks = block_spread(level, p.block_size)
    terms: list[MinedTerm] = []
    for row in rows.tolist():
        term = grams[row]
        if not _good_shape(term, p.max_words):
            continue
        freq = int(level.counts[row])
        disp = dispersion(int(seen[row]), freq, n_blocks)
        # wordfreq estimates a string it splits into k words with a 10**-(k-1) penalty, a fair guess for compounds.
        spec = specificity(freq * disp * CHARS_PER_WORD / total, word_frequency(term, "zh"))
        if spec > 0:
            terms.append(MinedTerm(term, spec * math.log2(1 + freq * disp), freq, "zh"))
    return terms


def _good_shape(term: str, max_words: int) -> bool:
    """At most `max_words` jieba words, no function word at the edges, no locative (以上, 之间) at the end."""
    import jieba.posseg  # loads its tag table (~1 s) on import: only when Chinese is actually mined

    tagged = list(jieba.posseg.cut(term, HMM=False))
    if len(tagged) > max_words or tagged[-1].flag.startswith("f"):
        return False
    if len(tagged) == 1:
        return not tagged[0].flag.startswith(_FUNCTION_TAGS)
    return not any(_function_word(pair.word, pair.flag) for pair in (tagged[0], tagged[-1]))


def _function_word(word: str, flag: str) -> bool:
    return flag.startswith(_FUNCTION_TAGS) or (len(word) == 1 and zipf_frequency(word, "zh") >= EDGE_CHAR_ZIPF)


def mine_chinese(texts: Iterable[str], params: ChineseParams | None = None) -> MineResult:
    """Mine Chinese terms from `texts` (see the module docstring)."""
    miner = ChineseMiner(params)
    for text in texts:
        miner.feed(text)
    return miner.mine()
