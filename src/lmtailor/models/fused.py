"""A classifier fused with its n-gram baseline: the runtime half, which loading a `lmtailor fuse` folder needs.

    log p = w · log softmax(model logits) + (1 − w) · log softmax(t · baseline margins)

The baseline (TF-IDF n-grams + a linear SVM, `lmtailor baseline`) and a fine-tuned encoder err on different texts:
on CAIL2018 an int8 student scores 0.891 on test, the baseline 0.906 and the pair 0.921 (docs/benchmarks.md,
issue 22). A fused folder is the neural model's folder (it still loads with `AutoModelForSequenceClassification` or
ONNX Runtime alone) plus `baseline.joblib`, with the weight w and temperature t in its task.json; `load_task_model`
attaches a `Fusion` to the folder's spec, and `predict_cls` applies it, so `evaluate`, `predict` and `serve` answer
with the pair. Choosing w and t on dev is `lmtailor.baseline.fusion`'s.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lmtailor.errors import InputFormatError, InputNotFoundError

FUSION_FILE = "baseline.joblib"  # the baseline's scikit-learn pipeline inside a fused folder


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def fuse(model_logits: np.ndarray, margins: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """The fused log-probabilities [n, C] (normalised)."""
    return log_softmax(weight * log_softmax(model_logits) + (1 - weight) * log_softmax(temperature * margins))


INT8_FORMAT = "lmtailor-linear-int8/1"  # baseline.joblib of `fuse --baseline-precision int8` (the default)


def load_baseline(path: Path, source: str | None = None):
    """The scikit-learn pipeline of a `lmtailor baseline cls` output folder (its model.joblib) or of a joblib file,
    an int8-packed one (`pack_int8`) unpacked."""
    import joblib

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(
            f"{source or path}: {path} does not exist; give the output folder of `lmtailor baseline cls`."
        )
    file = path / "model.joblib" if path.is_dir() else path
    if not file.is_file():
        raise InputNotFoundError(
            f"{source or path}: no {file.name}; give the output folder of `lmtailor baseline cls` (an NER baseline, "
            "a CRF, cannot be fused)."
        )
    try:
        stored = joblib.load(file)
    except Exception as exc:  # a truncated or foreign pickle: joblib raises many kinds
        raise InputFormatError(
            f"{file}: cannot be read as a scikit-learn pipeline ({type(exc).__name__}: {exc}); fit the baseline again "
            "with `lmtailor baseline cls`, with the scikit-learn version its lmtailor.json names."
        ) from None
    pipeline = unpack_int8(stored) if isinstance(stored, dict) and stored.get("format") == INT8_FORMAT else stored
    if not hasattr(pipeline, "decision_function") or not hasattr(pipeline, "classes_"):
        raise InputFormatError(f"{file}: not a fitted classifier with decision margins; fit it with `baseline cls`.")
    return pipeline


def pack_int8(pipeline) -> dict:
    """The baseline with its linear layer's weights in int8, one scale per class (its largest |weight| / 127): what
    `fuse` stores. The n-gram SVM's [classes, n-grams] float64 matrix is most of its size (CAIL2018: 22.7 of 24.1 MB
    compressed); in int8 it compresses to 1.1 MB, and the margins move by under 0.05 (dev decisions all kept)."""
    import copy

    packed = copy.deepcopy(pipeline)
    linear = packed.steps[-1][1]
    coef = np.asarray(linear.coef_, dtype=np.float64)
    scale = np.abs(coef).max(1, keepdims=True) / 127
    scale[scale == 0] = 1.0
    linear.coef_ = None
    return {"format": INT8_FORMAT, "pipeline": packed, "coef": np.round(coef / scale).astype(np.int8), "scale": scale}


def unpack_int8(packed: dict):
    """A copy of the pipeline of `pack_int8`, its weights dequantised (float64, as scikit-learn computes)."""
    import copy

    pipeline = copy.deepcopy(packed["pipeline"])
    pipeline.steps[-1][1].coef_ = packed["coef"].astype(np.float64) * packed["scale"]
    return pipeline


def label_order(pipeline, names: Sequence[str], source: str = "baseline") -> list[int]:
    """The baseline's column of each of `names` (the neural model's labels); an error if the label sets differ."""
    classes = [str(c) for c in pipeline.classes_]
    if sorted(classes) != sorted(names):
        missing, extra = sorted(set(names) - set(classes)), sorted(set(classes) - set(names))
        raise InputFormatError(
            f"{source}: its labels differ from the model's (model only: {missing[:5]}, baseline only: {extra[:5]}); "
            "fit the baseline on the same training file as the model."
        )
    return [classes.index(n) for n in names]


def margins_in_order(scores: np.ndarray, order: list[int]) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:  # two classes: one margin, positive for classes_[1]
        scores = np.stack([-scores, scores], axis=1) / 2
    return scores[:, order]


def baseline_margins(pipeline, texts: Sequence[str], names: Sequence[str], source: str = "baseline") -> np.ndarray:
    """[n, C] decision margins of the baseline, its columns in the order of `names`."""
    order = label_order(pipeline, names, source)
    return margins_in_order(pipeline.decision_function(list(texts)), order)


@dataclass
class Fusion:
    """The baseline half of a fused folder, ready to apply: pipeline, its column for each model label, w and t."""

    pipeline: object
    order: list[int]
    weight: float
    temperature: float

    def apply(self, probs: np.ndarray, texts: Sequence[str]) -> tuple[np.ndarray, float]:
        """The fused class probabilities [n, C] from the model's ([n, C], in its label order), and the seconds the
        baseline took (what the pair costs beyond the neural model)."""
        t0 = time.perf_counter()
        if not len(texts):
            return probs, 0.0
        margins = margins_in_order(self.pipeline.decision_function(list(texts)), self.order)
        logp = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, None))
        fused = np.exp(fuse(logp, margins, self.weight, self.temperature))
        return fused, time.perf_counter() - t0


def check_fusion_spec(fusion: object, source: str) -> dict:
    """The `fusion` entry of a task.json, checked: {"baseline": file, "weight": 0..1, "temperature": > 0}."""
    ok = isinstance(fusion, dict) and isinstance(fusion.get("baseline"), str)
    if ok:
        try:
            weight, temperature = float(fusion["weight"]), float(fusion["temperature"])
            ok = 0.0 <= weight <= 1.0 and temperature > 0 and "/" not in fusion["baseline"]
        except (KeyError, TypeError, ValueError):
            ok = False
    if not ok:
        raise InputFormatError(
            f"{source}: its task.json 'fusion' entry is not {{'baseline': file in the folder, 'weight': 0..1, "
            f"'temperature': > 0}} (got {fusion!r}); write the folder again with `lmtailor fuse`."
        )
    return fusion  # type: ignore[return-value]


def load_fusion(folder: Path, fusion: dict, names: Sequence[str]) -> Fusion:
    """The `Fusion` a fused folder's task.json describes, its baseline checked against the model's labels."""
    fusion = check_fusion_spec(fusion, str(folder))
    pipeline = load_baseline(Path(folder) / fusion["baseline"], str(folder))
    order = label_order(pipeline, names, f"{folder}/{fusion['baseline']}")
    return Fusion(pipeline, order, float(fusion["weight"]), float(fusion["temperature"]))
