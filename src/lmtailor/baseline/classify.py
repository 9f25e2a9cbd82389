"""The classification baseline: TF-IDF n-grams + a linear SVM, with its features and regularisation tuned on dev.

Two feature sets, both TF-IDF with sublinear term frequency over n-grams seen in at least two training texts:
- `words`: word 1–2-grams plus character 2–5-grams within words (`char_wb`: morphology, misspellings, inflection);
- `chars`: character 1–3-grams across the whole text: for Chinese, where there are no spaces, these are the
  characters and short words themselves (measured on CAIL2018 dev: 0.92 against 0.89 for `words`).
A linear SVM (liblinear: seconds on ten thousand documents, where logistic regression's L-BFGS took a minute per
fit on CAIL2018 at equal accuracy) is fitted for each C and class weighting; the feature set, C and weighting with
the best dev score by the task's metric are kept, fitted on train only, so the baseline has seen exactly what the
neural models saw. This is the reference of ../shared/data/README.md made stronger, as issue 23 asks.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.svm import LinearSVC

from lmtailor.baseline.config import BaselineConfig
from lmtailor.scripts import mostly_han
from lmtailor.tasks.metrics import classification_metrics
from lmtailor.tasks.target import TargetMetric

log = logging.getLogger(__name__)


def vectorizer(kind: str, max_features: int):
    if kind == "chars":
        return TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, min_df=2,
                               max_features=max_features)  # fmt: skip
    half = max_features // 2
    return FeatureUnion([
        ("words", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=half)),
        ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2,
                                  max_features=half)),
    ])  # fmt: skip


def fit_classifier(config: BaselineConfig, train, dev, target: TargetMetric) -> tuple[Pipeline, list[dict]]:
    """The pipeline with the best dev score (or the grid's middle point without dev) and every trial's record."""
    texts, labels = [ex.text for ex in train.examples], [ex.label for ex in train.examples]
    kinds = ["words", "chars"] if config.features == "auto" else [config.features]
    weights = {"auto": [None, "balanced"], "none": [None], "balanced": ["balanced"]}[config.class_weights]
    if dev is None:  # nothing to choose on: one fit at the middle of the grid
        kinds, weights = kinds[-1:] if mostly_han(texts) else kinds[:1], weights[-1:]
    c_grid = config.c_grid if dev else [sorted(config.c_grid)[len(config.c_grid) // 2]]
    trials, best, best_score = [], None, -np.inf
    for kind in kinds:
        t0 = time.perf_counter()
        vec = vectorizer(kind, config.max_features)
        x_train = vec.fit_transform(texts)
        x_dev = vec.transform([ex.text for ex in dev.examples]) if dev else None
        vectorize_s = round(time.perf_counter() - t0, 2)
        for c, weight in itertools.product(c_grid, weights):
            t0 = time.perf_counter()
            clf = LinearSVC(C=c, class_weight=weight, max_iter=5000)
            clf.fit(x_train, labels)
            trial = {"features": kind, "n_features": int(x_train.shape[1]), "C": c,
                     "class_weight": weight or "none", "vectorize_seconds": vectorize_s,
                     "fit_seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
            score = 0.0
            if dev:
                pred = clf.predict(x_dev)
                value = target.value(classification_metrics([ex.label for ex in dev.examples], list(pred),
                                                            train.labels))  # fmt: skip
                trial[f"dev_{target.name}"] = value
                score = -np.inf if value is None else value
            trials.append(trial)
            log.debug("baseline trial %s", trial)  # every trial is in trials.json; -v shows them here
            if best is None or score > best_score:  # ties keep the earlier: the simpler features, the smaller C
                best, best_score = (Pipeline([("features", vec), ("classifier", clf)]), trial), score
    model, chosen = best
    chosen["chosen"] = True
    log.info("baseline: chosen %s", chosen)
    return model, trials


def predict_texts(model: Pipeline, texts: Sequence[str], batch_size: int = 32) -> tuple[list[str], list[float], dict]:
    """Labels, the winning class's margin, and the timing, in batches of 32 like the neural models' benchmark."""
    labels, margins, t0 = [], [], time.perf_counter()
    for i in range(0, len(texts), batch_size):
        scores = model.decision_function(list(texts[i : i + batch_size]))
        if scores.ndim == 1:  # two classes: one margin, positive for classes_[1]
            scores = np.stack([-scores, scores], axis=1)
        labels.extend(model.classes_[scores.argmax(1)])
        margins.extend(scores.max(1))
    seconds = time.perf_counter() - t0
    timing = {"batch_size": batch_size, "seconds": round(seconds, 4),
              "examples_per_second": round(len(texts) / seconds, 1) if seconds > 0 else None}  # fmt: skip
    return [str(x) for x in labels], [float(x) for x in margins], timing
