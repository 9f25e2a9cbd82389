"""Export stage: task models as ONNX graphs (`onnx`), checked on probes, and benchmarked side by side (`bench`).

The configs are imported eagerly (`config` imports no torch); the rest, which imports torch and ONNX Runtime, when
first used. Running an exported folder with ONNX Runtime is `lmtailor.models.onnx_runtime`'s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.export.config import BenchConfig, ExportConfig
from lmtailor.lazy import lazy_names

if TYPE_CHECKING:
    from lmtailor.export.onnx import run_export
    from lmtailor.models.onnx_runtime import ONNX_FILE, OnnxTaskModel, make_session

_LAZY = {
    "run_export": "lmtailor.export.onnx",
    "ONNX_FILE": "lmtailor.models.onnx_runtime",
    "OnnxTaskModel": "lmtailor.models.onnx_runtime",
    "make_session": "lmtailor.models.onnx_runtime",
}

__all__ = ["ONNX_FILE", "BenchConfig", "ExportConfig", "OnnxTaskModel", "make_session", "run_export"]

__getattr__ = lazy_names(__name__, _LAZY)
