"""The corpus stage on every core (issue 27): MB/s with 1 and N workers, and peak memory as the input grows.

    .venv/bin/python bench/corpus_scale_bench.py --work /tmp/corpus-scale [--copies 10] [--workers 1 2] \
        [--engines local datatrove]

The input: CUAD's train contracts (405 files, 18 MB) and `--copies − 1` edited copies of them, so near-duplicate
removal has work: in each copy a few words per paragraph are changed (seeded), which keeps most of a copy above the
0.8 Jaccard threshold of its original and some below. Each run is `lmtailor corpus` in its own process, with
near-duplicate removal on; peak RSS is that of the process tree (main + workers), sampled every 50 ms. The 1× input
is run too, so the growth of memory with the input is measured, not assumed. Each engine (`--engine local`: the
in-memory path; `datatrove`: every piece of state on disk) runs with each worker count. Appends a JSON line to
`--work/corpus_scale.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "contracts" / "train"
WORD = re.compile(r"\b[a-z]{4,}\b")
# the datatrove engine's log lines: "datatrove step prepare: 2 task(s), 19.5 s", "writing the kept ...: 0.8 s"
STEP = re.compile(r"corpus: (?:datatrove step )?(\w+)[^:\n]*: (?:\d+ task\(s\), )?([\d.]+) s$", re.M)


def _editor(rng: random.Random):
    """A regex replacement that reverses about 3% of the words (seeded): a light edit."""
    return lambda m: m.group()[::-1] if rng.random() < 0.03 else m.group()


def make_input(root: Path, copies: int) -> tuple[Path, float]:
    """CUAD train and `copies − 1` edited copies; (folder, MB)."""
    folder = root / f"cuad-x{copies}"
    if not folder.is_dir():
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for src in sorted(CUAD.glob("*.txt")):
            text = src.read_text(encoding="utf-8", errors="replace")
            (tmp / src.name).write_text(text, encoding="utf-8")
            for c in range(1, copies):
                edit = _editor(random.Random(f"{src.name}:{c}"))
                (tmp / f"{src.stem}.copy{c}.txt").write_text(WORD.sub(edit, text), encoding="utf-8")
        tmp.rename(folder)
    return folder, sum(p.stat().st_size for p in folder.glob("*.txt")) / 1e6


def run_corpus(folder: Path, out: Path, workers: int, engine: str = "local") -> dict:
    cmd = [sys.executable, "-m", "lmtailor.cli", "corpus", str(folder), "--out", str(out), "--overwrite",
           "--workers", str(workers), "--engine", engine, "--no-progress"]  # fmt: skip
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.read().decode()[-2000:])
    stats = json.loads((out / "stats.json").read_text())
    steps = {m.group(1): float(m.group(2)) for m in STEP.finditer(proc.stderr.read().decode())}
    return {"engine": engine, "step_seconds": steps, "workers": workers, "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak / 1e6, 1),
            "documents": stats["documents"], "records": stats["records"]}  # fmt: skip


def record(path: Path, runs: list[dict], **extra) -> None:
    """Append one JSON line (command, machine, date, runs) to `path`, and print it."""
    line = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
            "cpus": psutil.cpu_count(), "date": datetime.now(UTC).isoformat(timespec="seconds"), "runs": runs,
            **extra}  # fmt: skip
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))


def _out_name(copies: int, engine: str, workers: int) -> str:
    return f"out-x{copies}-w{workers}" if engine == "local" else f"out-x{copies}-{engine}-w{workers}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--engines", nargs="+", default=["local"], choices=["local", "datatrove"])
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = []
    for copies in sorted({1, args.copies}):
        folder, mb = make_input(args.work, copies)
        for engine, workers in [(e, w) for e in args.engines for w in args.workers]:
            r = run_corpus(folder, args.work / _out_name(copies, engine, workers), workers, engine)
            r.update(copies=copies, input_mb=round(mb, 1), mb_per_s=round(mb / r["seconds"], 2))
            runs.append(r)
            print(json.dumps(r), flush=True)
    same = {}
    for copies in sorted({1, args.copies}):
        outs = [args.work / _out_name(copies, e, w) for e in args.engines for w in args.workers]
        parts = [{p.relative_to(o).as_posix(): p.read_bytes() for p in sorted(o.rglob("part-*.jsonl"))} for o in outs]
        same[str(copies)] = all(p == parts[0] for p in parts)
    record(args.work / "corpus_scale.jsonl", runs, identical_output_across_workers_and_engines=same)


if __name__ == "__main__":
    main()
