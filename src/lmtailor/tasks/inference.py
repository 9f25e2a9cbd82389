"""Running a task model over examples: batched forward passes, decoding to labels or entities, and throughput.

Shared by `finetune` (final dev/test evaluation), `evaluate` and `predict`, so the numbers a user gets from any of
them come from the same code. How a model reads text (task, max length, long-text policy, unit type) travels with
the model folder in `task.json`, written by `finetune`; a plain HF folder without it is read with the defaults.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.models.folder import check_model_folder
from lmtailor.tasks.align import Encoded, decode_cls, decode_ner, encode_cls, encode_ner

TASK_FILE = "task.json"
# Units of raw text given to `predict` for a word-level model: word-character runs and single other characters,
# which matches how the word-level NER corpora (NCBI-disease, BC5CDR) were tokenized.
WORD_UNITS = re.compile(r"\w+|[^\w\s]")
CHAR_UNITS = re.compile(r"\S")


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

    def save(self, folder: Path) -> None:
        (Path(folder) / TASK_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")


@dataclass
class RawExample:
    """An NER example built from raw text for prediction (no gold tags)."""

    text: str
    units: tuple[tuple[int, int], ...]
    tags: tuple[str, ...] = ()


def load_task_model(folder: str | Path, provider: str = "cpu", threads: int | None = None):
    """(model, tokenizer, spec) of a fine-tuned classification or NER model folder.

    A folder with `model.onnx` and no PyTorch weights (from `lmtailor export` or `quantize`) gives an
    `OnnxTaskModel` run by ONNX Runtime on `provider` with `threads` intra-op threads; these two apply to it only.
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
    if _is_onnx_folder(folder):
        from lmtailor.export.runtime import OnnxTaskModel

        return OnnxTaskModel(folder, provider, threads), tokenizer, spec
    model = auto.from_pretrained(str(folder)).eval()
    if spec.torch_int8:
        from lmtailor.compress.quantize import torch_int8

        model = torch_int8(model)
    return model, tokenizer, spec


def _is_onnx_folder(folder: Path) -> bool:
    weights = [*folder.glob("*.safetensors"), *folder.glob("pytorch_model*.bin")]
    return (folder / "model.onnx").is_file() and not weights


@torch.no_grad()
def forward(
    model, features: list[dict], batch_size: int = 64, precision: str = "fp32", states: list | None = None
) -> tuple[list, dict]:
    """Per-feature logits ([C] or [T, C] numpy arrays, unpadded) and timing. Batches are formed from length-sorted
    features so little time goes on padding. Given a list as `states`, it is filled with each feature's final-layer
    hidden state at its first token ([H]; a PyTorch model only), the representation a classifier head reads."""
    device = model.device  # HF models and OnnxTaskModel have it; a quantised Linear has no parameters
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    out: list = [None] * len(features)
    if states is not None:
        states[:] = [None] * len(features)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if features and k in features[0]]
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    t0, tokens = time.perf_counter(), 0
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(features[i]["input_ids"]) for i in idx)
        batch = {k: torch.zeros(len(idx), width, dtype=torch.long) for k in keys}
        for r, i in enumerate(idx):
            n = len(features[i]["input_ids"])
            tokens += n
            for k in keys:
                batch[k][r, :n] = torch.tensor(features[i][k])
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            result = model(**batch, output_hidden_states=True) if states is not None else model(**batch)
        logits = result.logits.float().cpu().numpy()  # [B, C] or [B, T, C]
        for r, i in enumerate(idx):
            out[i] = logits[r] if logits.ndim == 2 else logits[r, : len(features[i]["input_ids"])]
            if states is not None:
                states[i] = result.hidden_states[-1][r, 0].float().cpu().numpy()
    seconds = time.perf_counter() - t0
    timing = {"seconds": round(seconds, 3), "features": len(features), "tokens": tokens,
              "features_per_second": round(len(features) / seconds, 1) if seconds else None,
              "tokens_per_second": round(tokens / seconds) if seconds else None}  # fmt: skip
    return out, timing


def predict_cls(model, tokenizer, spec: TaskSpec, texts: list[str], batch_size: int = 64, precision: str = "fp32"):
    """[n, C] class probabilities and timing."""
    enc = encode_cls(tokenizer, texts, None, spec.max_length, spec.long_text, spec.stride)
    logits, timing = forward(model, enc.features, batch_size, precision)
    probs = decode_cls(enc, np.stack(logits) if logits else np.zeros((0, model.config.num_labels)), len(texts))
    timing["examples_per_second"] = round(len(texts) / timing["seconds"], 1) if timing["seconds"] else None
    return probs, timing


def predict_ner(model, tokenizer, spec: TaskSpec, examples: list, batch_size: int = 64, precision: str = "fp32"):
    """Unit-level IOB2 tags for each example, the encoding (for alignment statistics) and timing."""
    enc: Encoded = encode_ner(tokenizer, examples, None, spec.max_length, spec.stride)
    logits, timing = forward(model, enc.features, batch_size, precision)
    predicted = [lg.argmax(-1) for lg in logits]
    tags = decode_ner(examples, enc, predicted, {int(k): v for k, v in model.config.id2label.items()})
    timing["examples_per_second"] = round(len(examples) / timing["seconds"], 1) if timing["seconds"] else None
    return tags, enc, timing


def raw_examples(texts: list[str], units: str) -> list[RawExample]:
    """NER examples for raw text: units are words (word-character runs, single punctuation) or characters."""
    pattern = CHAR_UNITS if units == "chars" else WORD_UNITS
    return [RawExample(t, tuple(m.span() for m in pattern.finditer(t))) for t in texts]
