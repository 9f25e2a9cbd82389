"""A neural classifier and the classical baseline fused: one class distribution from the two, chosen on dev.

    log p = w · log softmax(model logits) + (1 − w) · log softmax(t · baseline margins)

The baseline (TF-IDF n-grams + a linear SVM, `lmtailor baseline`) and a fine-tuned encoder err on different texts:
on CAIL2018 the pair chosen on dev scores 0.928 on test where the teacher alone scores 0.882 and the baseline 0.906
(docs/benchmarks.md, issue 22). `distill --baseline` teaches a student that fused distribution;
`bench/ensemble_check.py` measures whether a pair would pay. The weight w (0 to 1) and the margins' temperature t
are chosen on dev by the task's metric; ties go to the larger w (the neural model), then the smaller t.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.tasks.metrics import classification_metrics
from lmtailor.tasks.target import parse_metric

WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
TEMPERATURES = [1.0, 2.0, 4.0, 8.0, 16.0]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def load_baseline(folder: Path):
    """The scikit-learn pipeline of a `lmtailor baseline cls` output folder."""
    import joblib

    path = Path(folder) / "model.joblib"
    if not path.is_file():
        raise InputNotFoundError(
            f"{folder}: no model.joblib; give the output folder of `lmtailor baseline cls` (an NER baseline, a CRF, "
            "cannot be fused)."
        )
    return joblib.load(path)


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


def baseline_margins(pipeline, texts: Sequence[str], names: Sequence[str], source: str = "baseline") -> np.ndarray:
    """[n, C] decision margins of the baseline, its columns in the order of `names`."""
    order = label_order(pipeline, names, source)
    scores = np.asarray(pipeline.decision_function(list(texts)), dtype=np.float64)
    if scores.ndim == 1:  # two classes: one margin, positive for classes_[1]
        scores = np.stack([-scores, scores], axis=1) / 2
    return scores[:, order]


def out_of_fold_margins(
    pipeline,
    texts: Sequence[str],
    labels: Sequence[str],
    names: Sequence[str],
    folds: int = 5,
    seed: int = 0,
    source: str = "baseline",
) -> tuple[np.ndarray, int]:
    """[n, C] margins of the baseline on its own training texts, each text scored by a copy fitted without it
    (k-fold, stratified; the baseline's chosen settings refitted): on the texts it was fitted on, the baseline is
    sure of the gold label and its margins say nothing a student could learn. Returns (margins, folds used)."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    order = label_order(pipeline, names, source)
    folds = min(folds, int(np.unique(np.asarray(labels), return_counts=True)[1].min()))
    if folds < 2:
        raise InputFormatError(f"{source}: a label has a single training text; out-of-fold margins need two or more.")
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(clone(pipeline), list(texts), list(labels), cv=cv, method="decision_function")
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 1:
        scores = np.stack([-scores, scores], axis=1) / 2
    return scores[:, order], folds


def fuse(model_logits: np.ndarray, margins: np.ndarray, weight: float, temperature: float) -> np.ndarray:
    """The fused log-probabilities [n, C] (normalised)."""
    return log_softmax(weight * log_softmax(model_logits) + (1 - weight) * log_softmax(temperature * margins))


def choose_fusion(model_logits, margins, gold: Sequence[str], names: Sequence[str], metric: str | None = None) -> dict:
    """The weight and temperature with the best dev `metric` (accuracy by default), and what each side scores."""
    target = parse_metric(metric, "cls")

    def score(logits) -> float:
        predicted = [names[i] for i in np.asarray(logits).argmax(1)]
        return float(target.value(classification_metrics(list(gold), predicted, list(names))) or 0.0)

    grid = [(score(fuse(model_logits, margins, w, t)), w, -t) for t in TEMPERATURES for w in WEIGHTS]
    best, weight, neg_t = max(grid)
    return {"weight": weight, "temperature": -neg_t, "metric": target.name, "dev_fused": round(best, 4),
            "dev_model": round(score(model_logits), 4), "dev_baseline": round(score(margins), 4)}  # fmt: skip
