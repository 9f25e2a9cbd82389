"""Configuration of `lmtailor tokenizer train` and `lmtailor tokenizer eval`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from lmtailor.config import StageConfig, cli_flags, positional


class TokenizerTrainConfig(StageConfig):
    """Train a domain tokenizer (HF tokenizers) to a target vocabulary size, with protected terms kept whole."""

    stage: ClassVar[str] = "tokenizer.train"

    inputs: list[Path] = Field(
        description="Corpus folder(s) from `lmtailor corpus` or raw text files/folders.", json_schema_extra=positional()
    )
    split: str = Field("train", description="Which split of a corpus folder to train on.")
    algorithm: Literal["bpe", "unigram", "wordpiece"] = Field("bpe", description="Subword model to train.")
    vocab_size: int = Field(
        8000,
        ge=300,
        le=1_000_000,
        description="Target vocabulary size, all tokens included (at most 1,000,000; a corpus too small for it gives "
        "fewer, with a warning).",
    )
    terms: list[Path] = Field(
        default_factory=list, description="Glossaries of protected terms (terms.tsv, one term a line, term<TAB>freq)."
    )
    max_terms: int | None = Field(None, ge=0, description="Protect at most this many terms (in glossary order).")
    lowercase: bool = Field(
        True,
        description="Lowercase text before tokenising (like uncased BERT).",
        json_schema_extra=cli_flags("--lowercase/--cased"),
    )
    character_coverage: float = Field(
        0.9999,
        gt=0.9,
        le=1.0,
        description="Share of character occurrences the alphabet must cover; rarer characters use byte fallback.",
    )
    whole_word_share: float = Field(
        0.15,
        ge=0.0,
        le=0.9,
        description="Share of the vocabulary that may go to the corpus's most frequent whole Latin-script words "
        "(each one token, replacing the least useful learned pieces); raises whole-word coverage.",
    )
    min_frequency: int = Field(2, ge=1, description="Minimum count of a pair to be merged (BPE/WordPiece).")
    max_token_length: int = Field(
        24,
        ge=1,
        description="Longest learned token, in characters. 1 (bpe only) makes a character-level tokenizer: "
        "no merges, so the vocabulary is the alphabet, byte fallback and the protected terms (kept whole).",
    )
    model_max_length: int = Field(512, ge=8, description="Longest sequence the tokenizer's models accept.")

    @field_validator("inputs")
    @classmethod
    def _non_empty(cls, v: list[Path]) -> list[Path]:
        if not v:
            raise ValueError("give at least one input folder or file")
        return v

    @model_validator(mode="after")
    def _character_level_is_bpe(self) -> TokenizerTrainConfig:
        if self.max_token_length == 1 and self.algorithm != "bpe":
            raise ValueError(
                f"max_token_length=1 (a character-level tokenizer) needs algorithm bpe, not {self.algorithm} "
                "(wordpiece here learns on bytes, not characters)"
            )
        return self


class TokenizerEvalConfig(StageConfig):
    """Compare a tokenizer with a reference tokenizer on held-out text."""

    stage: ClassVar[str] = "tokenizer.eval"

    tokenizer: Path = Field(
        description="Tokenizer folder to evaluate (from `lmtailor tokenizer train` or any HF).",
        json_schema_extra=positional(1),
    )
    inputs: list[Path] = Field(
        description="Held-out text: a corpus folder or raw text files/folders.", json_schema_extra=positional(2)
    )
    split: str = Field("test", description="Which split of a corpus folder to evaluate on.")
    reference: str | None = Field(
        None, description="Reference tokenizer folder or installed model; default: all-MiniLM-L6-v2's WordPiece."
    )
    terms: list[Path] = Field(default_factory=list, description="Glossaries whose term integrity is measured.")
    max_terms: int | None = Field(None, ge=0, description="Measure at most this many terms (in glossary order).")
    max_texts: int | None = Field(None, ge=1, description="Evaluate on at most this many records.")
    examples: int = Field(5, ge=0, description="Example sentences shown tokenised by both tokenizers.")
