"""Mining English domain terms: single words and 2-4 word terms, ranked against general English (wordfreq).

Pipeline: lowercase and cut each text into runs of Latin words (punctuation, digits and possessives end a run, so
no candidate contains them) -> apriori n-gram counting (`ngrams.py`) -> candidates that neither start nor end with a
stopword and hold only "of/and/or/for/in/to/on/by/with" as inner function words ("right of first refusal", but not
"termination of this agreement") -> score:

- multi-word: (domain specificity + cohesion PMI) / 2 x log2(1 + C-value x dispersion). C-value keeps "force
  majeure" above its own fragments; PMI lifts collocations whose words are common ("governing law"), which
  specificity alone misses because wordfreq estimates a phrase by its rarest word;
- single word: specificity x log2(1 + independent frequency x dispersion), where independent frequency is the count
  left after the most frequent longer candidate containing the word ("majeure" has almost none left);
- dispersion (see `stats.dispersion`) keeps company names repeated throughout one contract from the top.

The whole corpus is held as one int32 array of word ids (4 bytes a word) while counting; texts are read only once.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from wordfreq import word_frequency

from lmtailor.scripts import LATIN_CLASS as LATIN_LETTERS
from lmtailor.terms.ngrams import IdEncoder, block_spread, iter_levels
from lmtailor.terms.stats import c_value, cohesion_pmi, dispersion, specificity
from lmtailor.terms.stopwords import ENGLISH_STOPWORDS

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*|\S")
_WORD_RE = re.compile(f"[{LATIN_LETTERS}]+(?:['’\\-][{LATIN_LETTERS}]+)*")
_POSSESSIVE = ("'s", "’s")
# Function words that may stand inside a term: "statement of work", "terms and conditions", "right to sublicense".
INNER_FUNCTION_WORDS = frozenset({"of", "and", "or", "for", "in", "to", "on", "by", "with"})
Gram = tuple[int, ...]  # an n-gram as word ids


@dataclass(frozen=True)
class MinedTerm:
    """One mined term with its score (higher is more term-like), corpus count and language."""

    term: str
    score: float
    freq: int
    lang: str


@dataclass
class MineResult:
    """Terms sorted by score (best first) plus counts for the stage metrics."""

    terms: list[MinedTerm] = field(default_factory=list)
    units: int = 0  # words (English) or Han characters (Chinese) mined
    ngrams_counted: int = 0  # frequent n-grams found by the apriori passes
    candidates: int = 0  # n-grams that passed the shape filters and were scored


@dataclass(frozen=True)
class EnglishParams:
    """Thresholds of the English miner (see `MineConfig` for what each means)."""

    min_count: int = 5
    max_words: int = 4
    min_pmi: float = 1.0
    single_words: bool = True
    block_size: int = 20_000


def split_segments(text: str) -> list[list[str]]:
    """Lowercased runs of Latin words; anything else (punctuation, numbers, other scripts) ends a run."""
    segments: list[list[str]] = []
    seg: list[str] = []
    for tok in _TOKEN_RE.findall(text.lower()):
        possessive = tok.endswith(_POSSESSIVE)
        word = tok[:-2] if possessive else tok
        if word and _WORD_RE.fullmatch(word):
            seg.append(word)
            if not possessive:
                continue
        if seg:
            segments.append(seg)
            seg = []
    if seg:
        segments.append(seg)
    return segments


class EnglishMiner:
    """Feed texts one at a time, then `mine()` once."""

    def __init__(self, params: EnglishParams | None = None) -> None:
        self.params = params or EnglishParams()
        self._encoder = IdEncoder()

    def feed(self, text: str) -> None:
        for seg in split_segments(text):
            self._encoder.add_segment(seg)

    def mine(self) -> MineResult:
        p = self.params
        ids = self._encoder.array()
        words = self._encoder.units()
        result = MineResult(units=int((ids >= 0).sum()))
        if result.units == 0:
            return result
        count: dict[Gram, int] = {}
        spread: dict[Gram, float] = {}
        for level in iter_levels(ids, len(words), p.min_count, p.max_words):
            seen, n_blocks = block_spread(level, p.block_size)
            for gram, c, b in zip(level.grams.tolist(), level.counts.tolist(), seen.tolist(), strict=True):
                count[tuple(gram)] = c
                spread[tuple(gram)] = dispersion(b, c, n_blocks)
        result.ngrams_counted = len(count)
        stop = np.zeros(len(words), dtype=bool)
        stop[np.array([i for i, w in enumerate(words) if w in ENGLISH_STOPWORDS or len(w) < 2], dtype=np.int64)] = True
        inner_ok = {i for i, w in enumerate(words) if w in INNER_FUNCTION_WORDS}
        candidates = [g for g in count if _admissible(g, stop, inner_ok, p.single_words)]
        result.candidates = len(candidates)
        result.terms = _score(candidates, count, spread, words, result.units, p)
        log.info(
            "English: %d words, %d frequent n-grams, %d candidates, %d terms",
            result.units,
            result.ngrams_counted,
            result.candidates,
            len(result.terms),
        )
        return result


def _admissible(gram: Gram, stop: np.ndarray, inner_ok: set[int], single_words: bool) -> bool:
    if stop[gram[0]] or stop[gram[-1]]:
        return False
    if len(gram) == 1:
        return single_words
    return all(not stop[w] or w in inner_ok for w in gram[1:-1])


def _longer_containing(candidates: list[Gram], count: dict[Gram, int]) -> dict[Gram, list[int]]:
    """For every n-gram, the counts of the candidates that contain it (as a contiguous part)."""
    longer: dict[Gram, list[int]] = {}
    for gram in candidates:
        n = len(gram)
        for k in range(1, n):
            for i in range(n - k + 1):
                longer.setdefault(gram[i : i + k], []).append(count[gram])
    return longer


def _score(
    candidates: list[Gram],
    count: dict[Gram, int],
    spread: dict[Gram, float],
    words: list[str],
    total: int,
    p: EnglishParams,
) -> list[MinedTerm]:
    longer = _longer_containing(candidates, count)
    terms: list[MinedTerm] = []
    for gram in candidates:
        freq, within = count[gram], longer.get(gram, [])
        if len(gram) == 1:
            weight, pmi = freq - max(within, default=0), 0.0
        else:
            weight = c_value(len(gram), freq, within)
            pmi = cohesion_pmi(gram, lambda g: count[tuple(g)], total)
            if pmi < p.min_pmi:
                continue
        if weight <= 0:
            continue
        phrase = " ".join(words[w] for w in gram)
        disp = spread[gram]
        spec = specificity(freq * disp / total, word_frequency(phrase, "en"))
        if spec <= 0:
            continue
        strength = spec if len(gram) == 1 else (spec + pmi) / 2
        terms.append(MinedTerm(phrase, strength * math.log2(1 + weight * disp), freq, "en"))
    terms.sort(key=lambda t: (-t.score, t.term))
    return terms


def mine_english(texts: Iterable[str], params: EnglishParams | None = None) -> MineResult:
    """Mine English terms from `texts` (see the module docstring)."""
    miner = EnglishMiner(params)
    for text in texts:
        miner.feed(text)
    return miner.mine()
