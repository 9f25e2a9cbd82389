"""How the classical baseline's score grows with training data: a check on a plan's bar (issue 22, CAIL2018).

    .venv/bin/python bench/baseline_learning_curve.py --train T --dev D --test E [--fractions .125 .25 .5 .75 1]
        [--seeds 3] [--features chars --c 0.3 --class-weights balanced] --out OUT.json

For each fraction of the training file, `--seeds` stratified samples (every label keeps at least one example) are
fitted with the baseline's own code (`lmtailor.baseline.classify`) at one fixed setting — by default the one the
baseline stage chose on CAIL2018's dev — and scored on dev and test. Nothing is chosen here: the curve says how
much a doubling of the labelled data is worth to this model, so a bar can be read against the data a user has.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from lmtailor.baseline.classify import fit_classifier, predict_texts
from lmtailor.baseline.config import BaselineConfig
from lmtailor.baseline.stage import read_splits
from lmtailor.tasks.metrics import classification_metrics
from lmtailor.tasks.target import parse_metric


def stratified(examples: list, fraction: float, seed: int) -> list:
    by_label: dict[str, list] = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    rng = random.Random(seed)
    out = []
    for label in sorted(by_label):
        group = by_label[label]
        out += rng.sample(group, max(1, round(fraction * len(group))))
    return sorted(out, key=lambda ex: ex.id)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--fractions", type=float, nargs="+", default=[0.125, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--features", default="chars", choices=["chars", "words"])
    ap.add_argument("--c", type=float, default=0.3)
    ap.add_argument("--class-weights", default="balanced", choices=["balanced", "none"])
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    config = BaselineConfig.build(task="cls", train=args.train, dev=args.dev, test=args.test, features=args.features,
                                  c_grid=[args.c], class_weights=args.class_weights,
                                  out_dir=args.out.parent / "unused")  # fmt: skip
    train, dev, test = read_splits(config)
    target = parse_metric("accuracy", "cls")
    rows = []
    for fraction in args.fractions:
        scores: dict[str, list[float]] = {"dev": [], "test": []}
        seeds = 1 if fraction >= 1 else args.seeds
        for seed in range(seeds):
            sample = stratified(train.examples, fraction, seed)
            subset = type(train)(**{**vars(train), "examples": sample})
            model, _ = fit_classifier(config, subset, None, target)
            for name, data in (("dev", dev), ("test", test)):
                pred, _, _ = predict_texts(model, [ex.text for ex in data.examples])
                report = classification_metrics([ex.label for ex in data.examples], pred, train.labels)
                scores[name].append(report["accuracy"])
        row = {"fraction": fraction, "examples": len(sample), "seeds": seeds,
               **{f"{k}_accuracy": round(statistics.mean(v), 4) for k, v in scores.items()},
               **{f"{k}_sd": round(statistics.pstdev(v), 4) for k, v in scores.items()}}  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
              "date": datetime.now(UTC).isoformat(timespec="seconds"), "rows": rows}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
