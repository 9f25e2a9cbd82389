"""Choosing how a neural classifier and the classical baseline are fused, on dev; and the baseline's margins on
its own training texts, out of fold.

    log p = w · log softmax(model logits) + (1 − w) · log softmax(t · baseline margins)

The weight w (0 to 1) and the margins' temperature t are chosen on dev by the task's metric; ties go to the larger w
(the neural model), then the smaller t. `lmtailor fuse` ships a model with its baseline so chosen (a folder that
`evaluate`, `predict` and `serve` answer with); `distill --baseline` teaches a student the fused distribution;
`bench/ensemble_check.py` measures whether a pair would pay. Applying a fusion is `lmtailor.models.fused`'s: loading
a fused folder needs it, and it stays below the stages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmtailor.errors import InputFormatError
from lmtailor.models.fused import baseline_margins, fuse, label_order, load_baseline, log_softmax, margins_in_order
from lmtailor.tasks.metrics import classification_metrics
from lmtailor.tasks.target import parse_metric

WEIGHTS = [round(0.05 * i, 2) for i in range(21)]
TEMPERATURES = [1.0, 2.0, 4.0, 8.0, 16.0]
# The runtime half, importable from here as before.
__all__ = ["baseline_margins", "choose_fusion", "fuse", "label_order", "load_baseline", "log_softmax",
           "out_of_fold_margins"]  # fmt: skip


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
    return margins_in_order(scores, order), folds


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
