"""Configuration of `lmtailor update`, apart from the code that runs it (so reading it imports nothing heavy)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from lmtailor.config import StageConfig, positional
from lmtailor.tasks.config import TaskFileFields


class UpdateConfig(TaskFileFields, StageConfig):
    """Bring a built model up to date with new documents (and new labelled data) without a rebuild, and say in a
    regression report what it cost on the old test sets."""

    stage: ClassVar[str] = "update"

    model: Path = Field(
        description="The model to update: a task folder from `finetune`/`distill` (or an earlier `update`), or an "
        "MLM folder from `pretrain`; it needs its tokenizer and its lmtailor.json (the build record).",
        json_schema_extra=positional(1),
    )
    documents: list[Path] = Field(
        min_length=1,
        description="New domain documents (raw .txt/.md/.jsonl/.csv files or folders, or corpus folders).",
        json_schema_extra=positional(2),
    )
    train: Path | None = Field(
        None, description="New labelled training data (the model's task and format), added to the model's own "
        "training file for the re-fit."
    )  # fmt: skip
    test: list[Path] = Field(
        default_factory=list,
        description="New labelled test sets, scored before and after (the model's own dev and test always are).",
    )
    replay: list[Path] = Field(
        default_factory=list,
        description="The old corpus, sampled into continued MLM so the model does not forget it (default: the texts "
        "of the model's own training file).",
    )
    replay_ratio: float = Field(
        1.0, ge=0, le=10, description="Old texts per new text in the continued-MLM mix (0: new documents only)."
    )
    max_new_terms: int = Field(200, ge=0, description="Add at most this many new terms to the vocabulary (0: none).")
    min_term_freq: int = Field(5, ge=2, description="A new term must occur at least this often in the documents.")
    multiword_terms: bool = Field(
        False, description="Also add multi-word English terms as single tokens (single words and Chinese terms are "
        "always candidates)."
    )  # fmt: skip
    mlm_steps: int = Field(200, ge=0, description="Continued-MLM optimiser steps (0: skip, vocabulary only).")
    mlm_lr: float = Field(5e-5, gt=0, description="Continued-MLM peak learning rate.")
    mlm_batch_size: int = Field(16, ge=1, description="Continued-MLM blocks per step.")
    seq_len: int = Field(128, ge=16, description="Tokens per continued-MLM block and per MLM-loss text.")
    head_steps: int = Field(
        150, ge=0, description="Steps that fit an MLM head on the frozen encoder first, for a task model or an "
        "encoder saved without one (a random head would push noise into the encoder)."
    )  # fmt: skip
    epochs: float = Field(1.0, gt=0, description="Re-fit (or re-distillation) epochs on old + new labelled data.")
    lr: float = Field(3e-5, gt=0, description="Re-fit learning rate (low: the model is already trained).")
    teacher: str | None = Field(
        None, description="Re-distil a `distill` student from this teacher (default: the teacher it was distilled "
        "from; give the updated teacher to pass the new terms on)."
    )  # fmt: skip
    tolerance: float = Field(
        0.5, ge=0, description="Most points of the metric the updated model may lose on an old dev or test set; "
        "beyond it the update is written but marked failed, and the previous model stays the one served."
    )  # fmt: skip
    mlm_tolerance: float = Field(
        0.1, ge=0, description="MLM models: most nats of MLM loss the update may add on old held-out text."
    )
    heldout: int = Field(200, ge=10, description="Held-out texts (old and new) for the MLM-loss comparison.")
    speed_texts: int = Field(128, ge=8, description="Texts timed at batch 32 for the speed comparison.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Training precision (auto: bf16 where the hardware has it, else fp32)."
    )
