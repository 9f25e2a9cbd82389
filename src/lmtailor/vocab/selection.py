"""Which tokens a trimmed vocabulary keeps, per tokenizer family, so that no text gains an [UNK].

- Always: special and other added tokens, the tokens of required terms, and the model's "alphabet".
- WordPiece: every single character and its "##" continuation. Greedy longest-match then always finds a piece, so a
  word the original could encode never becomes [UNK].
- BPE: the kept set is closed under merge parts, so every kept token stays reachable, plus the base alphabet: the
  256 byte symbols of a byte-level model, the <0xNN> tokens of a byte-fallback model, or all single characters.
- Unigram: single-character pieces and <0xNN> byte pieces. Viterbi can always fall back to them.
Then the most used tokens, until `coverage` of the corpus's token occurrences or `size` tokens are reached.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from lmtailor.errors import ConfigError

_BYTE = re.compile(r"^<0x[0-9A-Fa-f]{2}>$")


@dataclass
class Selection:
    kept: list[int]  # old ids, ascending
    required: int  # how many were kept regardless of use (specials, alphabet, terms)
    covered: float  # share of the corpus's token occurrences the kept tokens cover


def model_vocab(tok_json: dict) -> dict[str, int]:
    """token → id of the tokenizer's model (WordPiece/BPE dict, Unigram list)."""
    model = tok_json["model"]
    if model["type"] == "Unigram":
        return {piece: i for i, (piece, _) in enumerate(model["vocab"])}
    return dict(model["vocab"])


def alphabet_ids(tok_json: dict) -> set[int]:
    """Ids the model needs so that any text the original could encode still encodes without a new [UNK]."""
    model = tok_json["model"]
    vocab = model_vocab(tok_json)
    kind = model["type"]
    if kind == "WordPiece":
        prefix = model.get("continuing_subword_prefix", "##")
        return {i for t, i in vocab.items() if len(t) == 1 or (t.startswith(prefix) and len(t) == len(prefix) + 1)}
    if kind in ("BPE", "Unigram"):
        single = {i for t, i in vocab.items() if len(t) == 1}
        return single | {i for t, i in vocab.items() if _BYTE.match(t)}
    if kind == "WordLevel":
        return set()
    raise ConfigError(f"tokenizer model type {kind} is not supported for trimming (WordPiece, BPE, Unigram are).")


def close_merges(tok_json: dict, ids: set[int]) -> set[int]:
    """For BPE, add the parts of every kept merge result, recursively, so each kept token stays reachable."""
    model = tok_json["model"]
    if model["type"] != "BPE":
        return ids
    vocab = model["vocab"]
    inverse = {i: t for t, i in vocab.items()}
    parts: dict[str, tuple[str, str]] = {}
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        parts.setdefault(a + b, (a, b))
    closed, stack = set(ids), [inverse[i] for i in ids if i in inverse]
    while stack:
        for part in parts.get(stack.pop(), ()):
            pid = vocab.get(part)
            if pid is not None and pid not in closed:
                closed.add(pid)
                stack.append(part)
    return closed


def select(counts: np.ndarray, required: set[int], coverage: float | None, size: int | None) -> Selection:
    """The most used ids on top of `required`, to a coverage of occurrences or an exact size."""
    total = int(counts.sum())
    if total == 0:
        raise ConfigError("the corpus yields no tokens with this tokenizer; check the inputs and the model folder.")
    order = np.argsort(-counts, kind="stable")
    kept = set(required)
    if size is not None:
        if size < len(required):
            raise ConfigError(
                f"--size {size} is smaller than the {len(required)} tokens that must stay (special tokens, the "
                f"alphabet that keeps text free of new [UNK], required terms); use --size {len(required)} or more."
            )
        for i in order:
            if len(kept) >= size:
                break
            kept.add(int(i))
    else:
        target = coverage * total
        covered = int(counts[list(kept)].sum()) if kept else 0
        for i in order:
            if covered >= target or counts[i] == 0:
                break
            if int(i) not in kept:
                kept.add(int(i))
                covered += int(counts[i])
    ids = sorted(kept)
    return Selection(kept=ids, required=len(required), covered=float(counts[ids].sum()) / total)
