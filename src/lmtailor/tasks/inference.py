"""Running a task model over examples: batched forward passes, decoding to labels or entities, and throughput.

Shared by `finetune` (final dev/test evaluation), `evaluate` and `predict`, so the numbers a user gets from any of
them come from the same code. Loading a model folder and its `task.json` (how the model reads text) is
`lmtailor.models.task_folder`'s.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import numpy as np
import torch

from lmtailor.models.task_folder import TaskSpec, load_task_model
from lmtailor.tasks.align import Encoded, decode_cls, decode_ner_scored, encode_cls, encode_ner

# TaskSpec and load_task_model (the task folder's, in lmtailor.models.task_folder) stay importable from here.
__all__ = [
    "RawExample",
    "TaskSpec",
    "forward",
    "load_task_model",
    "padded_batches",
    "predict_cls",
    "predict_ner",
    "predict_ner_scored",
    "raw_examples",
]

# Units of raw text given to `predict` for a word-level model: word-character runs and single other characters,
# which matches how the word-level NER corpora (NCBI-disease, BC5CDR) were tokenized.
WORD_UNITS = re.compile(r"\w+|[^\w\s]")
CHAR_UNITS = re.compile(r"\S")


@dataclass
class RawExample:
    """An NER example built from raw text for prediction (no gold tags)."""

    text: str
    units: tuple[tuple[int, int], ...]
    tags: tuple[str, ...] = ()


def padded_batches(features: list[dict], batch_size: int):
    """(feature indices, {input_ids, attention_mask[, token_type_ids]: [B, W] zero-padded LongTensors}) over
    features sorted by length, so that little time goes on padding."""
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if features and k in features[0]]
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(features[i]["input_ids"]) for i in idx)
        batch = {k: torch.zeros(len(idx), width, dtype=torch.long) for k in keys}
        for r, i in enumerate(idx):
            n = len(features[i]["input_ids"])
            for k in keys:
                batch[k][r, :n] = torch.tensor(features[i][k])
        yield idx, batch


@torch.no_grad()
def forward(
    model, features: list[dict], batch_size: int = 64, precision: str = "fp32", states: list | None = None
) -> tuple[list, dict]:
    """Per-feature logits ([C] or [T, C] numpy arrays, unpadded) and timing, over `padded_batches`. Given a list
    as `states`, it is filled with each feature's final-layer hidden state at its first token ([H]; a PyTorch
    model only), the representation a classifier head reads."""
    device = model.device  # HF models and OnnxTaskModel have it; a quantised Linear has no parameters
    out: list = [None] * len(features)
    if states is not None:
        states[:] = [None] * len(features)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    t0, tokens = time.perf_counter(), sum(len(f["input_ids"]) for f in features)
    for idx, batch in padded_batches(features, batch_size):
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
    """[n, C] class probabilities and timing; a fused folder's (`lmtailor fuse`) are the model's fused with its
    baseline's, and the timing counts the baseline too."""
    enc = encode_cls(tokenizer, texts, None, spec.max_length, spec.long_text, spec.stride)
    logits, timing = forward(model, enc.features, batch_size, precision)
    probs = decode_cls(enc, np.stack(logits) if logits else np.zeros((0, model.config.num_labels)), len(texts))
    if spec.fused is not None:
        probs, seconds = spec.fused.apply(probs, texts)
        timing["baseline_seconds"] = round(seconds, 3)
        timing["seconds"] = round(timing["seconds"] + seconds, 3)
    timing["examples_per_second"] = round(len(texts) / timing["seconds"], 1) if timing["seconds"] else None
    return probs, timing


def predict_ner(model, tokenizer, spec: TaskSpec, examples: list, batch_size: int = 64, precision: str = "fp32"):
    """Unit-level IOB2 tags for each example, the encoding (for alignment statistics) and timing."""
    tags, _, enc, timing = predict_ner_scored(model, tokenizer, spec, examples, batch_size, precision)
    return tags, enc, timing


def predict_ner_scored(
    model, tokenizer, spec: TaskSpec, examples: list, batch_size: int = 64, precision: str = "fp32"
) -> tuple[list[list[str]], list[list[float]], Encoded, dict]:
    """Like `predict_ner`, with each unit's probability of its tag (the softmax at the token that decided it)."""
    enc: Encoded = encode_ner(tokenizer, examples, None, spec.max_length, spec.stride)
    logits, timing = forward(model, enc.features, batch_size, precision)
    predicted = [lg.argmax(-1) for lg in logits]
    confidence = [_softmax(lg).max(-1) for lg in logits]  # [T] each
    id2label = {int(k): v for k, v in model.config.id2label.items()}
    tags, scores = decode_ner_scored(examples, enc, predicted, id2label, confidence)
    timing["examples_per_second"] = round(len(examples) / timing["seconds"], 1) if timing["seconds"] else None
    return tags, scores, enc, timing


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def raw_examples(texts: list[str], units: str) -> list[RawExample]:
    """NER examples for raw text: units are words (word-character runs, single punctuation) or characters."""
    pattern = CHAR_UNITS if units == "chars" else WORD_UNITS
    return [RawExample(t, tuple(m.span() for m in pattern.finditer(t))) for t in texts]
