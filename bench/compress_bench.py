"""Compression benchmark (issue 5): from a fine-tuned MiniLM teacher to a small int8 ONNX student, built only with
lmtailor stages, then one `lmtailor bench` run of every step side by side and the task metric of every step.

    .venv/bin/python bench/compress_bench.py --task cuad --teacher /tmp/finetune-bench/cuad
    .venv/bin/python bench/compress_bench.py --task ncbi --teacher /tmp/finetune-bench/ncbi

Steps: vocab trim (domain text) → prune (CUAD: keep 4 of 6 layers, FFN 1536 → 384, the student of record; NCBI: 3
layers, FFN 768 as measured; Taylor importance on the train split; `--set layers=3 --set ffn=768` for the first one)
→ distill (teacher logits cached) → export (ONNX, parity-checked) → int8 (embeddings too) and int4 variants; the
teacher is also exported and quantised so the student is compared with the teacher's own fastest runtime.
Writes bench/results/compress_<task>.json (settings, per-step metrics, seconds, the bench table); the work folders
stay in --work. Run one at a time: it uses both cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from lmtailor.compress.prune import PruneConfig, run_prune
from lmtailor.compress.quantize import QuantizeConfig, run_quantize
from lmtailor.export.bench import BenchConfig, run_bench
from lmtailor.export.onnx import ExportConfig, run_export
from lmtailor.tasks.evaluate import EvaluateConfig, run_evaluate
from lmtailor.train.distill import DistillConfig, run_distill
from lmtailor.vocab import TrimConfig, run_trim

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
log = logging.getLogger("bench")

CUAD, NCBI = DATA / "en-legal/cuad", DATA / "en-bio/ncbi-disease"
TASKS = {
    "cuad": dict(task="cls", domain=CUAD / "contracts/train", train=CUAD / "clauses/train.jsonl",
                 dev=CUAD / "clauses/dev.jsonl", test=CUAD / "clauses/test.jsonl", metric="accuracy",
                 trim_size=10435, layers=4, ffn=384,
                 distill=dict(epochs=6, lr=2e-4, batch_size=16, max_length=256, alpha=0.3, temperature=2.0)),
    "ncbi": dict(task="ner", domain=DATA / "en-bio/pubmed-corpus", train=NCBI / "train.tsv", dev=NCBI / "devel.tsv",
                 test=NCBI / "test.tsv", metric="f1", trim_size=10435, layers=3, ffn=768,
                 distill=dict(epochs=6, lr=2e-4, batch_size=16, max_length=128, alpha=0.3, temperature=2.0)),
}  # fmt: skip


def _metric(folder: Path, name: str, key: str) -> float:
    return json.loads((folder / f"eval_{name}.json").read_text())[key]


def _step(steps: dict, name: str, fn, cfg) -> Path:
    t0 = time.perf_counter()
    out = fn(cfg)
    steps[name] = {"folder": str(out), "seconds": round(time.perf_counter() - t0, 1)}
    log.info("%s done in %.0fs", name, steps[name]["seconds"])
    return out


def run(task: str, teacher: Path, work: Path, overrides: dict, skip_bench: bool, core_bench: bool = False) -> dict:
    s = {**TASKS[task], **overrides}
    common = dict(overwrite=True, show_progress=False)
    steps: dict = {}
    trimmed = _step(steps, "trim", run_trim, TrimConfig.build(model=str(teacher), inputs=[s["domain"]],
                    size=int(s["trim_size"]), out_dir=work / "1-trimmed", **common))  # fmt: skip
    pruned = _step(steps, "prune", run_prune, PruneConfig.build(
        model=trimmed, data=s["train"], layers=int(s["layers"]), ffn_size=int(s["ffn"]), iterations=2,
        out_dir=work / "2-pruned", **common))  # fmt: skip
    student = _step(steps, "distill", run_distill, DistillConfig.build(
        task=s["task"], teacher=teacher, model=str(pruned), train=s["train"], dev=s["dev"], test=s["test"],
        out_dir=work / "3-distilled", **s["distill"], **common))  # fmt: skip
    onnx = _step(steps, "export", run_export, ExportConfig.build(model=student, out_dir=work / "4-onnx", **common))
    q = {}
    for method in ("int8", "int4"):
        q[method] = _step(steps, method, run_quantize, QuantizeConfig.build(
            model=onnx, method=method, eval=s["test"], out_dir=work / f"5-{method}", **common))  # fmt: skip
    t_onnx = _step(steps, "teacher export", run_export, ExportConfig.build(model=teacher, out_dir=work / "t-onnx",
                                                                           **common))  # fmt: skip
    t_int8 = _step(steps, "teacher int8", run_quantize, QuantizeConfig.build(
        model=t_onnx, method="int8", eval=s["test"], out_dir=work / "t-int8", **common))  # fmt: skip
    for name, folder in (("trim", trimmed), ("prune", pruned)):  # accuracy of the intermediate steps
        ev = run_evaluate(EvaluateConfig.build(model=folder, data=s["test"], out_dir=work / f"eval-{name}", **common))
        steps[name]["test_" + s["metric"]] = _metric(ev, "test", s["metric"])
    steps["teacher"] = {"test_" + s["metric"]: _metric(teacher, "test", s["metric"])}
    steps["distill"]["test_" + s["metric"]] = _metric(student, "test", s["metric"])
    for name in ("int8", "int4", "teacher int8"):
        folder = q.get(name) or t_int8
        steps[name]["quantize_report"] = json.loads((folder / "lmtailor.json").read_text())["metrics"]
    result = {"task": task, "settings": {k: str(v) for k, v in s.items()}, "steps": steps}
    if not skip_bench:
        entries = [str(teacher), f"{teacher}@bf16", f"{teacher}@torch-int8", str(t_onnx), str(t_int8), str(trimmed),
                   str(pruned), str(student), str(onnx), str(q["int8"]), str(q["int4"])]  # fmt: skip
        if core_bench:  # the teacher, its fastest runtime here (int8 ONNX) and the student
            entries = [str(teacher), str(t_int8), str(q["int8"])]
        bench = _step(steps, "bench", run_bench, BenchConfig.build(models=entries, out_dir=work / "bench", **common))
        result["bench"] = json.loads((bench / "bench.json").read_text())
        result["bench_table"] = (bench / "bench.md").read_text()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", choices=list(TASKS), required=True)
    ap.add_argument("--teacher", type=Path, required=True, help="fine-tuned teacher folder (bench/finetune_bench.py)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/compress-bench"))
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--set", action="append", default=[], help="override: key=value (e.g. ffn=1024)")
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--core-bench", action="store_true", help="bench only teacher, teacher int8 and student int8")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides = dict(kv.split("=", 1) for kv in args.set)
    t0 = time.perf_counter()
    result = run(args.task, args.teacher, args.work / args.task, overrides, args.skip_bench, args.core_bench)
    result.update(command=f"python bench/compress_bench.py --task {args.task} --teacher {args.teacher} "
                  + " ".join(f"--set {s}" for s in args.set), machine=platform.processor() or platform.machine(),
                  date=datetime.now(UTC).isoformat(timespec="seconds"),
                  wall_seconds=round(time.perf_counter() - t0, 1))  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"compress_{args.task}.json").write_text(json.dumps(result, indent=2, default=str))
    print(result.get("bench_table", ""))
    print(json.dumps(result["steps"], indent=1, default=str)[:6000])


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no bar per model load and save in the logs, as in the CLI
    main()
