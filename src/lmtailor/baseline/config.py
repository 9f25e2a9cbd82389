"""Configuration of `lmtailor baseline`, apart from the code that runs it so that reading it imports no sklearn."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from lmtailor.config import StageConfig, positional
from lmtailor.tasks.config import TaskFileFields
from lmtailor.tasks.target import METRIC_HELP, check_metric


class BaselineConfig(TaskFileFields, StageConfig):
    """A strong classical model for the task, tuned on dev: what every neural model of a build must beat."""

    stage: ClassVar[str] = "baseline"

    task: Literal["cls", "ner"] = Field(
        description="cls: TF-IDF word and character n-grams + logistic regression; ner: a CRF over character or "
        "word features and glossary matches.",
        json_schema_extra=positional(1),
    )
    train: Path = Field(description="Training file, as for `lmtailor finetune`.", json_schema_extra=positional(2))
    dev: Path | None = Field(
        None, description="Dev file: the regularisation (and class weighting) is chosen on it by the metric."
    )
    test: Path | None = Field(None, description="Test file, scored once with the chosen model.")
    metric: str | None = Field(None, description=METRIC_HELP)
    features: Literal["auto", "words", "chars"] = Field(
        "auto",
        description="cls: words (word 1-2-grams + character 2-5-grams within words), chars (character "
        "1-3-grams, for Chinese), or auto: both tried on dev.",
    )
    c_grid: list[float] = Field(
        [0.1, 0.3, 1.0, 3.0], description="cls: inverse regularisation strengths of the linear SVM tried on dev."
    )
    class_weights: Literal["auto", "none", "balanced"] = Field(
        "auto", description="cls: weight classes by inverse frequency (balanced), not (none), or try both on dev."
    )
    max_features: int = Field(300_000, ge=1000, description="cls: n-gram features kept (most frequent first).")
    glossary: list[Path] = Field(
        default_factory=list,
        description="ner: term lists (one term a line, or term<TAB>freq) whose matches are features; each file's "
        "name is its feature (disease.txt → disease).",
    )
    crf_c1: list[float] = Field([0.05, 0.2], description="ner: L1 strengths of the CRF tried on dev (with each c2).")
    crf_c2: list[float] = Field([0.01, 0.1], description="ner: L2 strengths of the CRF tried on dev (with each c1).")
    crf_iterations: int = Field(150, ge=1, description="ner: L-BFGS iterations of each CRF fit.")

    @model_validator(mode="after")
    def _known_metric(self) -> BaselineConfig:
        check_metric(self.metric, self.task)
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ValueError("c_grid needs at least one value, each > 0")
        if not self.crf_c1 or not self.crf_c2 or min(*self.crf_c1, *self.crf_c2) < 0:
            raise ValueError("crf_c1 and crf_c2 need at least one value each, each >= 0")
        return self


class FuseConfig(TaskFileFields, StageConfig):
    """A classifier shipped with its n-gram baseline: one folder, the weight of each chosen on dev."""

    stage: ClassVar[str] = "fuse"

    model: Path = Field(
        description="Classification model folder (finetune, distill, export or quantize output).",
        json_schema_extra=positional(1),
    )
    baseline: Path = Field(
        description="Output folder of `lmtailor baseline cls` fitted on the model's training file.",
        json_schema_extra=positional(2),
    )
    dev: Path = Field(description="Dev file: the weight and the baseline's temperature are chosen on it.")
    test: Path | None = Field(None, description="Test file, scored once with the fused pair.")
    metric: str | None = Field(
        None,
        description="Metric the weight is chosen by: accuracy | macro_f1 | f1:<label>. Default: the one the model "
        "was chosen by (its task.json), else accuracy.",
    )
    batch_size: int = Field(64, ge=1, description="Examples per forward pass.")
    baseline_precision: Literal["int8", "full"] = Field(
        "int8",
        description="The baseline's SVM weights stored in int8 (one scale per class; CAIL2018: 24 → 2.5 MB, dev "
        "decisions unchanged) or as fitted (float64). The weight and temperature are chosen with what is stored.",
    )

    @model_validator(mode="after")
    def _known_metric(self) -> FuseConfig:
        check_metric(self.metric, "cls")
        return self
