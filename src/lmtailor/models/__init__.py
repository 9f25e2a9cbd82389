"""Shared model machinery, below every stage: the small BERT presets (`presets`) and the planner (`plan`), checking
and loading model folders (`folder`, `task_folder`, `onnx_runtime`), the encoder's layers (`encoder`), dropout,
subcloning, and importing published models (`import_e5`, its config in `config`).

The preset names below are imported on first use, so that `lmtailor.models.config` (read by the CLI and recipes)
does not pull in transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.lazy import lazy_names

if TYPE_CHECKING:
    from lmtailor.models.presets import PRESETS, Shape, bert_config, build_mlm, preset_shape

__all__ = ["PRESETS", "Shape", "bert_config", "build_mlm", "preset_shape"]

__getattr__ = lazy_names(__name__, dict.fromkeys(__all__, "lmtailor.models.presets"))
