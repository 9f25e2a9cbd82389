"""Configuration of `lmtailor report`, apart from the code that writes it so that reading it imports no matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from lmtailor.config import StageConfig, positional


class ReportConfig(StageConfig):
    """Build a readable report from a build's work folder or from lmtailor output folders."""

    stage: ClassVar[str] = "report"

    # `lmtailor report work/ --out work/report`: the report lives in the work folder it reads (and skips itself).
    inputs_may_hold_output: ClassVar[tuple[str, ...]] = ("inputs",)

    inputs: list[Path] = Field(
        description="A build's work folder (with build.json), or output folders.", json_schema_extra=positional()
    )
    teacher: Path | None = Field(None, description="Reference model (default: the first fine-tuned model).")
    student: Path | None = Field(None, description="Final model (default: the last model with a test metric).")
    title: str = Field("lmtailor report", description="Title of the page.")
    min_coverage: float = Field(0.95, gt=0, le=1, description="Key metric: whole-word vocabulary coverage.")
    max_size_ratio: float = Field(0.2, gt=0, le=1, description="Key metric: student size / teacher size (1/5).")
    max_relative_drop: float = Field(0.05, ge=0, lt=1, description="Key metric: relative task metric drop.")
    strict_drop_points: float = Field(1.0, ge=0, description="Stricter goal: drop in points (issue 5).")
    strict_speedup: float = Field(4.0, gt=0, description="Stricter goal: throughput at batch 32 vs the teacher.")
    min_gain_over_baseline: float = Field(
        1.0, description="Key metric: points by which the teacher and the final model must beat the baseline."
    )
