"""Running a task model exported to ONNX with ONNX Runtime: sessions, execution providers, and an HF-model look-alike.

`OnnxTaskModel` behaves enough like a `transformers` classification/NER model (`.config`, `.device`, `eval()`,
`model(**batch).logits`) for `lmtailor.tasks.inference.forward`, so `evaluate`, `predict` and the quantisation
report run exported and quantised folders through the same code as PyTorch ones; `load_task_model`
(`lmtailor.models.task_folder`) returns one for a folder that holds `model.onnx` and no PyTorch weights. It lives
with the models, below the stages, because `export` writes such folders and `quantize`, `evaluate` and `bench` read
them.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from transformers import AutoConfig

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.models.folder import ONNX_FILE

log = logging.getLogger(__name__)

INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "logits"
# The lmtailor provider flag -> ONNX Runtime providers, best first. The GPU providers leave the nodes they cannot
# run (shape arithmetic, a few contrib ops) to the ones after them, so CPU always comes last.
PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def model_inputs(model, tokenizer) -> list[str]:
    """The inputs the graph takes: those of input_ids/attention_mask/token_type_ids that the model's forward
    accepts and the tokenizer produces (RoBERTa's forward accepts token_type_ids, its tokenizer never sends them)."""
    params = inspect.signature(model.forward).parameters
    produced = set(tokenizer.model_input_names) | {"input_ids", "attention_mask"}
    return [name for name in INPUT_NAMES if name in params and name in produced]


def check_provider(provider: str) -> list[str]:
    """The ONNX Runtime providers for `provider`, or a ConfigError when this onnxruntime build lacks them."""
    if provider not in PROVIDERS:
        raise ConfigError(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}.")
    wanted = PROVIDERS[provider][0]
    available = ort.get_available_providers()
    if wanted not in available:
        raise ConfigError(
            f"provider {provider!r} needs ONNX Runtime's {wanted}, which this onnxruntime build lacks (it has "
            f"{', '.join(available)}); pip uninstall onnxruntime && pip install onnxruntime-gpu (with a matching "
            "CUDA/TensorRT install), or use --provider cpu."
        )
    return [p for p in PROVIDERS[provider] if p in available]


def make_session(
    path: Path, provider: str = "cpu", threads: int | None = None, spin: bool = True
) -> ort.InferenceSession:
    """An inference session over the ONNX file `path` with every graph optimisation on.

    `threads` sets the intra-op thread count (None: ONNX Runtime's default, one per physical core). `spin` False
    stops ORT's threads from busy-waiting between runs: a little latency for a lot of CPU left to others (a server's
    HTTP work on the same cores). A file ONNX Runtime cannot load (corrupt, not ONNX, unknown operators) raises
    InputFormatError.
    """
    providers = check_provider(provider)
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"ONNX file {path} does not exist; pass the output folder of `lmtailor export`.")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads is not None:
        options.intra_op_num_threads = threads
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: ORT otherwise warns about every node left to the CPU provider
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # ORT's pybind exceptions (InvalidProtobuf, Fail, ...) share no base class but Exception
        raise InputFormatError(
            f"ONNX Runtime cannot load {path}: {str(exc).strip()[:300]}; re-create it with `lmtailor export`."
        ) from None


@dataclass
class OnnxOutput:
    """What `model(**batch)` returns: the logits, as a PyTorch model would give them."""

    logits: torch.Tensor  # [B, C] or [B, T, C], float32, on the CPU


class OnnxTaskModel:
    """An exported (or quantised) task model folder run by ONNX Runtime, called like an HF model."""

    def __init__(
        self, folder: str | Path, provider: str = "cpu", threads: int | None = None, spin: bool = True
    ) -> None:
        self.folder = Path(folder)
        self.config = AutoConfig.from_pretrained(str(self.folder))
        self.session = make_session(self.folder / ONNX_FILE, provider, threads, spin)
        self.input_names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if "input_ids" not in self.input_names or OUTPUT_NAME not in outputs:
            raise InputFormatError(
                f"{self.folder / ONNX_FILE} takes {self.input_names} and gives {outputs}, not input_ids -> logits; "
                "it is not a task model exported by `lmtailor export`."
            )
        # Inputs and outputs live on the CPU whatever the provider: ORT copies them to and from the device.
        self.device = torch.device("cpu")

    def eval(self) -> OnnxTaskModel:
        return self

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Logits for int64 numpy inputs; inputs the graph does not take are ignored, a missing
        token_type_ids is all zeros (one segment)."""
        shape = feeds["input_ids"].shape
        inputs = {}
        for name in self.input_names:
            value = feeds.get(name)
            if value is None and name == "token_type_ids":
                value = np.zeros(shape, dtype=np.int64)
            elif value is None:
                raise InputFormatError(f"{self.folder / ONNX_FILE} needs the input {name!r}, which was not given.")
            inputs[name] = np.ascontiguousarray(value, dtype=np.int64)
        return self.session.run([OUTPUT_NAME], inputs)[0]

    def __call__(self, **batch: torch.Tensor) -> OnnxOutput:
        feeds = {k: v.detach().cpu().numpy() for k, v in batch.items() if k in INPUT_NAMES}
        return OnnxOutput(logits=torch.from_numpy(self.run(feeds)).float())

    def __repr__(self) -> str:
        return f"OnnxTaskModel({self.folder}, providers={self.session.get_providers()})"
