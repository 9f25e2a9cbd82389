"""Would a classifier and the classical baseline do better together? A check on complementary errors (issue 22).

    .venv/bin/python bench/ensemble_check.py --model MODEL_DIR --baseline BASELINE_DIR --dev D --test E --out OUT.json

The model folder is a `finetune cls`/`distill cls` output (or its ONNX export); the baseline folder a `baseline`
output (TF-IDF + linear SVM, `model.joblib`). Both score dev and test. The ensemble is a late fusion of the two
class distributions,

    log p = w · log softmax(model logits) + (1 − w) · log softmax(t · SVM margins),

with the weight w and the SVM's temperature t chosen on dev only (a grid; ties go to the larger w, the neural
model), then scored once on test. It also reports the oracle (right when either is right), which bounds every
ensemble of the two, and who is right where. `lmtailor fuse` ships the pair (the same choice, with the baseline's
weights in int8 by default); this script is the analysis beside it. The baseline here is used as fitted.
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lmtailor.baseline.config import BaselineConfig
from lmtailor.baseline.fusion import baseline_margins, choose_fusion, fuse, load_baseline
from lmtailor.baseline.stage import read_splits
from lmtailor.models.task_folder import load_task_model
from lmtailor.tasks.inference import predict_cls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--baseline", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--test", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    config = BaselineConfig.build(task="cls", train=args.dev, dev=args.dev, test=args.test,
                                  out_dir=args.out.parent / "unused")  # fmt: skip
    _, dev, test = read_splits(config)
    svm = load_baseline(args.baseline)
    model, tok, spec = load_task_model(args.model)
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    result: dict = {"model": str(args.model), "baseline": str(args.baseline)}
    scored = {}
    for split, data in (("dev", dev.examples), ("test", test.examples)):
        texts = [ex.text for ex in data]
        gold = np.array([names.index(ex.label) for ex in data])
        probs, _ = predict_cls(model, tok, spec, texts)
        lp = np.log(np.clip(np.asarray(probs), 1e-12, None))
        margins = baseline_margins(svm, texts, names, str(args.baseline))  # in the model's label order
        scored[split] = (lp, margins, gold)
        model_right, base_right = lp.argmax(1) == gold, margins.argmax(1) == gold
        result[split] = {"examples": len(gold), "model": float(model_right.mean()),
                         "baseline": float(base_right.mean()), "oracle": float((model_right | base_right).mean()),
                         "both_right": int((model_right & base_right).sum()),
                         "model_only": int((model_right & ~base_right).sum()),
                         "baseline_only": int((~model_right & base_right).sum())}  # fmt: skip
    lp, margins, gold = scored["dev"]
    chosen = choose_fusion(lp, margins, [names[i] for i in gold], names)
    w, t = chosen["weight"], chosen["temperature"]
    result["chosen_on_dev"] = {"weight": w, "temperature": t, "dev": chosen["dev_fused"]}
    lp, margins, gold = scored["test"]
    result["test"]["ensemble"] = float((fuse(lp, margins, w, t).argmax(1) == gold).mean())
    result["environment"] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
                             "processor": platform.processor(), "python": platform.python_version()}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
