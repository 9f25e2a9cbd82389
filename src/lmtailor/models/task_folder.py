"""A task model folder: how its model reads text (`task.json`), and loading it in whichever form it was saved.

`finetune` and `distill` write PyTorch folders, `export` and `quantize --method int8|int4` ONNX ones, `quantize
--method torch-int8` a PyTorch folder whose task.json asks for dynamic int8 at load time. `load_task_model` turns any
of them into (model, tokenizer, spec), so evaluation, prediction, pruning, distillation and the quantisation report
run every form through the same code. How a model reads text (task, max length, long-text policy, unit type) travels
with the model folder in `task.json`; a plain HF folder without it is read with the defaults.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.models.folder import ONNX_FILE, check_model_folder, weight_files

TASK_FILE = "task.json"


@dataclass
class TaskSpec:
    """How a task model reads text; saved next to the weights as task.json."""

    task: str  # "cls" | "ner"
    max_length: int = 256
    long_text: str = "head"
    stride: int = 64
    units: str = "words"  # NER: "words" or "chars", how raw text is cut into units at prediction time
    # Set by `lmtailor quantize --method torch-int8`: the folder keeps fp32 weights and loading applies PyTorch's
    # dynamic int8 quantisation to its Linear layers (deterministic, so every load gives the same model).
    torch_int8: bool = False
    # The metric the model was chosen by (`lmtailor.tasks.target`); None in folders written before it existed.
    metric: str | None = None
    # Set by `lmtailor fuse`: {"baseline": "baseline.joblib", "weight": w, "temperature": t}, the n-gram baseline
    # whose margins are fused with the model's probabilities (`lmtailor.models.fused`); None for a model alone.
    fusion: dict | None = None
    # The loaded baseline of `fusion` (`load_task_model(..., fused=True)` attaches it; `predict_cls` applies it).
    fused: object | None = field(default=None, repr=False, compare=False)

    def save(self, folder: Path) -> None:
        saved = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "fused"}
        if saved["fusion"] is None:  # folders of a model alone keep the task.json they always had
            del saved["fusion"]
        (Path(folder) / TASK_FILE).write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")


def load_task_model(
    folder: str | Path, provider: str = "cpu", threads: int | None = None, spin: bool = True, fused: bool = False
):
    """(model, tokenizer, spec) of a fine-tuned classification or NER model folder.

    A folder of `lmtailor fuse` (a classifier with its n-gram baseline) is refused unless `fused` is True: the code
    that answers with a model (evaluate, predict, serve) applies the baseline, and says so with `fused=True`; a
    stage that changes or times the network (prune, quantize, export, distill, bench) would drop it silently.

    A folder with `model.onnx` and no PyTorch weights (from `lmtailor export` or `quantize`) gives an
    `OnnxTaskModel` run by ONNX Runtime on `provider` with `threads` intra-op threads (busy-waiting between runs
    unless `spin` is False); these apply to it only.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(
            f"model folder {folder} does not exist; pass the output folder of `lmtailor finetune`."
        )
    check_model_folder(folder)
    spec_path = folder / TASK_FILE
    if spec_path.is_file():
        spec = TaskSpec(**json.loads(spec_path.read_text(encoding="utf-8")))
        if spec.fusion is not None and not fused:
            raise ConfigError(fused_refusal(folder))
    else:
        arch = (AutoConfig.from_pretrained(str(folder)).architectures or [""])[0]
        if not arch.endswith(("ForSequenceClassification", "ForTokenClassification")):
            raise InputFormatError(
                f"{folder} holds a {arch or 'model without an architecture'}, not a classification or token "
                "classification model; fine-tune it first with `lmtailor finetune cls|ner`."
            )
        spec = TaskSpec(task="ner" if arch.endswith("ForTokenClassification") else "cls")
    auto = AutoModelForTokenClassification if spec.task == "ner" else AutoModelForSequenceClassification
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if not tokenizer.is_fast:
        raise InputFormatError(f"{folder} has no fast tokenizer (tokenizer.json); lmtailor needs character offsets.")
    if is_onnx_folder(folder):
        # Imported here so that loading a PyTorch folder never loads ONNX Runtime.
        from lmtailor.models.onnx_runtime import OnnxTaskModel

        model = OnnxTaskModel(folder, provider, threads, spin)
    else:
        model = auto.from_pretrained(str(folder)).eval()
        if spec.torch_int8:
            model = torch_int8(model)
    if spec.fusion is not None:
        from lmtailor.models.fused import load_fusion

        if spec.task != "cls":
            raise InputFormatError(f"{folder}: task.json fuses a baseline with an NER model; only cls can be fused.")
        names = [model.config.id2label[i] for i in range(model.config.num_labels)]
        spec.fused = load_fusion(folder, spec.fusion, names)
    return model, tokenizer, spec


def fused_refusal(folder: Path, distill: bool = False) -> str:
    """Why a stage that works on the network alone refuses a fused folder, and what to give it instead (for
    `distill`, also how to teach a student the pair)."""
    sources: dict = {}
    manifest = Path(folder) / "lmtailor.json"
    if manifest.is_file():
        sources = json.loads(manifest.read_text(encoding="utf-8")).get("inputs", {})
    model, baseline = (sources.get(k, {}).get("path") for k in ("model", "baseline"))
    message = (
        f"{folder} is a classifier fused with its n-gram baseline (`lmtailor fuse`); this stage works on the neural "
        f"model alone and would drop the baseline: give it the model the fusion was made from"
        f"{f' ({model})' if model else ''}, then fuse its result again."
    )
    if distill:
        message += (
            " To teach the student the pair itself, pass that model as --teacher and the baseline as --baseline"
            f"{f' ({baseline})' if baseline else ''}."
        )
    return message


def is_fused(folder: Path) -> bool:
    """A `lmtailor fuse` output: its task.json names a fusion."""
    spec_path = Path(folder) / TASK_FILE
    return spec_path.is_file() and json.loads(spec_path.read_text(encoding="utf-8")).get("fusion") is not None


def is_onnx_folder(folder: Path) -> bool:
    """An ONNX export: `model.onnx` and no PyTorch weights beside it."""
    return (folder / ONNX_FILE).is_file() and not weight_files(folder)


def torch_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` with PyTorch dynamic int8 Linear layers (per-tensor weights, activations per batch)."""
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:  # torch.ao.quantization is deprecated; a torch without it cannot load torch-int8 folders
        raise ConfigError(
            "this torch has no torch.ao.quantization, which torch-int8 models need; install torch<2.15 or "
            "re-quantise with --method int8 (ONNX)."
        ) from None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
        return quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
