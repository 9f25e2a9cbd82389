"""A user's own data (issue 23): an imbalanced task built from the shared data, and what the tool does with it.

    .venv/bin/python bench/own_data_bench.py task --out /tmp/own/task        # build the task (seconds)
    .venv/bin/python bench/own_data_bench.py run --task /tmp/own/task --work /tmp/own --arm baseline|fixed|search

The task: CUAD clauses, one clause type against the rest — "is this an exclusivity clause?" — the kind of rare class
a legal team screens contracts for (198 of the 4,813 training clauses, 4.1%, 23× rarer than the rest; 27 of 623 on
dev, 36 of 624 on test: each test clause of the class is 2.8 points of its F1). The splits
are CUAD's own (by contract), so no test clause's contract is seen in training. Nothing is written into the
repository; the task lives where `--out` says.

The arms, all judged by the F1 of the rare class (`metric: f1:exclusivity`):
- `baseline`: `lmtailor baseline` (TF-IDF + linear SVM, features, C and class weighting chosen on dev);
- `fixed`: MiniLM fine-tuned with the settings of `recipes/legal-en.yaml` (lr 2e-4, label smoothing 0.1, no class
  weights), 2 epochs at 128 tokens;
- `search`: the same, with `search_trials` 4 over lr 5e-5–5e-4 (log), class weights on/off, label smoothing 0–0.1.
Each arm writes its stage's output folder under `--work` and a line of JSON to `--work/own_data.jsonl` with the
command, machine, date, dev and test scores and minutes.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "clauses"
POSITIVE = "Exclusivity"
LABEL = "exclusivity"
COMMON = dict(task="cls", epochs=2, batch_size=16, max_length=128, patience=0, metric=f"f1:{LABEL}",
              show_progress=False)  # fmt: skip


def build_task(out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "dev", "test"):
        rows = [json.loads(x) for x in (CUAD / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()]
        lines = [json.dumps({"text": r["text"], "label": LABEL if r["label"] == POSITIVE else "other"}) for r in rows]
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts[split] = {"clauses": len(rows), LABEL: sum(r["label"] == POSITIVE for r in rows)}
    return counts


def run_arm(arm: str, task: Path, work: Path) -> dict:
    from lmtailor.stages import run_stage

    splits = {s: task / f"{s}.jsonl" for s in ("train", "dev", "test")}
    out = work / arm
    t0 = time.perf_counter()
    if arm == "baseline":
        from lmtailor.baseline.config import BaselineConfig

        cfg = BaselineConfig.build(task="cls", **splits, metric=f"f1:{LABEL}", out_dir=out, overwrite=True,
                                   show_progress=False)  # fmt: skip
        run_stage("baseline", cfg)
    else:
        from lmtailor.tokenizer.hf import default_reference
        from lmtailor.train.config import FinetuneConfig

        extra = {"lr": 2e-4, "label_smoothing": 0.1}
        if arm == "search":
            extra.update(search_trials=4, search_space={"lr": [5e-5, 5e-4], "class_weights": [False, True],
                                                        "label_smoothing": [0.0, 0.1]})  # fmt: skip
        cfg = FinetuneConfig.build(model=str(default_reference()), **splits, **COMMON, **extra, out_dir=out,
                                   overwrite=True)  # fmt: skip
        run_stage("finetune", cfg)
    minutes = (time.perf_counter() - t0) / 60
    ev = {s: json.loads((out / f"eval_{s}.json").read_text()) for s in ("dev", "test")}
    return {"arm": arm, "minutes": round(minutes, 2),
            **{f"{s}_{k}": ev[s][k] for s in ev for k in ("metric_value", "accuracy", "macro_f1")}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("task")
    t.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("run")
    r.add_argument("--task", type=Path, required=True)
    r.add_argument("--work", type=Path, required=True)
    r.add_argument("--arm", choices=["baseline", "fixed", "search"], required=True)
    args = ap.parse_args()
    if args.cmd == "task":
        print(json.dumps(build_task(args.out)))
        return
    result = run_arm(args.arm, args.task, args.work)
    result.update(command=f"bench/own_data_bench.py run --arm {args.arm}", machine=platform.processor() or
                  platform.machine(), date=datetime.now(UTC).isoformat(timespec="minutes"))  # fmt: skip
    with open(args.work / "own_data.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
