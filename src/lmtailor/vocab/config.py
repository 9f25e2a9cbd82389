"""Configuration of `lmtailor vocab trim`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from lmtailor.config import StageConfig


class TrimConfig(StageConfig):
    """Trim a pretrained model's vocabulary to the tokens a domain corpus uses."""

    model: str = Field(description="HF model folder (any architecture with input embeddings) to trim.")
    inputs: list[Path] = Field(description="Domain text: corpus folder(s) from `lmtailor corpus` or raw text files.")
    split: str = Field("train", description="Which split of a corpus folder to count tokens on.")
    coverage: float | None = Field(
        0.999, gt=0.0, le=1.0, description="Keep the most used tokens until they cover this share of occurrences."
    )
    size: int | None = Field(None, ge=1, description="Keep exactly this many tokens instead (overrides --coverage).")
    keep: list[Path] = Field(default_factory=list, description="Glossaries of terms whose tokens must be kept.")
    verify_inputs: list[Path] = Field(
        default_factory=list, description="Held-out text for the parity check (default: the dev/test split of inputs)."
    )
    verify_split: str = Field("test", description="Split of a corpus folder used for verification.")
    verify_texts: int = Field(200, ge=0, description="How many held-out records the parity check runs the models on.")
    batch_size: int = Field(1000, ge=1, description="Records per tokenizer batch while counting.")

    @model_validator(mode="after")
    def _one_target(self) -> TrimConfig:
        if self.size is None and self.coverage is None:
            raise ValueError("give --coverage (share of token occurrences) or --size (number of tokens)")
        return self
