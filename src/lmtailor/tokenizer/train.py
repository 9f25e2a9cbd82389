"""Training a domain tokenizer: alphabet by character coverage, a vocabulary budget check, the HF trainer, then
byte fallback and protected terms grafted onto the trained model.

Training text is read twice in spirit but only once from the corpus: pass one splits each record at protected-term
occurrences (so no merges are spent on them), normalises it, counts characters and spools the pieces to a temporary
file; pass two streams that file into the HF trainer with characters outside the alphabet blanked out. Memory stays
bounded by the trainer's own word counts, not by the corpus.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO

from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from lmtailor.errors import ConfigError, EmptyInputError
from lmtailor.tokenizer.config import TokenizerTrainConfig
from lmtailor.tokenizer.pipeline import (
    BYTE_TOKENS,
    SPACE,
    SPECIAL_TOKENS,
    build_decoder,
    build_normalizer,
    build_post_processor,
    build_pre_tokenizer,
    to_byte_level,
)
from lmtailor.tokenizer.protect import ProtectedTerms, TermMatcher

log = logging.getLogger(__name__)
BATCH = 1000


@dataclass
class Alphabet:
    """The characters the model learns from; the rest reach the model as byte-fallback tokens."""

    chars: list[str]
    occurrences: int
    covered: int

    @property
    def coverage(self) -> float:
        return self.covered / self.occurrences if self.occurrences else 1.0


def train_tokenizer(texts: Iterable[str], terms: list[str], cfg: TokenizerTrainConfig) -> tuple[Tokenizer, dict]:
    """Train on `texts` with `terms` protected; return the finished tokenizer and a report of what was done."""
    byte_level = cfg.algorithm == "wordpiece"
    normalizer = build_normalizer(cfg.lowercase)
    protected = ProtectedTerms.from_terms(terms[: cfg.max_terms] if cfg.max_terms is not None else terms, normalizer)
    matcher = TermMatcher([*protected.vocab_words, *protected.added], lowercase=cfg.lowercase)
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        counts, n_pieces = _spool_pieces(texts, matcher, normalizer, spool)
        if n_pieces == 0:
            raise EmptyInputError(f"training inputs {[str(p) for p in cfg.inputs]} contain no text to train on.")
        alphabet = _alphabet(counts, cfg.character_coverage)
        budget = _model_budget(cfg, alphabet, protected, byte_level)
        spool.seek(0)
        trained = _train_model(cfg, budget, alphabet, _training_lines(spool, set(alphabet.chars), byte_level))
    tokenizer = _assemble(trained, cfg, protected, byte_level)
    report = {
        "algorithm": cfg.algorithm,
        "vocab_size": tokenizer.get_vocab_size(with_added_tokens=True),
        "target_vocab_size": cfg.vocab_size,
        "alphabet_size": len(alphabet.chars),
        "alphabet_coverage": round(alphabet.coverage, 6),
        "byte_fallback": not byte_level,
        "byte_level": byte_level,
        "protected_terms": len(protected.vocab_words) + len(protected.added),
        "protected_as_vocab_words": len(protected.vocab_words),
        "protected_as_added_tokens": len(protected.added),
        "terms_dropped_empty": len(protected.dropped),
        "training_pieces": n_pieces,
    }
    return tokenizer, report


def _spool_pieces(texts: Iterable[str], matcher: TermMatcher, normalizer, spool: IO[str]) -> tuple[Counter, int]:
    counts: Counter = Counter()
    n = 0
    it = iter(texts)
    while batch := list(islice(it, BATCH)):
        for piece in matcher.split(batch) if matcher.n_terms else batch:
            norm = normalizer.normalize_str(piece).strip(SPACE)
            if not norm:
                continue
            counts.update(norm)
            spool.write(norm + "\n")
            n += 1
    return counts, n


def _alphabet(counts: Counter, coverage: float) -> Alphabet:
    total = sum(counts.values())
    chars, covered = [], 0
    for ch, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if covered >= coverage * total and ch != SPACE:
            break
        chars.append(ch)
        covered += c
    if SPACE not in chars:
        chars.append(SPACE)
    return Alphabet(chars=chars, occurrences=total, covered=covered)


def _model_budget(cfg: TokenizerTrainConfig, alphabet: Alphabet, protected: ProtectedTerms, byte_level: bool) -> int:
    """Tokens left for the trained model (specials included) after byte tokens and protected terms."""
    base = 256 if byte_level else len(alphabet.chars)
    reserved = (0 if byte_level else len(BYTE_TOKENS)) + len(protected.added_tokens()) + 2 * len(protected.vocab_words)
    budget = cfg.vocab_size - reserved
    needed = len(SPECIAL_TOKENS) + base + 1
    if budget < needed:
        what = "byte-level alphabet" if byte_level else f"alphabet at character_coverage={cfg.character_coverage}"
        raise ConfigError(
            f"vocab_size={cfg.vocab_size} is too small: {len(SPECIAL_TOKENS)} special tokens + {base} characters "
            f"({what}) + {reserved} reserved for byte fallback and protected terms need at least "
            f"{needed + reserved}. Raise --vocab-size to {needed + reserved} or more, protect fewer terms "
            f"(--max-terms), or lower --character-coverage."
        )
    return budget


def _training_lines(spool: IO[str], alphabet: set[str], byte_level: bool) -> Iterator[str]:
    """Spooled pieces with out-of-alphabet characters blanked (they will be byte tokens, not merge material)."""
    for line in spool:
        text = line.rstrip("\n")
        if not byte_level and any(ch not in alphabet for ch in text):
            text = "".join(ch if ch in alphabet else SPACE for ch in text)
        yield text


def _train_model(cfg: TokenizerTrainConfig, budget: int, alphabet: Alphabet, lines: Iterator[str]) -> dict:
    """Run the HF trainer (no normaliser: the lines are normalised already); return the tokenizer's JSON."""
    byte_level = cfg.algorithm == "wordpiece"
    common = {"vocab_size": budget, "special_tokens": SPECIAL_TOKENS, "show_progress": cfg.show_progress}
    if cfg.algorithm == "bpe":
        model = models.BPE(unk_token="[UNK]")
        trainer = trainers.BpeTrainer(
            min_frequency=cfg.min_frequency,
            initial_alphabet=alphabet.chars,
            limit_alphabet=len(alphabet.chars),
            max_token_length=cfg.max_token_length,
            **common,
        )
    elif cfg.algorithm == "unigram":
        model = models.Unigram()
        trainer = trainers.UnigramTrainer(
            unk_token="[UNK]", max_piece_length=cfg.max_token_length, initial_alphabet=alphabet.chars, **common
        )
    else:
        model = models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="", max_input_chars_per_word=10_000)
        trainer = trainers.WordPieceTrainer(
            min_frequency=cfg.min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            continuing_subword_prefix="",
            **common,
        )
    tok = Tokenizer(model)
    tok.pre_tokenizer = build_pre_tokenizer(byte_level)
    tok.train_from_iterator(lines, trainer)
    return json.loads(tok.to_str())


