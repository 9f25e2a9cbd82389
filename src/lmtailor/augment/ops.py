"""The augmentation operations, as pure functions of a tokenised example and a seeded random generator.

A text is cut into pieces: glossary terms (whole, with their glossary's name), words and the separators between them
(kept, so the text is rebuilt exactly around what changed). For NER the pieces are the example's own units, and an
entity is one piece with its type, so its tags move with it. The operations:
- `terms`: a term replaced by another term of the same glossary (for NER: an entity whose text is a glossary term);
- `mentions` (NER): an entity replaced by another mention of the same type seen in the training file (Dai & Adel
  2020, "mention replacement");
- `swap` / `delete`: two words swapped, or words dropped (EDA, Wei & Zou 2019). Only plain words: never a term, an
  entity or punctuation, so a protected term is never cut and no entity loses a unit.
Synonym replacement and back-translation (the other EDA and product-plan methods) need a thesaurus or a translation
model; none can be had offline here (WordNet and the Chinese synonym packages download their data at run time), so
they are not offered rather than faked.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

WORD = re.compile(r"\w+", re.UNICODE)
HAN = re.compile(r"[\u4e00-\u9fff]")
_SPLIT = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


@dataclass
class Piece:
    text: str
    kind: str  # "word", "other" (space, punctuation, a unit inside a term), "term" or "entity"
    group: str = ""  # the term's glossary, or the entity's type
    glossary: str = ""  # an entity whose text is a glossary term: that glossary


def cut_words(text: str) -> list[Piece]:
    """Words and separators of a stretch of text without terms: jieba words for Chinese, \\w runs otherwise."""
    if HAN.search(text):
        import jieba

        parts = jieba.lcut(text, HMM=False)
    else:
        parts = _SPLIT.findall(text)
    return [Piece(p, "word" if WORD.fullmatch(p) else "other") for p in parts if p]


def cut_text(text: str, occurrences: list[tuple[int, int, str]]) -> list[Piece]:
    """Pieces of a classification text: the given term occurrences (start, end, glossary) whole, words between."""
    pieces: list[Piece] = []
    pos = 0
    for start, end, group in sorted(occurrences):
        if start < pos:
            continue  # overlapping matches of two glossaries: the first wins
        pieces += cut_words(text[pos:start])
        pieces.append(Piece(text[start:end], "term", group))
        pos = end
    return pieces + cut_words(text[pos:])


def augment_pieces(pieces: list[Piece], methods: list[str], rate: float, rng: random.Random,
                   glossaries: dict[str, list[str]], mentions: dict[str, list[list[str]]],
                   counts: dict[str, int], replace_rate: float = 0.5) -> list[Piece]:  # fmt: skip
    """One augmented copy of `pieces`: `rate` of the plain words swapped or dropped, `replace_rate` of the terms and
    entities replaced; `counts` adds up the changes each method made."""
    out = [Piece(p.text, p.kind, p.group, p.glossary) for p in pieces]
    for method in methods:
        if method == "terms":
            for p in out:
                choices = glossaries.get(p.group if p.kind == "term" else p.glossary) if p.kind != "word" else None
                if choices and rng.random() < replace_rate:
                    p.text = _other(rng, choices, p.text)
                    counts["terms"] += 1
        elif method == "mentions":
            for p in out:
                pool = mentions.get(p.group) if p.kind == "entity" else None
                if pool and len(pool) > 1 and rng.random() < replace_rate:
                    p.text = _other(rng, [" ".join(m) if " " in p.text else "".join(m) for m in pool], p.text)
                    counts["mentions"] += 1
        elif method == "swap":
            words = [i for i, p in enumerate(out) if p.kind == "word"]
            for _ in range(max(1, round(rate * len(words))) if len(words) >= 2 else 0):
                a, b = rng.sample(words, 2)
                out[a], out[b] = out[b], out[a]
                counts["swap"] += 1
        elif method == "delete":
            words = [i for i, p in enumerate(out) if p.kind == "word"]
            drop = {i for i in words if rng.random() < rate}
            if len(drop) >= len(words):  # keep at least one word
                drop = set(list(drop)[: len(words) - 1])
            counts["delete"] += len(drop)
            out = _without(out, drop)
    return out


def _other(rng: random.Random, choices: list[str], current: str) -> str:
    """A choice other than `current` (when there is one)."""
    pick = rng.choice(choices)
    for _ in range(8):
        if pick != current:
            break
        pick = rng.choice(choices)
    return pick


def _without(pieces: list[Piece], drop: set[int]) -> list[Piece]:
    """`pieces` without the dropped words, and without the space that followed each (no doubled spaces)."""
    out: list[Piece] = []
    skip_space = False
    for i, p in enumerate(pieces):
        if i in drop:
            skip_space = True
            continue
        if skip_space and p.kind == "other" and p.text.isspace():
            skip_space = False
            continue
        skip_space = False
        out.append(p)
    return out


def join(pieces: list[Piece]) -> str:
    return "".join(p.text for p in pieces)
