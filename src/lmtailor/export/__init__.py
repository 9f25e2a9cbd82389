"""Export stage: task models as ONNX graphs (`onnx`), run by ONNX Runtime (`runtime`), checked on probes (`probe`)."""

from lmtailor.export.onnx import ExportConfig, run_export
from lmtailor.export.runtime import ONNX_FILE, OnnxTaskModel, make_session

__all__ = ["ONNX_FILE", "ExportConfig", "OnnxTaskModel", "make_session", "run_export"]