def _assemble(trained: dict, cfg: TokenizerTrainConfig, protected: ProtectedTerms, byte_level: bool) -> Tokenizer:
    """Graft byte fallback and in-vocabulary terms onto the trained model, then add the pipeline and the terms."""
    model = trained["model"]
    words = [w for word in protected.vocab_words for w in (SPACE + word, word)]
    if cfg.algorithm == "bpe":
        vocab = model["vocab"]
        for tok in [*BYTE_TOKENS, *words]:
            vocab.setdefault(tok, len(vocab))
        model["byte_fallback"] = True
        model["ignore_merges"] = True  # an in-vocabulary word maps straight to its token: protected words stay whole
    elif cfg.algorithm == "unigram":
        # The trainer's parallel EM leaves float noise in the last digits and ties in any order; rounding and a
        # stable order (special tokens first, where the trainer put them) keep runs byte-identical.
        n_special = len(SPECIAL_TOKENS)
        rest = sorted(([p, round(s, 6)] for p, s in model["vocab"][n_special:]), key=lambda ps: (-ps[1], ps[0]))
        model["vocab"] = model["vocab"][:n_special] + rest
        pieces = {p for p, _ in model["vocab"]}
        floor = min(s for _, s in model["vocab"]) - 10.0
        model["vocab"] += [[b, floor] for b in BYTE_TOKENS if b not in pieces]
        # Score 0 (probability 1) beats any segmentation into several pieces, so the whole word always wins.
        model["vocab"] += [[w, 0.0] for w in words if w not in pieces]
        model["byte_fallback"] = True
    else:
        vocab = model["vocab"]
        for w in words:
            vocab.setdefault(to_byte_level(w), len(vocab))
    tokenizer = Tokenizer.from_str(json.dumps(trained))
    tokenizer.normalizer = build_normalizer(cfg.lowercase)
    tokenizer.pre_tokenizer = build_pre_tokenizer(byte_level)
    tokenizer.decoder = build_decoder(byte_level)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.add_tokens(protected.added_tokens())
    tokenizer.post_processor = build_post_processor(tokenizer)
    return tokenizer
