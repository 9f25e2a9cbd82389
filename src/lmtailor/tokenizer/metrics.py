"""What a tokenizer does to held-out text, measured in units that do not depend on any tokenizer.

- Words are runs of Latin-script letters in the original text (digits and punctuation are not words), so the same
  words are counted for every tokenizer. Whole-word coverage is the share of running words encoded as exactly one
  token; tokens per word counts every token overlapping a word.
- Chinese is measured per Han character: tokens overlapping at least one Han character (whitespace-only tokens
  excluded), divided by Han characters. Han character coverage is the share of Han characters inside a token of
  the vocabulary (not [UNK], not byte fallback): Chinese's counterpart of whole-word coverage, which would count
  jieba words and so penalise a character-level vocabulary for a choice, not a gap.
- Unknown tokens and byte-fallback tokens are counted over all tokens.
- Term integrity: each occurrence of a glossary term (leftmost-longest, see `TermMatcher`) is intact when exactly one
  token overlaps it and that token is the term (it may also carry the space before the term, nothing else).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tokenizers import Tokenizer

from lmtailor.scripts import HAN_RE as HAN
from lmtailor.scripts import LATIN_RUN_RE as WORD
from lmtailor.tokenizer.protect import TermMatcher

_BYTE_TOKEN = re.compile(r"^<0x[0-9A-F]{2}>$")


@dataclass
class TokenizerStats:
    """Running totals for one tokenizer; `summary()` turns them into rates."""

    vocab_size: int
    texts: int = 0
    chars: int = 0
    tokens: int = 0
    unk: int = 0
    byte_fallback: int = 0
    words: int = 0
    words_single: int = 0
    word_tokens: int = 0
    han_chars: int = 0
    han_tokens: int = 0
    han_covered: int = 0
    term_occurrences: int = 0
    terms_intact: int = 0
    broken_terms: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        def rate(a: int, b: int) -> float | None:
            return round(a / b, 4) if b else None

        worst = sorted(self.broken_terms.items(), key=lambda kv: -kv[1])[:10]
        return {
            "vocab_size": self.vocab_size,
            "texts": self.texts,
            "characters": self.chars,
            "tokens": self.tokens,
            "words": self.words,
            "whole_word_coverage": rate(self.words_single, self.words),
            "tokens_per_word": rate(self.word_tokens, self.words),
            "tokens_per_char": rate(self.tokens, self.chars),
            "han_chars": self.han_chars,
            "tokens_per_han_char": rate(self.han_tokens, self.han_chars),
            "han_char_coverage": rate(self.han_covered, self.han_chars),
            "unk_rate": rate(self.unk, self.tokens),
            "byte_fallback_rate": rate(self.byte_fallback, self.tokens),
            "term_occurrences": self.term_occurrences,
            "term_integrity": rate(self.terms_intact, self.term_occurrences),
            "most_broken_terms": dict(worst),
        }


class TokenizerProbe:
    """Encodes batches with one tokenizer and adds what it did to a `TokenizerStats`."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tok = tokenizer
        self.tok.no_padding()
        self.tok.no_truncation()
        vocab = tokenizer.get_vocab(with_added_tokens=True)
        self.unk_id = vocab.get("[UNK]", vocab.get("<unk>"))
        self.byte_ids = {i for t, i in vocab.items() if _BYTE_TOKEN.match(t)}
        # Tokens that are only a space marker ("▁", "Ġ") say nothing about how Han text was split.
        self.blank_ids = {i for t, i in vocab.items() if not tokenizer.decode([i], skip_special_tokens=False).strip()}
        self.stats = TokenizerStats(vocab_size=tokenizer.get_vocab_size(with_added_tokens=True))

    def add(self, texts: list[str], terms: list[list[tuple[int, int, str]]]) -> None:
        s = self.stats
        for text, enc, occ in zip(texts, self.tok.encode_batch(texts, add_special_tokens=False), terms, strict=True):
            spans = enc.offsets
            s.texts += 1
            s.chars += sum(1 for ch in text if not ch.isspace())
            s.tokens += len(enc.ids)
            s.unk += sum(1 for i in enc.ids if i == self.unk_id)
            s.byte_fallback += sum(1 for i in enc.ids if i in self.byte_ids)
            self._words(text, spans, s)
            self._han(text, enc.ids, spans, s)
            self._terms(occ, spans, text, s)

    @staticmethod
    def _words(text: str, spans: list[tuple[int, int]], s: TokenizerStats) -> None:
        j = 0
        for m in WORD.finditer(text):
            ws, we = m.span()
            while j < len(spans) and spans[j][1] <= ws:
                j += 1
            k, n = j, 0
            while k < len(spans) and spans[k][0] < we:
                if spans[k][1] > ws:
                    n += 1
                k += 1
            s.words += 1
            s.word_tokens += n
            s.words_single += n == 1

    def _han(self, text: str, ids: list[int], spans: list[tuple[int, int]], s: TokenizerStats) -> None:
        han = [bool(HAN.match(ch)) for ch in text]
        n_han = sum(han)
        if not n_han:
            return
        s.han_chars += n_han
        s.han_tokens += sum(
            1 for i, (a, b) in zip(ids, spans, strict=True) if i not in self.blank_ids and any(han[a:b])
        )
        covered = [False] * len(text)
        for i, (a, b) in zip(ids, spans, strict=True):
            if i != self.unk_id and i not in self.byte_ids:
                covered[a:b] = [True] * (b - a)
        s.han_covered += sum(1 for h, c in zip(han, covered, strict=True) if h and c)

    @staticmethod
    def _terms(occ: list[tuple[int, int, str]], spans: list[tuple[int, int]], text: str, s: TokenizerStats) -> None:
        for start, end, term in occ:
            over = [(a, b) for a, b in spans if a < end and b > start]
            ok = len(over) == 1 and over[0][1] == end and over[0][0] <= start and not text[over[0][0] : start].strip()
            s.term_occurrences += 1
            s.terms_intact += ok
            if not ok:
                s.broken_terms[term] = s.broken_terms.get(term, 0) + 1


def measure(tokenizers: dict[str, Tokenizer], batches: Iterable[list[str]], matcher: TermMatcher | None) -> dict:
    """Run every tokenizer over the same batches of text; return {name: summary}."""
    probes = {name: TokenizerProbe(tok) for name, tok in tokenizers.items()}
    for batch in batches:
        occ = matcher.find(batch) if matcher is not None else [[] for _ in batch]
        for probe in probes.values():
            probe.add(batch, occ)
    return {name: p.stats.summary() for name, p in probes.items()}
