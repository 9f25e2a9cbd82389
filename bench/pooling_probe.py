"""Which of an encoder's own representations carries a classification task: its first token, or the mean? (issue 22)

    .venv/bin/python bench/pooling_probe.py --model MODEL_DIR --train T --dev D [--max-length 256] --out OUT.json

`finetune cls` builds an HF `*ForSequenceClassification`, which reads the first token's final hidden state (through
BERT's pooler). multilingual-e5 was trained to be read by the mean over all tokens, and its container has no
pooler (the import draws a new one). A linear probe says, before any fine-tuning, how much of a task each reading
holds: the frozen encoder embeds train and dev (head + tail, as `finetune --long-text head_tail`), a logistic
regression (scikit-learn, C chosen on dev from a small grid) is fitted on the train vectors of each reading, and
dev accuracy is reported. Test is not read.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from transformers import AutoModel, AutoTokenizer

from lmtailor.baseline.config import BaselineConfig
from lmtailor.baseline.stage import read_splits
from lmtailor.tasks.align import encode_cls

GRID = [0.01, 0.1, 1.0, 10.0]


@torch.no_grad()
def embed(model, features: list[dict], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(first-token states, mean-pooled states), [n, H] each, in the order of `features`."""
    order = sorted(range(len(features)), key=lambda i: len(features[i]["input_ids"]))
    first, mean = [None] * len(features), [None] * len(features)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        width = max(len(features[i]["input_ids"]) for i in idx)
        ids = torch.zeros(len(idx), width, dtype=torch.long)
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for r, i in enumerate(idx):
            n = len(features[i]["input_ids"])
            ids[r, :n], mask[r, :n] = torch.tensor(features[i]["input_ids"]), 1
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        for r, i in enumerate(idx):
            first[i], mean[i] = hidden[r, 0].numpy(), pooled[r].numpy()
    return np.stack(first), np.stack(mean)


def probe(train_x, train_y, dev_x, dev_y) -> dict:
    scaler = StandardScaler().fit(train_x)
    tx, dx = scaler.transform(train_x), scaler.transform(dev_x)
    scores = {}
    for c in GRID:
        clf = LogisticRegression(C=c, max_iter=2000).fit(tx, train_y)
        scores[c] = float((clf.predict(dx) == dev_y).mean())
    best = max(scores, key=scores.get)
    return {"dev_accuracy": scores[best], "c": best, "by_c": scores}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    config = BaselineConfig.build(task="cls", train=args.train, dev=args.dev, out_dir=args.out.parent / "unused")
    train, dev, _ = read_splits(config)
    tok = AutoTokenizer.from_pretrained(str(args.model))
    model = AutoModel.from_pretrained(str(args.model)).eval()
    labels = sorted({ex.label for ex in train.examples})
    vectors, gold, t0 = {}, {}, time.perf_counter()
    for split, data in (("train", train.examples), ("dev", dev.examples)):
        enc = encode_cls(tok, [ex.text for ex in data], None, args.max_length, "head_tail", 0)
        vectors[split] = embed(model, enc.features)
        gold[split] = np.array([labels.index(ex.label) if ex.label in labels else -1 for ex in data])
    seconds = time.perf_counter() - t0
    result = {"model": str(args.model), "max_length": args.max_length, "train": len(gold["train"]),
              "dev": len(gold["dev"]), "embed_seconds": round(seconds, 1)}  # fmt: skip
    for k, name in enumerate(("first_token", "mean")):
        result[name] = probe(vectors["train"][k], gold["train"], vectors["dev"][k], gold["dev"])
    result["environment"] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": platform.machine(),
                             "python": platform.python_version(), "torch_threads": torch.get_num_threads()}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
