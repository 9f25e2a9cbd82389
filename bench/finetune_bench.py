"""Fine-tuning benchmark (issue 4): MiniLM on the real task splits in ../shared/data, tuned on dev, scored on test.

    .venv/bin/python bench/finetune_bench.py --task cuad [--task ncbi --task abstracts] [--out bench/results]
    .venv/bin/python bench/finetune_bench.py --task precision      # fp32 vs bf16 speed on this CPU

Each task writes bench/results/finetune_<task>.json with the command, machine, date, the settings, the dev and test
metrics and the wall time. The settings per task are the ones chosen on dev (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from lmtailor.tokenizer.hf import default_reference
from lmtailor.train.finetune import FinetuneConfig, run_finetune

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
log = logging.getLogger("bench")

CUAD, BIO = DATA / "en-legal/cuad/clauses", DATA / "en-bio"
TASKS = {
    "cuad": dict(task="cls", train=CUAD / "train.jsonl", dev=CUAD / "dev.jsonl", test=CUAD / "test.jsonl",
                 max_length=256, epochs=3.5, lr=2e-4, batch_size=16, label_smoothing=0.1),
    "abstracts": dict(task="cls", train=BIO / "medical-abstracts/train.jsonl", dev=BIO / "medical-abstracts/dev.jsonl",
                      test=BIO / "medical-abstracts/test.jsonl", max_length=256, epochs=2, lr=1e-4, batch_size=16),
    "ncbi": dict(task="ner", train=BIO / "ncbi-disease/train.tsv", dev=BIO / "ncbi-disease/devel.tsv",
                 test=BIO / "ncbi-disease/test.tsv", max_length=128, epochs=5, lr=1e-4, batch_size=16),
}  # fmt: skip


def run_task(name: str, work: Path, **overrides) -> dict:
    settings = {**TASKS[name], **overrides}
    cfg = FinetuneConfig.build(model=str(default_reference()), out_dir=work / name, overwrite=True,
                               show_progress=False, **settings)  # fmt: skip
    t0 = time.perf_counter()
    out = run_finetune(cfg)
    report = json.loads((out / "finetune_report.json").read_text())
    test = json.loads((out / "eval_test.json").read_text()) if cfg.test else None
    return {"settings": {k: str(v) for k, v in settings.items()}, "wall_seconds": round(time.perf_counter() - t0, 1),
            "report": report, "test": test, "model_dir": str(out)}  # fmt: skip


def precision(work: Path, steps: int = 4, batch: int = 16) -> dict:
    """fp32 vs bf16 autocast on this CPU: seconds per training step and per inference batch of MiniLM on real CUAD
    clauses (the same batches for both), and how far bf16 moves the loss and the logits."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lmtailor.tasks import read_cls

    texts = [ex.text for ex in read_cls(TASKS["cuad"]["train"]).examples[: steps * batch]]
    tok = AutoTokenizer.from_pretrained(str(default_reference()))
    batches = [tok(texts[i : i + batch], truncation=True, max_length=256, padding=True, return_tensors="pt")
               for i in range(0, len(texts), batch)]  # fmt: skip
    labels = torch.arange(batch) % 18
    out: dict = {"batch": batch, "steps": steps, "native_bf16": __import__("lmtailor.train.precision",
                 fromlist=["x"]).cpu_has_native_bf16()}  # fmt: skip
    logits = {}
    for p in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(str(default_reference()), num_labels=18)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
        losses, t0 = [], time.perf_counter()
        for b in batches:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=p == "bf16"):
                loss = model(**b, labels=labels[: len(b["input_ids"])]).loss
            loss.backward()
            opt.step()
            opt.zero_grad()
            losses.append(round(loss.item(), 4))
        train_s = (time.perf_counter() - t0) / len(batches)
        model.eval()
        t0 = time.perf_counter()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=p == "bf16"):
            logits[p] = torch.cat([model(**b).logits.float() for b in batches])
        infer_s = (time.perf_counter() - t0) / len(batches)
        out[p] = {"train_seconds_per_step": round(train_s, 3), "inference_seconds_per_batch": round(infer_s, 3),
                  "losses": losses}  # fmt: skip
    out["bf16_train_speedup"] = round(out["fp32"]["train_seconds_per_step"] / out["bf16"]["train_seconds_per_step"], 3)
    out["bf16_inference_speedup"] = round(
        out["fp32"]["inference_seconds_per_batch"] / out["bf16"]["inference_seconds_per_batch"], 3
    )
    return out


def tfidf() -> dict:
    """The plain reference of ../shared/data/README.md, measured here: TF-IDF (word 1-2 grams) + logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from lmtailor.tasks import read_cls
    from lmtailor.tasks.metrics import classification_metrics

    out = {}
    for name in ("cuad", "abstracts"):
        train, test = read_cls(TASKS[name]["train"]), read_cls(TASKS[name]["test"])
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
        clf = LogisticRegression(max_iter=2000, C=10.0)
        clf.fit(vec.fit_transform([ex.text for ex in train.examples]), [ex.label for ex in train.examples])
        pred = clf.predict(vec.transform([ex.text for ex in test.examples]))
        m = classification_metrics([ex.label for ex in test.examples], list(pred), train.labels)
        out[name] = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=[*TASKS, "precision", "tfidf"], action="append", required=True)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--work", type=Path, default=Path("/tmp/finetune-bench"))
    ap.add_argument("--set", action="append", default=[], help="override a setting: key=value (e.g. lr=5e-5)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    overrides = {k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
                 for k, v in (s.split("=", 1) for s in args.set)}  # fmt: skip
    for name in args.task:
        if name in ("precision", "tfidf"):
            result = precision(args.work) if name == "precision" else tfidf()
        else:
            result = run_task(name, args.work, **overrides)
        command = f"python bench/finetune_bench.py --task {name} " + " ".join(f"--set {s}" for s in args.set)
        result.update({"date": datetime.now(UTC).isoformat(timespec="seconds"), "cpus": os.cpu_count(),
                       "machine": platform.processor() or platform.machine(), "command": command.strip()})  # fmt: skip
        (args.out / f"finetune_{name}.json").write_text(json.dumps(result, indent=2))
        log.info("%s: %s", name, json.dumps(result)[:3000])


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no bar per model load and save in the logs, as in the CLI
    main()
