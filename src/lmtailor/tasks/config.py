"""Configuration of `lmtailor evaluate`, apart from the code that runs it so that reading it imports no torch."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from lmtailor.config import StageConfig, cli_flags, positional


class TaskFileFields(BaseModel):
    """How labelled task files are read: the fields `finetune`, `distill` and `baseline` share, defined once."""

    text_field: str = Field("text", description="cls: name of the text field/column.")
    label_field: str = Field("label", description="cls: name of the label field/column.")
    ner_format: Literal["auto", "columns", "spans"] = Field(
        "auto", description="ner: file format (auto by suffix).", json_schema_extra=cli_flags("--format")
    )
    nested: Literal["outer", "inner", "first"] = Field("outer", description="ner: which of nested entities to keep.")
    invalid_tags: Literal["repair", "error"] = Field(
        "repair", description="ner: an I- without B- is repaired or an error."
    )

    def read_task(self, task: str, path: Path):
        """The labelled examples of `path` (`TaskData`), read as these fields say."""
        from lmtailor.tasks.readers import read_cls, read_ner

        if task == "cls":
            return read_cls(path, text_field=self.text_field, label_field=self.label_field)
        return read_ner(path, fmt=self.ner_format, nested=self.nested, invalid_tags=self.invalid_tags)

    def read_for_model(self, task: str, path: Path, label2id: dict[str, int], model: object):
        """`read_task`, refusing a file with labels (or entity types) the model was not trained on."""
        from lmtailor.errors import InputFormatError

        data = self.read_task(task, path)
        known = set(label2id) if task == "cls" else {lab[2:] for lab in label2id if lab != "O"}
        unknown = sorted(set(data.labels) - known)
        if unknown:
            raise InputFormatError(
                f"{path} has labels the model {model} was not trained on: {', '.join(unknown[:5])}; evaluate on "
                "data with the model's labels, or fine-tune with them."
            )
        return data


class EvaluateConfig(TaskFileFields, StageConfig):
    """Evaluate a fine-tuned model on a labelled file."""

    stage: ClassVar[str] = "evaluate"

    model: Path = Field(
        description="Model folder from `lmtailor finetune` (or any HF classification/NER folder).",
        json_schema_extra=positional(1),
    )
    data: Path = Field(
        description="Labelled file in the same format as the training data.", json_schema_extra=positional(2)
    )
    split_name: str = Field("test", description="Name used in the output files (eval_<name>.json, ...).")
    batch_size: int = Field(64, ge=1, description="Examples per forward pass.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="Inference precision (bf16 autocast).")
