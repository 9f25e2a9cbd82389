"""Configuration of `lmtailor augment`, apart from the code that runs it (so reading it imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from lmtailor.config import StageConfig, positional
from lmtailor.tasks.config import TaskFileFields

METHODS = ("terms", "mentions", "swap", "delete")


class AugmentConfig(TaskFileFields, StageConfig):
    """Write a new training file: the original examples and augmented copies; the input file is never touched."""

    stage: ClassVar[str] = "augment"

    task: Literal["cls", "ner"] = Field(description="cls (one label per text) or ner (entity tags).",
                                        json_schema_extra=positional(1))  # fmt: skip
    train: Path = Field(description="Training file, as for `lmtailor finetune`.", json_schema_extra=positional(2))
    copies: int = Field(1, ge=1, le=20, description="Augmented copies written per example (beside the original).")
    methods: list[Literal["terms", "mentions", "swap", "delete"]] = Field(
        list(METHODS),
        description="terms: a glossary term replaced by another of the same glossary; mentions (ner): an entity "
        "replaced by another mention of its type from the training file, its tags moving with it (Dai & Adel "
        "2020); swap / delete: two non-term words swapped, or one dropped (EDA, Wei & Zou 2019).",
    )
    glossary: list[Path] = Field(
        default_factory=list, description="Term lists (one term a line, or terms.tsv): the terms method draws "
        "replacements from the same file, and no method ever cuts into a term of any of them."
    )  # fmt: skip
    rate: float = Field(0.1, gt=0, le=0.5, description="swap / delete: share of the plain words changed.")
    replace_rate: float = Field(
        0.5, gt=0, le=1, description="terms / mentions: share of the glossary terms and entities replaced."
    )
    keep_original: bool = Field(True, description="Write each original example before its copies.")

    @model_validator(mode="after")
    def _methods_fit(self) -> AugmentConfig:
        if not self.methods:
            raise ValueError("methods needs at least one of " + ", ".join(METHODS))
        if "terms" in self.methods and not self.glossary and self.methods == ["terms"]:
            raise ValueError("the terms method needs --glossary files to draw replacement terms from")
        return self
