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
import re
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO

import numpy as np
from tokenizers import Tokenizer, models, pre_tokenizers, trainers

from lmtailor import display
from lmtailor.errors import ConfigError, EmptyInputError
from lmtailor.scripts import LATIN_CLASS
from lmtailor.tokenizer.config import TokenizerTrainConfig
from lmtailor.tokenizer.fit import VocabPlan, fit_ordered, fit_unigram
from lmtailor.tokenizer.pipeline import (
    BYTE_TOKENS,
    SPACE,
    SPECIAL_TOKENS,
    build_decoder,
    build_normalizer,
    build_post_processor,
    build_pre_tokenizer,
    normalize_text,
    to_byte_level,
)
from lmtailor.tokenizer.protect import ProtectedTerms, TermMatcher

log = logging.getLogger(__name__)
# Below this share of the vocabulary size asked for, say so: BPE and WordPiece often stop a few tokens short.
SHORTFALL_WARNING = 0.98
BATCH = 1000
# A Latin-script word as the pre-tokeniser cuts it: "▁word" after a space, or bare "word" after punctuation or a
# digit ("(excluding", "e-commerce"). Both spellings compete for whole-word slots by their own frequency.
_WORD_PRETOKEN = re.compile(f"(?:{SPACE}|(?<![^\\W\\d_]))[{LATIN_CLASS}]+(?![^\\W\\d_])")


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
        counts, word_counts, n_pieces = _spool_pieces(texts, matcher, cfg.lowercase, spool)
        if n_pieces == 0:
            raise EmptyInputError(f"training inputs {[str(p) for p in cfg.inputs]} contain no text to train on.")
        alphabet = _alphabet(counts, cfg.character_coverage)
        budget = _model_budget(cfg, alphabet, protected, byte_level)
        spool.seek(0)
        trained = _train_model(cfg, budget, alphabet, _training_lines(spool, alphabet.chars, byte_level))
    tokenizer = _assemble(trained, cfg, protected, word_counts, byte_level)
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
    if report["vocab_size"] < SHORTFALL_WARNING * cfg.vocab_size:
        log.warning(
            "the tokenizer has %s tokens, not the %s asked for: the training text holds no more distinct pieces "
            "to merge; pass a --vocab-size of at most %s, or give more text",
            f"{report['vocab_size']:,}", f"{cfg.vocab_size:,}", f"{report['vocab_size']:,}",
        )  # fmt: skip
    return tokenizer, report


def _spool_pieces(
    texts: Iterable[str], matcher: TermMatcher, lowercase: bool, spool: IO[str]
) -> tuple[Counter, Counter, int]:
    """Split at terms, normalise, spool one piece a line; count characters (with numpy) and Latin word pre-tokens."""
    counts: Counter = Counter()
    words: Counter = Counter()
    n = 0
    it = iter(texts)
    while batch := list(islice(it, BATCH)):
        pieces = [
            normalize_text(p, lowercase).strip(SPACE) for p in (matcher.split(batch) if matcher.n_terms else batch)
        ]
        block = "\n".join(p for p in pieces if p)
        if not block:
            continue
        spool.write(block + "\n")
        n += block.count("\n") + 1
        codes, freq = np.unique(np.frombuffer(block.encode("utf-32-le"), dtype=np.uint32), return_counts=True)
        counts.update({chr(c): int(f) for c, f in zip(codes.tolist(), freq.tolist(), strict=True) if c != 10})
        words.update(_WORD_PRETOKEN.findall(block))
    return counts, words, n


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
    reserved = (0 if byte_level else len(BYTE_TOKENS)) + len(protected.added_tokens())
    # The protected words are not reserved: most are learned anyway, and `_fit_*` makes room for the rest.
    budget = cfg.vocab_size - reserved
    reserved += 2 * len(protected.vocab_words)
    needed = len(SPECIAL_TOKENS) + base + 1
    if cfg.vocab_size - reserved < needed:
        what = "byte-level alphabet" if byte_level else f"alphabet at character_coverage={cfg.character_coverage}"
        raise ConfigError(
            f"vocab_size={cfg.vocab_size} is too small: {len(SPECIAL_TOKENS)} special tokens + {base} characters "
            f"({what}) + {reserved} reserved for byte fallback and protected terms need at least "
            f"{needed + reserved}. Raise --vocab-size to {needed + reserved} or more, protect fewer terms "
            f"(--max-terms), or lower --character-coverage."
        )
    return budget


def _training_lines(spool: IO[str], alphabet: list[str], byte_level: bool) -> Iterator[str]:
    """Spooled pieces with out-of-alphabet characters blanked (they will be byte tokens, not merge material)."""
    outside = None if byte_level else re.compile("[^" + "".join(re.escape(ch) for ch in alphabet) + "\n]")
    for line in spool:
        yield outside.sub(SPACE, line.rstrip("\n")) if outside else line.rstrip("\n")


def _train_model(cfg: TokenizerTrainConfig, budget: int, alphabet: Alphabet, lines: Iterator[str]) -> dict:
    """Run the HF trainer (no normaliser: the lines are normalised already); return the tokenizer's JSON."""
    byte_level = cfg.algorithm == "wordpiece"
    # the Rust trainer draws its own bar straight to the terminal: only where no lmtailor display is showing
    rust_bar = cfg.show_progress and display.current() is None
    common = {"vocab_size": budget, "special_tokens": SPECIAL_TOKENS, "show_progress": rust_bar}
    if cfg.algorithm == "bpe":
        if cfg.max_token_length == 1:  # character level: a budget of exactly the alphabet leaves no room for merges
            common["vocab_size"] = len(SPECIAL_TOKENS) + len(alphabet.chars)
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


def _assemble(
    trained: dict,
    cfg: TokenizerTrainConfig,
    protected: ProtectedTerms,
    word_counts: Counter,
    byte_level: bool,
) -> Tokenizer:
    """Fit the trained model to the budget with byte fallback and in-vocabulary terms, then add pipeline and terms."""
    model = trained["model"]
    spell = to_byte_level if byte_level else str
    limit = cfg.vocab_size - len(protected.added_tokens()) - (0 if byte_level else len(BYTE_TOKENS))
    plan = VocabPlan.from_counts(
        protected=[spell(w) for word in protected.vocab_words for w in (SPACE + word, word)],
        counts=Counter({spell(w): c for w, c in word_counts.items()}),
        min_count=cfg.min_frequency,
        max_len=cfg.max_token_length if not byte_level else 4 * cfg.max_token_length,
        slots=int(cfg.whole_word_share * limit),
    )
    if cfg.algorithm == "unigram":
        added = fit_unigram(model, plan, limit)
    else:
        added = fit_ordered(model, plan, limit, byte_fallback=not byte_level)
    log.debug("grafted %d protected or frequent whole words onto the %s model", added, cfg.algorithm)
    if not byte_level:
        model["byte_fallback"] = True
    if cfg.algorithm == "bpe":
        model["ignore_merges"] = True  # an in-vocabulary word maps straight to its token: protected words stay whole
    tokenizer = Tokenizer.from_str(json.dumps(trained))
    tokenizer.normalizer = build_normalizer(cfg.lowercase)
    tokenizer.pre_tokenizer = build_pre_tokenizer(byte_level)
    tokenizer.decoder = build_decoder(byte_level)
    tokenizer.add_special_tokens(SPECIAL_TOKENS)
    tokenizer.add_tokens(protected.added_tokens())
    tokenizer.post_processor = build_post_processor(tokenizer)
    return tokenizer
