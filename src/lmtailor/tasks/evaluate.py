"""`lmtailor evaluate` and `lmtailor predict`: scoring a task model on a labelled file, and labelling new text.

Evaluation writes, per split: `eval_<split>.json` (metrics, per-class/per-type tables, NER alignment statistics,
throughput), `predictions_<split>.jsonl` (one line per example: gold and predicted label with its probability, or
gold and predicted entities with character offsets) and, for classification, `confusion_<split>.png`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from lmtailor.models.task_folder import TaskSpec, load_task_model
from lmtailor.outputs import stage_output
from lmtailor.tasks.align import ner_alignment_stats
from lmtailor.tasks.config import EvaluateConfig
from lmtailor.tasks.inference import predict_cls, predict_ner, predict_ner_scored, raw_examples
from lmtailor.tasks.metrics import classification_metrics, confusion_png, ner_metrics, write_split_results
from lmtailor.tasks.readers import TaskData, read_inputs
from lmtailor.tasks.tags import span_records

# EvaluateConfig and read_inputs live lower (tasks.config, tasks.readers) and stay importable from here.
__all__ = ["EvaluateConfig", "evaluate_split", "predict", "predict_records", "read_inputs", "run_evaluate"]

log = logging.getLogger(__name__)


def evaluate_split(
    model, tokenizer, spec: TaskSpec, data: TaskData, out_dir: Path, name: str, batch_size: int = 64,
    precision: str = "fp32",
) -> dict:  # fmt: skip
    """Score `data` and write eval_<name>.json, predictions_<name>.jsonl (and confusion_<name>.png for cls)."""
    out_dir = Path(out_dir)
    lines = []
    if spec.task == "cls":
        labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        probs, timing = predict_cls(model, tokenizer, spec, [ex.text for ex in data.examples], batch_size, precision)
        y_pred = [labels[i] for i in probs.argmax(1)]
        y_true = [ex.label for ex in data.examples]
        report = classification_metrics(y_true, y_pred, labels)
        confusion_png(y_true, y_pred, labels, out_dir / f"confusion_{name}.png")
        for ex, p, row in zip(data.examples, y_pred, probs, strict=True):
            lines.append({"id": ex.id, "label": ex.label, "predicted": p, "score": round(float(row.max()), 4)})
    else:
        tags, enc, timing = predict_ner(model, tokenizer, spec, data.examples, batch_size, precision)
        report = ner_metrics([list(ex.tags) for ex in data.examples], tags)
        report["alignment"] = ner_alignment_stats(data.examples, enc)
        for ex, pred in zip(data.examples, tags, strict=True):
            lines.append({"id": ex.id, "text": ex.text, "entities": span_records(ex.text, ex.units, ex.tags),
                          "predicted": span_records(ex.text, ex.units, pred)})  # fmt: skip
    return write_split_results(out_dir, name, report, lines, spec.metric, spec.task, timing, data.path)


def run_evaluate(config: EvaluateConfig) -> Path:
    model, tokenizer, spec = load_task_model(config.model, fused=True)
    data = config.read_for_model(spec.task, config.data, model.config.label2id, config.model)
    with stage_output(config) as out:
        out.add_input("model", config.model)
        out.add_input("data", config.data)
        report = evaluate_split(model, tokenizer, spec, data, out.dir, config.split_name, config.batch_size,
                                config.precision)  # fmt: skip
        out.metrics.update({k: v for k, v in report.items() if not isinstance(v, dict | list)})
    return Path(config.out_dir)


def predict(model_dir: Path, texts: list[str], batch_size: int = 64, top_k: int = 3) -> Iterator[dict]:
    """One JSON-able record per text: labels with scores, or entities with character offsets and scores."""
    model, tokenizer, spec = load_task_model(model_dir, fused=True)
    yield from predict_records(model, tokenizer, spec, texts, batch_size, top_k)


def predict_records(model, tokenizer, spec: TaskSpec, texts: list[str], batch_size: int = 64, top_k: int = 3) -> list:
    """The records of `predict` for a loaded model; `lmtailor serve` answers with the same ones, so a served answer
    equals the command line's."""
    if spec.task == "cls":
        probs, _ = predict_cls(model, tokenizer, spec, texts, batch_size)
        records = []
        for text, row in zip(texts, probs, strict=True):
            best = row.argsort()[::-1][:top_k]
            top = [{"label": model.config.id2label[int(i)], "score": round(float(row[i]), 4)} for i in best]
            records.append({"text": text, **top[0], "top": top})
        return records
    examples = raw_examples(texts, spec.units)
    tags, scores, _, _ = predict_ner_scored(model, tokenizer, spec, examples, batch_size)
    return [{"text": ex.text, "entities": span_records(ex.text, ex.units, pred, conf)}
            for ex, pred, conf in zip(examples, tags, scores, strict=True)]  # fmt: skip
