"""Configuration of the compression stages (`prune`, `sparsify`, `quantize`), apart from the code that runs them so
that reading it imports no torch or ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from lmtailor.config import StageConfig, cli_flags, positional
from lmtailor.tasks.config import TaskFileFields


class PruneConfig(StageConfig):
    """Drop layers and FFN neurons of a fine-tuned BERT-family model; the result is a dense, smaller model."""

    stage: ClassVar[str] = "prune"

    model: Path = Field(
        description="Fine-tuned task model folder (output of `lmtailor finetune` or `distill`).",
        json_schema_extra=positional(),
    )
    data: Path | None = Field(
        None, description="Labelled task file for importance (the train split). Needed unless layers are chosen "
        "by pattern and ffn_size is not set."
    )  # fmt: skip
    text_field: str = Field("text", description="cls: name of the text field/column in `data`.")
    label_field: str = Field("label", description="cls: name of the label field/column in `data`.")
    layers: int | None = Field(None, ge=1, description="Number of encoder layers to keep (default: all).")
    layer_choice: Literal["every_other", "bottom", "top", "importance"] = Field(
        "every_other", description="Which layers to keep: every other one ending with the last, the lowest, the "
        "highest, or the most important by Taylor importance."
    )  # fmt: skip
    keep_layers: list[int] | None = Field(
        None,
        description="Explicit 0-based layer indices to keep (overrides).",
        json_schema_extra=cli_flags("--keep-layer"),
    )
    ffn_size: int | None = Field(None, ge=1, description="FFN neurons to keep per layer (default: all).")
    iterations: int = Field(1, ge=1, le=20, description="FFN pruning steps, re-measuring importance after each.")
    batches: int = Field(32, ge=1, description="Batches of `data` over which importance is accumulated.")
    batch_size: int = Field(16, ge=1, description="Examples per importance batch.")


class SparsifyConfig(TaskFileFields, StageConfig):
    """Zero the smallest-magnitude weights of a task model's encoder (unstructured magnitude pruning)."""

    stage: ClassVar[str] = "sparsify"

    model: Path = Field(
        description="Task model folder (output of `lmtailor finetune`, or any HF cls/NER folder).",
        json_schema_extra=positional(),
    )
    sparsity: list[float] = Field(
        description="Fraction of the targeted weights to zero, in [0, 0.99]; several values give a curve "
        "(each pruned from the original model)."
    )
    scope: Literal["global", "per_layer"] = Field(
        "global", description="global: one magnitude threshold over all targeted weights; per_layer: the same "
        "fraction zeroed in each layer."
    )  # fmt: skip
    include_embeddings: bool = Field(False, description="Also prune the embedding matrices (left dense by default).")
    include_head: bool = Field(False, description="Also prune the pooler and the classifier (left dense by default).")
    eval: Path | None = Field(None, description="Labelled file to score the model at each sparsity (optional).")
    batch_size: int = Field(64, ge=1, description="Examples per forward pass when evaluating.")

    @field_validator("sparsity", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, int | float | str) else value

    @field_validator("sparsity")
    @classmethod
    def _in_range(cls, value: list[float]) -> list[float]:
        if not value:
            raise ValueError("give at least one sparsity, e.g. 0.5")
        bad = [s for s in value if not 0.0 <= s <= 0.99]
        if bad:
            raise ValueError(f"sparsity must be in [0, 0.99] (a fraction of weights to zero), got {bad}")
        return sorted(set(value))


class QuantizeConfig(TaskFileFields, StageConfig):
    """Quantise a task model: ONNX int8/int4 from an `lmtailor export` folder, or PyTorch int8 from an HF folder."""

    stage: ClassVar[str] = "quantize"

    model: Path = Field(
        description="An `lmtailor export` folder (int8, int4) or a fine-tuned HF folder (torch-int8).",
        json_schema_extra=positional(),
    )
    method: Literal["int8", "int4", "torch-int8"] = Field(
        "int8", description="int8: ONNX Runtime dynamic int8; int4: 4-bit block-wise weights (MatMulNBits); "
        "torch-int8: PyTorch dynamic int8 on Linear layers."
    )  # fmt: skip
    weight_type: Literal["qint8", "quint8"] = Field("qint8", description="int8: signed (U8S8) or unsigned weights.")
    per_channel: bool = Field(False, description="int8: one scale per output channel instead of per tensor.")
    block_size: int = Field(32, ge=16, le=256, description="int4: weights per quantisation block (a power of two).")
    int4_others: Literal["int8", "fp32"] = Field(
        "int8", description="int4: weights MatMulNBits cannot take (embeddings, fused Attention QKV) as int8 or fp32."
    )
    eval: Path | None = Field(None, description="Labelled file to score the fp32 and the quantised model (optional).")
    batch_size: int = Field(64, ge=1, description="Examples per forward pass when evaluating.")
    threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads (default: one per core).")

    @field_validator("block_size")
    @classmethod
    def _power_of_two(cls, value: int) -> int:
        if value & (value - 1):
            raise ValueError(f"block_size {value} is not a power of two (16, 32, 64, 128 or 256)")
        return value
