"""Task metrics the way the field reports them: scikit-learn for classification, seqeval for entities.

Classification: accuracy, macro-, micro- and weighted-F1 and per-class precision/recall/F1/support, over the full
label list (a class that is never predicted still counts in the macro average, with F1 0). NER: strict entity-level
matching (seqeval's `mode="strict"` with the IOB2 scheme): an entity counts only if its type and both boundaries
are right; an `I-X` that does not follow `B-X`/`I-X` is not silently promoted to an entity start, which is what the
default (CoNLL-script) mode would do.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from seqeval.metrics import classification_report as seqeval_report
from seqeval.scheme import IOB2
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

log = logging.getLogger(__name__)


def write_split_results(out_dir: Path, name: str, report: dict, predictions: list[dict], metric: str | None,
                        task: str, timing: dict, path: Path) -> dict:  # fmt: skip
    """eval_<name>.json (the scores, the metric the model is judged by and its value, the timing, the file) and
    predictions_<name>.jsonl: what `evaluate`, `finetune`, `distill` and `baseline` write for a split."""
    import json

    from lmtailor.outputs import write_json
    from lmtailor.tasks.target import parse_metric

    target = parse_metric(metric, task)
    report["metric"], report["metric_value"] = target.name, target.value(report)
    report["throughput"] = timing
    report["file"] = str(path)
    write_json(Path(out_dir) / f"eval_{name}.json", report)
    with open(Path(out_dir) / f"predictions_{name}.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in predictions)
    return report


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str]) -> dict:
    """Accuracy, macro/micro/weighted F1 and a per-class table, rounded to 4 places."""
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    out: dict = {
        "accuracy": accuracy_score(y_true, y_pred),
        "macro_f1": f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "micro_f1": f1_score(y_true, y_pred, labels=labels, average="micro", zero_division=0),
        "weighted_f1": f1_score(y_true, y_pred, labels=labels, average="weighted", zero_division=0),
    }
    out = {k: round(float(v), 4) for k, v in out.items()}
    out["examples"] = len(y_true)
    out["per_class"] = {
        lab: {
            "precision": round(float(p[i]), 4),
            "recall": round(float(r[i]), 4),
            "f1": round(float(f[i]), 4),
            "support": int(s[i]),
        }
        for i, lab in enumerate(labels)
    }
    return out


def ner_metrics(y_true: Sequence[Sequence[str]], y_pred: Sequence[Sequence[str]]) -> dict:
    """Strict entity-level precision/recall/F1 (micro over entities), macro-F1 over types, and per type."""
    if all(t == "O" for seq in (*y_true, *y_pred) for t in seq):
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0, "macro_f1": 0.0, "entities": 0, "per_type": {}}
    report = seqeval_report(
        [list(s) for s in y_true], [list(s) for s in y_pred], mode="strict", scheme=IOB2, output_dict=True,
        zero_division=0,
    )  # fmt: skip
    micro, macro = report.pop("micro avg"), report.pop("macro avg")
    for key in ("weighted avg", "samples avg"):
        report.pop(key, None)
    return {
        "precision": round(float(micro["precision"]), 4),
        "recall": round(float(micro["recall"]), 4),
        "f1": round(float(micro["f1-score"]), 4),
        "macro_f1": round(float(macro["f1-score"]), 4),
        "entities": int(micro["support"]),
        "per_type": {
            t: {
                "precision": round(float(v["precision"]), 4),
                "recall": round(float(v["recall"]), 4),
                "f1": round(float(v["f1-score"]), 4),
                "support": int(v["support"]),
            }
            for t, v in sorted(report.items())
        },
    }


def _font_family(labels: Sequence[str]) -> list[str] | None:
    """A font family list that can draw every label: the default when the labels are Latin; the default plus the
    first installed font that has all their other glyphs (CJK labels need one); [] when none is installed."""
    chars = frozenset(c for lab in labels for c in lab if ord(c) > 0x24F)
    return list(_font_with(chars)) if chars else None


@functools.cache
def _font_with(chars: frozenset[str]) -> list[str]:
    """Opening every installed font is slow; dev and test plots of one run ask for the same characters."""
    from matplotlib import font_manager, ft2font

    for entry in sorted(font_manager.fontManager.ttflist, key=lambda e: e.fname):
        try:
            font = ft2font.FT2Font(entry.fname)
        except (OSError, RuntimeError):
            continue
        if all(font.get_char_index(ord(c)) for c in chars):
            return ["DejaVu Sans", entry.name]
    return []


def confusion_png(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str], path: Path) -> Path:
    """A row-normalised confusion matrix with counts in the cells, as a PNG (matplotlib, no display needed).

    Labels no installed font can draw (Chinese labels on a machine without a CJK font) become their index in the
    label list, so the plot never shows empty boxes; the index order is that of `per_class` in the metrics JSON.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(labels)
    family = _font_family(labels)
    ticks = labels
    if family == []:
        log.warning("no installed font draws these labels; the confusion matrix shows label indices (install a CJK "
                    "font such as fonts-noto-cjk for names)")  # fmt: skip
        ticks = [str(i) for i in range(len(labels))]
    cm = confusion_matrix(y_true, y_pred, labels=labels)  # [true, pred]
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.45 * len(labels) + 2)
    with plt.rc_context({"font.family": family} if family else {}):
        fig, ax = plt.subplots(figsize=(size + 1.5, size))
        im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        ax.set_xticks(range(len(labels)), ticks, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), ticks, fontsize=8)
        ax.set_xlabel("predicted" + (" (label index)" if ticks is not labels else ""))
        ax.set_ylabel("true")
        for i in range(len(labels)):
            for j in range(len(labels)):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                            color="white" if share[i, j] > 0.5 else "black")  # fmt: skip
        fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
        ax.set_title(f"confusion matrix ({len(y_true)} examples)")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return path
