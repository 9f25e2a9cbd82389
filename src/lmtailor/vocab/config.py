"""Configuration of the vocabulary stages (`vocab trim`, `extend`, `transfer`), apart from the code that runs them so
that reading it imports no torch or tokenizers."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, model_validator

from lmtailor.config import StageConfig, cli_flags, positional


class TrimConfig(StageConfig):
    """Trim a pretrained model's vocabulary to the tokens a domain corpus uses."""

    stage: ClassVar[str] = "vocab.trim"

    model: str = Field(
        description="HF model folder (any architecture with input embeddings) to trim.", json_schema_extra=positional(1)
    )
    inputs: list[Path] = Field(
        description="Domain text: corpus folder(s) from `lmtailor corpus` or raw text files.",
        json_schema_extra=positional(2),
    )
    split: str = Field("train", description="Which split of a corpus folder to count tokens on.")
    coverage: float | None = Field(
        0.999, gt=0.0, le=1.0, description="Keep the most used tokens until they cover this share of occurrences."
    )
    size: int | None = Field(None, ge=1, description="Keep exactly this many tokens instead (overrides --coverage).")
    keep: list[Path] = Field(default_factory=list, description="Glossaries of terms whose tokens must be kept.")
    verify_inputs: list[Path] = Field(
        default_factory=list,
        description="Held-out text for the parity check (default: the dev/test split of inputs).",
        json_schema_extra=cli_flags("--verify"),
    )
    verify_split: str = Field("test", description="Split of a corpus folder used for verification.")
    verify_texts: int = Field(200, ge=0, description="How many held-out records the parity check runs the models on.")
    batch_size: int = Field(1000, ge=1, description="Records per tokenizer batch while counting.")

    @model_validator(mode="after")
    def _one_target(self) -> TrimConfig:
        if self.size is None and self.coverage is None:
            raise ValueError("give --coverage (share of token occurrences) or --size (number of tokens)")
        return self


class ExtendConfig(StageConfig):
    """Add glossary terms to a model's vocabulary as single tokens with mean-of-pieces embeddings."""

    stage: ClassVar[str] = "vocab.extend"

    model: str = Field(description="HF model folder to extend.", json_schema_extra=positional(1))
    terms: list[Path] = Field(
        description="Glossaries of terms to add (terms.tsv, one term a line, term<TAB>freq).",
        json_schema_extra=positional(2),
    )
    max_terms: int | None = Field(None, ge=1, description="Add at most this many terms (in glossary order).")
    verify_inputs: list[Path] = Field(
        default_factory=list,
        description="Held-out text for the unchanged-output check.",
        json_schema_extra=cli_flags("--verify"),
    )
    verify_texts: int = Field(100, ge=0, description="Records used for the unchanged-output check.")


class TransferConfig(StageConfig):
    """Initialise a pretrained model on a new (domain) tokenizer from the old embeddings of each token's pieces."""

    stage: ClassVar[str] = "vocab.transfer"

    model: str = Field(description="HF model folder whose weights are transferred.", json_schema_extra=positional(1))
    tokenizer: Path = Field(
        description="The new tokenizer folder (e.g. from `lmtailor tokenizer train`).", json_schema_extra=positional(2)
    )
    verify_inputs: list[Path] = Field(
        default_factory=list,
        description="Held-out text for the MLM-loss report.",
        json_schema_extra=cli_flags("--verify"),
    )
    verify_split: str = Field("test", description="Split of a corpus folder used for the MLM-loss report.")
    verify_texts: int = Field(200, ge=0, description="Held-out records for the MLM-loss report.")
