"""What `update` learns from a built model's folder: what kind of model it is and how it was trained.

The build record (`lmtailor.json`) is the only place that says which training file, dev and test sets and settings
made a task model, so an update without it would have to guess; it is refused instead. An earlier update's record
carries the re-fit settings it used, so updates chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.models.folder import ONNX_FILE, check_model_folder, weight_files
from lmtailor.outputs import MANIFEST, read_manifest


@dataclass
class BuiltModel:
    """A model folder and what its build record says about it."""

    folder: Path
    kind: str  # "finetune" | "distill" | "mlm"
    task: str | None  # "cls" | "ner" for task models
    training: dict = field(default_factory=dict)  # the finetune/distill config that made it (task models)

    def reader(self):
        """How the model's own labelled files are read (`TaskFileFields` from its training config)."""
        from lmtailor.tasks.config import TaskFileFields

        fields = TaskFileFields.model_fields
        return TaskFileFields(**{k: v for k, v in self.training.items() if k in fields})


def read_built_model(folder: Path) -> BuiltModel:
    """The model at `folder`, or a clear error when it cannot be updated."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"model folder {folder} does not exist; pass a folder lmtailor built.")
    check_model_folder(folder)
    if not any((folder / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        raise InputFormatError(f"model folder {folder} has no tokenizer; update a folder an lmtailor stage wrote.")
    if not (folder / MANIFEST).is_file():
        raise InputFormatError(
            f"model folder {folder} has no {MANIFEST} (its build record): update needs it to know the model's "
            "training data and settings. Update the output folder of `lmtailor finetune`, `distill` or `pretrain`."
        )
    record = read_manifest(folder)
    stage, config = record.get("stage", ""), record.get("config", {})
    if (folder / ONNX_FILE).is_file() and not weight_files(folder):
        raise InputFormatError(
            f"{folder} is an ONNX model ({stage}); update the PyTorch model it was exported from, then export and "
            "quantise the update again."
        )
    if stage.startswith(("finetune-", "distill-")):
        return BuiltModel(folder, stage.split("-")[0], config["task"], config)
    if stage == "pretrain":
        return BuiltModel(folder, "mlm", None)
    if stage == "update":
        metrics = record.get("metrics", {})
        return BuiltModel(folder, metrics["kind"], metrics.get("task"), metrics.get("training", {}))
    raise InputFormatError(
        f"{folder} was written by `{stage}`; update takes the output of `finetune`, `distill`, `pretrain` or an "
        "earlier `update`."
    )
