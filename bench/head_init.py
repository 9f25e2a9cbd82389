"""Fit a classification head on a frozen encoder before fine-tuning it: the "LP" of LP-FT (issue 22, CAIL2018).

    .venv/bin/python bench/head_init.py --model ENCODER_DIR --train T --dev D [--max-length 256] --out DIR
    lmtailor finetune cls T --model DIR --dev D --test E --lr 5e-5 ...      # the "FT": every weight, a low rate

`finetune cls` starts an encoder with a new random pooler and classifier, and on CAIL2018 the trimmed e5 took
epochs to reach what a linear probe of its frozen features reads at once (docs/benchmarks.md). This writes the
encoder as an HF `*ForSequenceClassification` folder whose pooler and classifier were trained first, on the
frozen encoder's first-token states (the state that head reads; computed once, head + tail as `finetune
--long-text head_tail`), with the epoch kept by dev accuracy. Labels are the training file's in sorted order, as
`finetune` numbers them, so `finetune` loads the head as it is instead of drawing a new one.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from pooling_probe import embed  # bench/ is on the path when this script runs
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from lmtailor.baseline.config import BaselineConfig
from lmtailor.baseline.stage import read_splits
from lmtailor.tasks.align import encode_cls


def head_logits(model, states: torch.Tensor) -> torch.Tensor:
    pooled = model.base_model.pooler.activation(model.base_model.pooler.dense(states))
    return model.classifier(model.dropout(pooled))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--train", type=Path, required=True)
    ap.add_argument("--dev", type=Path, required=True)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    config = BaselineConfig.build(task="cls", train=args.train, dev=args.dev, out_dir=args.out.parent / "unused")
    train, dev, _ = read_splits(config)
    labels = list(train.labels)
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        str(args.model), num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={n: i for i, n in enumerate(labels)},
    ).eval()  # fmt: skip
    if getattr(model.base_model, "pooler", None) is None or not hasattr(model, "classifier"):
        raise SystemExit(f"{args.model}: this script knows BERT's head (pooler + classifier) only")
    tok = AutoTokenizer.from_pretrained(str(args.model))
    t0, states, gold = time.perf_counter(), {}, {}
    for split, data in (("train", train.examples), ("dev", dev.examples)):
        enc = encode_cls(tok, [ex.text for ex in data], None, args.max_length, "head_tail", 0)
        states[split] = torch.from_numpy(embed(model.base_model, enc.features)[0])  # first-token states
        gold[split] = torch.tensor([labels.index(ex.label) for ex in data])
    embed_seconds = time.perf_counter() - t0
    head = [*model.base_model.pooler.parameters(), *model.classifier.parameters()]
    optimizer = torch.optim.AdamW(head, lr=args.lr, weight_decay=0.01)
    generator = torch.Generator().manual_seed(args.seed)
    best, best_state, curve = -1.0, None, []
    for _epoch in range(args.epochs):
        model.train()
        for batch in torch.randperm(len(gold["train"]), generator=generator).split(64):
            loss = torch.nn.functional.cross_entropy(head_logits(model, states["train"][batch]), gold["train"][batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad():
            accuracy = float((head_logits(model, states["dev"]).argmax(1) == gold["dev"]).float().mean())
        curve.append(round(accuracy, 4))
        if accuracy > best:
            best = accuracy
            best_state = {k: v.clone() for k, v in model.state_dict().items() if "pooler" in k or "classifier" in k}
    model.load_state_dict(best_state, strict=False)
    tmp = args.out.with_name(args.out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    report = {"model": str(args.model), "labels": len(labels), "train": len(gold["train"]), "dev": len(gold["dev"]),
              "embed_seconds": round(embed_seconds, 1), "head_lr": args.lr, "epochs": args.epochs,
              "best_dev_accuracy": round(best, 4), "best_epoch": int(np.argmax(curve)) + 1,
              "dev_by_epoch": curve}  # fmt: skip
    (tmp / "head_init.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    shutil.rmtree(args.out, ignore_errors=True)
    tmp.rename(args.out)
    print(json.dumps({k: v for k, v in report.items() if k != "dev_by_epoch"}, indent=2))


if __name__ == "__main__":
    main()
