"""The metric a task is judged by: one name, used for early stopping, the best checkpoint, the report and the bar.

    accuracy        cls: share of texts with the right label (the default for classification)
    macro_f1        cls: mean F1 over the labels; ner: mean strict-entity F1 over the entity types
    f1:<label>      cls: F1 of one label (the rare class a team cares about); ner: strict F1 of one entity type
    entity_f1       ner: strict entity F1 over all entities (the default for NER; `f1` is accepted for it)

Accuracy hides a rare class: with one sentence in eleven positive, a model that never predicts it scores 0.91. So
when the training labels are skewed — the most frequent label has at least `SKEW_RATIO` times the examples of the
rarest — `skew_advice` says so and recommends macro-F1 (or `f1:<rare label>`) and class weights.

This module is plain Python (no numpy, sklearn or torch), so configs can validate a metric name when a recipe loads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from lmtailor.errors import ConfigError

SKEW_RATIO = 10.0  # most frequent / rarest training label at or above which accuracy is a misleading headline
METRIC_HELP = (
    "Metric that picks the checkpoint and is reported: accuracy | macro_f1 | f1:<label> (cls); "
    "entity_f1 | macro_f1 | f1:<type> (ner). Default: accuracy (cls), entity_f1 (ner)."
)


@dataclass(frozen=True)
class TargetMetric:
    """A parsed metric name: `kind` is accuracy, macro_f1, entity_f1 or f1 (of `label`)."""

    task: str
    kind: str
    label: str | None = None

    @property
    def name(self) -> str:
        """The canonical spelling: `accuracy`, `macro_f1`, `entity_f1`, `f1:<label>`."""
        return f"f1:{self.label}" if self.kind == "f1" else self.kind

    @property
    def log_key(self) -> str:
        """The key of the dev metrics the Trainer compares (`eval_` + this)."""
        return {"entity_f1": "f1"}.get(self.kind, self.kind) if self.kind != "f1" else f"f1:{self.label}"

    def value(self, metrics: dict) -> float | None:
        """This metric's value in the metrics of `classification_metrics` or `ner_metrics` (None if absent)."""
        if self.kind == "f1":
            table = metrics.get("per_class") or metrics.get("per_type") or {}
            row = table.get(self.label)
            # A label the split never has nor predicts has no row: its F1 is undefined, reported as None.
            return None if row is None else row.get("f1")
        return metrics.get("f1" if self.kind == "entity_f1" else self.kind)

    def check_labels(self, labels: Iterable[str], source: str) -> None:
        """A per-label metric must name a label of the training data."""
        labels = list(labels)
        if self.kind == "f1" and self.label not in labels:
            what = "entity types" if self.task == "ner" else "labels"
            shown = ", ".join(repr(x) for x in labels[:20]) + (" …" if len(labels) > 20 else "")
            raise ConfigError(
                f"metric {self.name!r}: {self.label!r} is not among the {what} of {source} ({shown}); "
                "name one of them, or use macro_f1."
            )


def parse_metric(spec: str | None, task: str) -> TargetMetric:
    """`spec` (None: the task's default) as a `TargetMetric`, or a `ConfigError` naming the valid choices."""
    if spec is None:
        return TargetMetric(task, "accuracy" if task == "cls" else "entity_f1")
    text = spec.strip()
    if text.startswith("f1:") and text[3:].strip():
        return TargetMetric(task, "f1", text[3:].strip())
    kinds = {"cls": {"accuracy", "macro_f1"}, "ner": {"entity_f1", "macro_f1", "f1"}}[task]
    if text in kinds:
        return TargetMetric(task, "entity_f1" if text == "f1" else text)
    hint = {
        ("cls", "f1"): " (F1 of which label? f1:<label>; or macro_f1 over all labels)",
        ("cls", "entity_f1"): " (entity_f1 is for ner)",
        ("ner", "accuracy"): " (tag accuracy rewards the many O tags; use entity_f1)",
    }.get((task, text), "")
    choices = "accuracy, macro_f1, f1:<label>" if task == "cls" else "entity_f1, macro_f1, f1:<type>"
    raise ConfigError(f"metric {spec!r} is not a {task} metric{hint}; choose one of {choices}.")


def check_metric(spec: str | None, task: str) -> None:
    """For a config's validator: a metric name that is not valid for the task raises `ValueError` (pydantic then
    reports it with the field, as for any other bad value)."""
    try:
        parse_metric(spec, task)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def label_counts(examples: Iterable, task: str) -> Counter:
    """Training examples per label (cls) or entities per type (ner)."""
    counts: Counter = Counter()
    for ex in examples:
        if task == "cls":
            counts[ex.label] += 1
        else:
            counts.update(tag[2:] for tag in ex.tags if tag.startswith("B-"))
    return counts


def skew_advice(counts: Counter, metric: TargetMetric, class_weights: bool | None = None) -> str | None:
    """A warning, or None: the label skew of `counts` when it reaches `SKEW_RATIO`, and what to do about it."""
    if len(counts) < 2:
        return None
    (top, n_top), (rare, n_rare) = counts.most_common()[0], counts.most_common()[-1]
    ratio = n_top / max(n_rare, 1)
    if ratio < SKEW_RATIO:
        return None
    todo = []
    if metric.kind in ("accuracy", "entity_f1"):
        todo.append(f"{metric.name} hides the rare labels: use metric macro_f1 (or f1:{rare} for the label that "
                    "matters)")  # fmt: skip
    if class_weights is False:
        todo.append("class_weights: true makes the loss count the rare labels")
    if not todo:
        return None
    share = n_rare / sum(counts.values())
    head = (
        f"skewed labels: {top!r} has {n_top:,} training examples, {rare!r} {n_rare:,} ({share:.1%} of all; "
        f"{ratio:.0f}× fewer, threshold {SKEW_RATIO:.0f}×)"
    )
    return f"{head}; {'; '.join(todo)}."
