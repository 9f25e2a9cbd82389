"""Configuration of `lmtailor export` and `lmtailor bench`, apart from the code that runs them so that reading it
imports no torch or ONNX Runtime."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, PositiveInt, model_validator

from lmtailor.config import StageConfig, positional


class ExportConfig(StageConfig):
    """Export a fine-tuned classification or NER model to ONNX and check it against PyTorch."""

    stage: ClassVar[str] = "export"

    model: Path = Field(
        description="Task model folder from `lmtailor finetune` (HF weights, tokenizer, task.json).",
        json_schema_extra=positional(),
    )
    exporter: Literal["torchscript", "dynamo"] = Field(
        "torchscript", description="torch.onnx exporter: torchscript (graph ORT's optimizer fuses) or dynamo."
    )
    opset: int | None = Field(
        None, ge=14, le=23, description="ONNX opset (default 17 for torchscript, which allows up to 20; 18 for dynamo)."
    )
    optimize: bool = Field(
        True, description="Fuse the graph with ONNX Runtime's transformer optimizer (BERT-family models; stays fp32)."
    )
    provider: Literal["cpu", "cuda", "tensorrt"] = Field(
        "cpu", description="ONNX Runtime execution provider for the parity check (cuda/tensorrt need onnxruntime-gpu)."
    )
    parity_tolerance: float = Field(
        1e-4, ge=0, description="Largest allowed absolute logit difference between ONNX Runtime and PyTorch."
    )
    parity_file: Path | None = Field(
        None, description="Texts for the parity check (.jsonl with a text field, or one per line); default: random "
        "text from the tokenizer's vocabulary."
    )  # fmt: skip
    threads: int | None = Field(None, ge=1, description="ONNX Runtime intra-op threads (default: one per core).")

    @model_validator(mode="after")
    def _opset_fits_exporter(self) -> ExportConfig:
        if self.opset is not None and self.exporter == "torchscript" and self.opset > 20:
            raise ValueError(f"opset {self.opset}: the torchscript exporter writes opsets 14-20; use exporter dynamo")
        if self.opset is not None and self.exporter == "dynamo" and self.opset < 18:
            raise ValueError(f"opset {self.opset}: the dynamo exporter writes opsets 18-23")
        return self


class BenchConfig(StageConfig):
    """Measure latency, throughput, size and peak memory of several models side by side."""

    stage: ClassVar[str] = "bench"

    models: list[str] = Field(
        min_length=1, description="Model folders (PyTorch, optional @fp32|@bf16|@torch-int8 suffix), .onnx files or "
        "folders with one. The first is the baseline of the speed ratios.", json_schema_extra=positional())  # fmt: skip
    seq_len: int = Field(128, ge=2, le=8192, description="Tokens per sequence; every input is padded/cut to this.")
    batch_sizes: list[PositiveInt] = Field([1], min_length=1, description="Batch sizes at which latency is timed.")
    throughput_batch: int = Field(32, ge=1, description="Batch size at which throughput (sequences/s) is timed.")
    threads: int | None = Field(None, ge=1, description="CPU threads per model (default: the usable physical cores).")
    warmup: int = Field(3, ge=0, description="Untimed runs before each latency timing (1 before throughput).")
    repeat: int = Field(20, ge=1, description="Timed runs per latency batch size.")
    throughput_repeat: int = Field(5, ge=1, description="Timed runs at the throughput batch size.")
    text: Path | None = Field(None, description="Text file to tokenise for the inputs (default: built-in text).")
    pick_fastest: bool = Field(
        False, description="Also measure each PyTorch folder given without a suffix as bf16 and torch-int8, and name "
        "the fastest entry."
    )  # fmt: skip
