"""Configuration of `lmtailor tokenize`, apart from the code that runs it (so reading it imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from lmtailor.config import StageConfig, positional


class TokenizeConfig(StageConfig):
    """Tokenise a corpus once into token-id shards with their masking units, for `pretrain` to stream."""

    stage: ClassVar[str] = "tokenize"

    corpus: list[Path] = Field(
        min_length=1, description="Corpus stage output folders, or raw text files/folders.",
        json_schema_extra=positional(),
    )  # fmt: skip
    tokenizer: Path = Field(description="Tokenizer (or model) folder whose tokenizer the pretraining will use.")
    splits: list[str] = Field(
        ["train", "dev"], description="Corpus splits to write (corpus folders; raw files are all 'train')."
    )
    terms: list[Path] = Field(
        default_factory=list,
        description="Glossaries whose terms are masked whole (default: the tokenizer's protected_terms.txt).",
    )
    masking: Literal["whole_term", "token"] = Field(
        "whole_term", description="whole_term: units are terms, words and jieba words; token: words only, no terms."
    )
    shard_tokens: int = Field(
        1 << 24, ge=1024, description="Tokens per shard file (about; shards end at a document boundary)."
    )
    workers: int = Field(
        1, ge=1, le=256, description="Processes that tokenise (the shards are the same whatever the number)."
    )
