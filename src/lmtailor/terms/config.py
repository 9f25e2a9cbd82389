"""Configuration of `lmtailor terms mine` and `lmtailor terms merge`; field descriptions are the CLI help."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from lmtailor.config import StageConfig, positional

Language = Literal["en", "zh"]


class MineConfig(StageConfig):
    """Rank candidate domain terms in a corpus against general-language frequencies (wordfreq)."""

    stage: ClassVar[str] = "terms.mine"

    inputs: list[Path] = Field(
        min_length=1,
        description="Corpus folders written by `lmtailor corpus`, or raw .txt/.md/.jsonl/.csv files or folders.",
        json_schema_extra=positional(),
    )
    split: str = Field("train", description="Which split of a corpus folder to mine (raw files have no splits).")
    languages: Literal["auto"] | list[Language] = Field(
        "auto",
        description="'auto' mines every text in the language its script says (Han -> zh, Latin -> en); "
        "a list such as [en] or [en, zh] mines only texts detected as those languages.",
    )
    max_terms: int = Field(2000, ge=1, description="Keep at most this many terms (best scores first).")
    min_freq: int = Field(
        5, ge=2, description="An n-gram (and every part of it) must occur at least this often to be considered."
    )
    en_max_words: int = Field(4, ge=1, le=6, description="Longest English term, in words.")
    en_single_words: bool = Field(True, description="Also rank single English words, not only multi-word terms.")
    en_min_pmi: float = Field(
        1.0, description="Least cohesion (PMI, nats, at the weakest split) of a multi-word English term."
    )
    zh_max_chars: int = Field(6, ge=2, le=10, description="Longest Chinese term, in Han characters.")
    zh_min_pmi: float = Field(
        3.0, description="Least cohesion (character PMI, nats, at the weakest split) of a Chinese term."
    )
    zh_min_entropy: float = Field(
        1.5, ge=0.0, description="Least branching entropy (nats) on both sides of a Chinese term; drops fragments."
    )
    zh_max_words: int = Field(
        2, ge=1, description="Most jieba words a Chinese term may span; longer strings are phrases, not terms."
    )
    zh_word_boundaries: bool = Field(
        True,
        description="Require Chinese terms to start and end on jieba word boundaries in most occurrences "
        "(better terms; segmenting the corpus takes about half the mining time).",
    )

    @field_validator("languages", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        # The CLI passes "en,zh" as one string.
        if isinstance(value, str) and value != "auto":
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("languages")
    @classmethod
    def _check_languages(cls, value: object) -> object:
        if isinstance(value, list):
            if not value:
                raise ValueError("give at least one of 'en', 'zh', or 'auto'")
            if len(set(value)) != len(value):
                raise ValueError(f"languages repeat: {value}; list each of 'en', 'zh' once")
        return value

    def enabled_languages(self) -> tuple[str, ...]:
        return ("en", "zh") if self.languages == "auto" else tuple(sorted(set(self.languages)))


class MergeConfig(StageConfig):
    """Combine mined term lists and user glossaries into one clean, de-duplicated, prioritised terms.tsv."""

    stage: ClassVar[str] = "terms.merge"

    inputs: list[Path] = Field(
        min_length=1,
        description="Term sources in priority order: terms.tsv files or `lmtailor terms` output folders, and "
        "glossaries (one term a line, or term<TAB>freq). Earlier inputs win ties and the size cap.",
        json_schema_extra=positional(),
    )
    lowercase: bool = Field(False, description="Lowercase every term (duplicates differing in case merge anyway).")
    max_term_chars: int = Field(32, ge=2, le=256, description="Drop terms longer than this many characters.")
    max_terms: int = Field(5000, ge=1, description="Keep at most this many terms, in priority order.")
    corpus: list[Path] | None = Field(
        None,
        description="Optional corpus folders or raw files: keep only terms that occur in it at least "
        "min_corpus_freq times (prunes noisy glossaries to what the domain text actually uses).",
    )
    split: str = Field("train", description="Which split of a corpus folder to count terms in.")
    min_corpus_freq: int = Field(
        1, ge=1, description="With --corpus: least number of occurrences a term needs to be kept."
    )

    @model_validator(mode="after")
    def _corpus_for_min_freq(self) -> MergeConfig:
        if self.corpus is None and self.min_corpus_freq > 1:
            raise ValueError(
                f"min_corpus_freq={self.min_corpus_freq} needs a corpus to count in; pass corpus or drop it"
            )
        return self
