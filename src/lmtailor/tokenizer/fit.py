"""Fitting a trained subword model to the exact vocabulary budget.

After training, three kinds of tokens are grafted onto the model: the 256 byte-fallback tokens (BPE/Unigram),
protected single-word terms, and optionally the corpus's most frequent whole words (`whole_word_share`). Room is
made by dropping the latest-learned tokens (BPE/WordPiece learn in order of usefulness, so this is the model a
smaller budget would have trained) or the least likely pieces (Unigram).

Why frequent whole words: a subword trainer spends much of its budget on pieces, so a 10k BPE vocabulary covers
fewer running words than its size suggests. A BPE model with `ignore_merges` (and WordPiece's longest match) maps
an in-vocabulary pre-token straight to its token, so a whole word needs one slot, not a chain of merges.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from lmtailor.tokenizer.pipeline import BYTE_TOKENS, SPECIAL_TOKENS


@dataclass
class VocabPlan:
    """Tokens to graft, in the model's own spelling (byte-level for WordPiece)."""

    protected: list[str] = field(default_factory=list)  # must exist: protected single-word terms
    frequent: list[str] = field(default_factory=list)  # candidate whole words, most frequent first
    log_probs: dict[str, float] = field(default_factory=dict)  # unigram score of each frequent word
    n_frequent: int = 0  # how many slots the frequent words may take at most

    @classmethod
    def from_counts(cls, protected: list[str], counts: Counter, min_count: int, max_len: int, slots: int) -> VocabPlan:
        total = sum(counts.values()) or 1
        frequent = [w for w, c in counts.most_common() if c >= min_count and len(w) <= max_len]
        return cls(
            protected=list(dict.fromkeys(protected)),
            frequent=frequent,
            log_probs={w: math.log(counts[w] / total) for w in frequent},
            n_frequent=slots,
        )

    def additions(self, present: set[str]) -> tuple[list[str], set[str]]:
        """Tokens to add (missing protected words, then missing frequent words) and tokens never to drop."""
        missing = [w for w in self.protected if w not in present]
        keep = set(self.protected)
        added = 0
        for w in self.frequent:
            if added >= self.n_frequent:
                break
            keep.add(w)  # a learned frequent word ranked above the last one added stays
            if w not in present:
                missing.append(w)
                added += 1
        return missing, keep


def fit_ordered(model: dict, plan: VocabPlan, limit: int, byte_fallback: bool) -> int:
    """BPE/WordPiece: drop the latest-learned tokens so that the additions fit `limit`; returns tokens added."""
    ordered = sorted(model["vocab"], key=model["vocab"].get)
    missing, keep = plan.additions(set(ordered))
    total, i = len(ordered) + len(missing), len(ordered)
    dropped: set[str] = set()
    while total > limit and i > 0:
        i -= 1
        tok = ordered[i]
        # Never drop special tokens, single characters (the alphabet) or the words being made room for.
        if tok in SPECIAL_TOKENS or len(tok) == 1 or tok in keep:
            continue
        dropped.add(tok)
        total -= 1
    tokens = [t for t in ordered if t not in dropped] + missing[: max(0, limit - (len(ordered) - len(dropped)))]
    if "merges" in model:
        merges = [m.split(" ", 1) if isinstance(m, str) else m for m in model["merges"]]
        vocab = set(tokens)
        model["merges"] = [[a, b] for a, b in merges if a in vocab and b in vocab and a + b in vocab]
    if byte_fallback:
        tokens += [b for b in BYTE_TOKENS if b not in set(tokens)]
    model["vocab"] = {t: i for i, t in enumerate(tokens)}
    return len(missing)


def fit_unigram(model: dict, plan: VocabPlan, limit: int) -> int:
    """Unigram: drop the least likely multi-character pieces so that the additions fit `limit`."""
    # The trainer's parallel EM leaves float noise in the last digits and ties in any order; rounding and a
    # stable order (special tokens first, where the trainer put them) keep runs byte-identical.
    n_special = len(SPECIAL_TOKENS)
    rest = sorted(([p, round(s, 6)] for p, s in model["vocab"][n_special:]), key=lambda ps: (-ps[1], ps[0]))
    pieces = model["vocab"][:n_special] + rest
    present = {p for p, _ in pieces}
    missing, keep = plan.additions(present)
    excess = len(pieces) + len(missing) - limit
    for i in range(len(pieces) - 1, n_special - 1, -1):
        if excess <= 0:
            break
        if len(pieces[i][0]) > 1 and pieces[i][0] not in keep:
            pieces[i] = None
            excess -= 1
    protected = set(plan.protected)
    # Score 0 (probability 1) beats any segmentation into several pieces, so a protected word always wins (also
    # one the trainer had learned with a lower score); a frequent word gets its corpus log-probability.
    pieces = [[p, 0.0 if p in protected else s] for p, s in (x for x in pieces if x is not None)]
    floor = min(s for _, s in pieces) - 10.0
    pieces += [[b, floor] for b in BYTE_TOKENS if b not in present]
    model["vocab"] = pieces + [[w, 0.0 if w in protected else round(plan.log_probs[w], 6)] for w in missing]
    return len(missing)
