"""`lmtailor baseline`: fit the classical model of the task, choose its settings on dev, score it like the others.

The output folder holds the model (`model.joblib` for classification: a scikit-learn pipeline, loaded with the same
scikit-learn version, see `lmtailor.json`; `model.crfsuite` for NER), `trials.json` (every setting tried and its dev
score), and `eval_dev.json` / `eval_test.json` / `predictions_*.jsonl` in the format `lmtailor finetune` writes,
so `lmtailor report` puts the baseline in the ledger beside the neural models and judges them against it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lmtailor.baseline.config import BaselineConfig
from lmtailor.outputs import check_out_dir, stage_output, write_json
from lmtailor.tasks import check_splits
from lmtailor.tasks.metrics import write_split_results
from lmtailor.tasks.tags import span_records
from lmtailor.tasks.target import TargetMetric, label_counts, parse_metric, skew_advice

log = logging.getLogger(__name__)


def read_splits(config: BaselineConfig):
    train = config.read_task(config.task, config.train)
    dev = config.read_task(config.task, config.dev) if config.dev else None
    test = config.read_task(config.task, config.test) if config.test else None
    check_splits(train, *[d for d in (dev, test) if d is not None])
    return train, dev, test


def _glossaries(config: BaselineConfig) -> list[tuple[str, object]]:
    from lmtailor.errors import EmptyInputError, InputNotFoundError
    from lmtailor.terms.glossary import load_terms
    from lmtailor.tokenizer.protect import TermMatcher

    out = []
    for path in config.glossary:
        if not Path(path).exists():
            raise InputNotFoundError(f"glossary {path} does not exist; pass a term list (one term a line).")
        terms = load_terms(Path(path))
        if not terms:
            raise EmptyInputError(f"glossary {path} has no usable terms; check its format (one term a line).")
        out.append((Path(path).stem, TermMatcher(terms, lowercase=True)))
        log.info("baseline: glossary %s: %d terms", path, len(terms))
    return out


def _record(config: BaselineConfig, out_dir: Path, name: str, data, report: dict, lines: list[dict],
            timing: dict) -> dict:  # fmt: skip
    """Write the split's eval and predictions files as finetune does; its scalar scores for the manifest."""
    report = write_split_results(out_dir, name, report, lines, config.metric, config.task, timing, data.path)
    return {**{k: v for k, v in report.items() if not isinstance(v, dict | list)},
            "examples_per_second": timing["examples_per_second"]}  # fmt: skip


def _vectorizers(features) -> list:
    return [v for _, v in features.transformer_list] if hasattr(features, "transformer_list") else [features]


def _cls(config: BaselineConfig, splits, target: TargetMetric, out) -> dict:
    import joblib
    import sklearn

    from lmtailor.baseline.classify import fit_classifier, predict_texts
    from lmtailor.tasks.metrics import classification_metrics

    train, dev, test = splits
    model, trials = fit_classifier(config, train, dev, target)
    for step in _vectorizers(model.named_steps["features"]):
        # The n-grams cut by min_df/max_features, kept "for introspection": most of a pickle's size (sklearn's docs).
        if hasattr(step, "stop_words_"):
            del step.stop_words_
    joblib.dump(model, out.dir / "model.joblib", compress=3)
    clf = model.named_steps["classifier"]
    summary = {"model": "tfidf-linear-svm", "sklearn": sklearn.__version__, "trials": trials,
               "features": int(clf.coef_.shape[1]), "parameters": int(clf.coef_.size + clf.intercept_.size),
               "size_bytes": (out.dir / "model.joblib").stat().st_size}  # fmt: skip
    for name, data in (("dev", dev), ("test", test)):
        if data is None:
            continue
        y_pred, margins, timing = predict_texts(model, [ex.text for ex in data.examples])
        report = classification_metrics([ex.label for ex in data.examples], y_pred, train.labels)
        lines = [{"id": ex.id, "label": ex.label, "predicted": p, "margin": round(m, 4)}
                 for ex, p, m in zip(data.examples, y_pred, margins, strict=True)]  # fmt: skip
        summary[name] = _record(config, out.dir, name, data, report, lines, timing)
    return summary


def _ner(config: BaselineConfig, splits, target: TargetMetric, out) -> dict:
    import shutil
    import time

    from lmtailor.baseline.tagger import MODEL_FILE, Featurizer, fit_tagger, tag
    from lmtailor.tasks.metrics import ner_metrics

    train, dev, test = splits
    featurizer = Featurizer(_glossaries(config))
    with tempfile.TemporaryDirectory(dir=out.dir) as work:
        best, trials = fit_tagger(config, train, dev, target, featurizer, Path(work))
        shutil.move(str(best), out.dir / MODEL_FILE)
    summary = {"model": "crf", "glossaries": [str(p) for p in config.glossary], "trials": trials,
               "size_bytes": (out.dir / MODEL_FILE).stat().st_size}  # fmt: skip
    for name, data in (("dev", dev), ("test", test)):
        if data is None:
            continue
        t0 = time.perf_counter()
        tags = tag(out.dir / MODEL_FILE, featurizer.sentences(data.examples))
        seconds = time.perf_counter() - t0  # features and tagging: what a request would cost
        timing = {"seconds": round(seconds, 4),
                  "examples_per_second": round(len(tags) / seconds, 1) if seconds > 0 else None}  # fmt: skip
        report = ner_metrics([list(ex.tags) for ex in data.examples], tags)
        lines = [{"id": ex.id, "text": ex.text, "entities": span_records(ex.text, ex.units, ex.tags),
                  "predicted": span_records(ex.text, ex.units, p)}
                 for ex, p in zip(data.examples, tags, strict=True)]  # fmt: skip
        summary[name] = _record(config, out.dir, name, data, report, lines, timing)
    return summary


def run_baseline(config: BaselineConfig) -> Path:
    check_out_dir(config)
    splits = read_splits(config)
    train = splits[0]
    target = parse_metric(config.metric, config.task)
    target.check_labels(train.labels, str(config.train))
    if config.task == "cls":
        advice = skew_advice(label_counts(train.examples, "cls"), target, config.class_weights != "none")
        if advice:
            log.warning("%s: %s", config.train, advice)
    if splits[1] is None:
        log.warning("baseline: no --dev, so nothing is tuned: the middle of the grid is used as is.")
    with stage_output(config) as out:
        for name in ("train", "dev", "test"):
            path = getattr(config, name)
            if path is not None:
                out.add_input(name, Path(path))
        summary = (_cls if config.task == "cls" else _ner)(config, splits, target, out)
        summary["metric"] = target.name
        write_json(out.dir / "trials.json", summary.pop("trials"))
        out.metrics.update(summary)
    test = summary.get("test", {})
    log.info("baseline %s: test %s %s", config.task, target.name, test.get("metric_value"))
    return Path(config.out_dir)
