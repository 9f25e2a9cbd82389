"""Peak memory and speed of the corpus stage: CUAD contracts (27 MB) and a ~1.3 GB synthetic corpus.

The synthetic corpus is written into a temporary folder: `--copies` files, each the concatenation of all CUAD
contracts with a per-copy token appended to every paragraph (so copies are near- but not exact duplicates),
plus one file of about `--big-mb` MB without a single blank line (one paragraph of the whole file, which the
stage must flush in pieces). Each case runs in a fresh child process that reports its own peak RSS
(`getrusage(RUSAGE_SELF).ru_maxrss`), so cases do not see each other's memory.

    .venv/bin/python bench/corpus_memory.py --out bench/results/corpus_memory.json [--cases cuad,synthetic]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CUAD = REPO.parent / "shared" / "data" / "en-legal" / "cuad" / "contracts"


def _child(inputs: list[str], out_dir: str) -> None:
    """Run the stage in this (child) process and print one JSON line with its numbers."""
    from lmtailor.corpus import CorpusConfig, run

    t0 = time.perf_counter()
    out = run(CorpusConfig.build(inputs=inputs, out_dir=out_dir, show_progress=False, overwrite=True))
    seconds = time.perf_counter() - t0
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    result = {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kb / 1024, 1), "stats": stats}
    sys.stdout.write(json.dumps(result) + "\n")


def measure(name: str, inputs: list[Path], work: Path) -> dict[str, Any]:
    """Run one case in a child process; returns input size, records, seconds and peak RSS."""
    files = [f for p in inputs for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()]
    cmd = [sys.executable, __file__, "--child", json.dumps([str(p) for p in inputs]), str(work / f"out-{name}")]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    stats = child["stats"]
    return {
        "case": name,
        "input_bytes": sum(f.stat().st_size for f in files),
        "files": len(files),
        "documents_read": stats["documents"]["read"],
        "documents_kept": stats["documents"]["kept"],
        "near_dup_documents": stats["duplicates_removed"]["near_dup_documents"],
        "records": stats["records"]["total"],
        "seconds": child["seconds"],
        "wall_seconds_incl_startup": round(wall, 1),
        "peak_rss_mb": child["peak_rss_mb"],
    }


def _contracts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(CUAD.rglob("*.txt"))]


def make_synthetic(folder: Path, copies: int, big_mb: int) -> None:
    """Write the synthetic corpus: `copies` varied concatenations of CUAD, and one big file without blank lines."""
    folder.mkdir(parents=True, exist_ok=True)
    contracts = _contracts()
    blank = re.compile(r"\n\s*\n")
    spaces = re.compile(r"[ \t]{2,}")
    for k in range(copies):
        with open(folder / f"copy-{k:03d}.txt", "w", encoding="utf-8") as fh:
            for text in contracts:
                # A per-copy token at the end of every paragraph: no record is an exact duplicate across copies.
                fh.write(blank.sub(f" v{k}\n\n", text) + f" v{k}\n\n")
    written, k = 0, 0
    with open(folder / "big-no-blank-lines.txt", "w", encoding="utf-8") as fh:
        while written < big_mb << 20:
            for text in contracts:
                # Space runs squeezed too: no PDF layout break may split this file into paragraphs either.
                piece = spaces.sub(" ", blank.sub(f" w{k}\n", text)).rstrip() + f" w{k}\n"
                fh.write(piece)
                written += len(piece.encode("utf-8"))
            k += 1


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'case':<12}{'input MB':>10}{'files':>7}{'records':>10}{'seconds':>9}{'peak RSS MB':>13}"
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['case']:<12}{r['input_bytes'] / 2**20:>10.1f}{r['files']:>7}{r['records']:>10}"
            f"{r['seconds']:>9.1f}{r['peak_rss_mb']:>13.1f}"
        )
    sys.stdout.write("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=False, help="JSON file to write the results to")
    parser.add_argument("--cases", default="cuad,synthetic", help="comma-separated: cuad, synthetic")
    parser.add_argument("--copies", type=int, default=40, help="synthetic: concatenated copies of CUAD")
    parser.add_argument("--big-mb", type=int, default=250, help="synthetic: size of the file without blank lines")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--child", nargs=2, metavar=("INPUTS_JSON", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child[0]), args.child[1])
        return
    if args.out is None:
        parser.error("--out is required")
    if not CUAD.is_dir():
        sys.exit(f"{CUAD} is absent: this benchmark needs ../shared/data")
    work = args.work or Path(tempfile.mkdtemp(prefix="corpus-bench-"))
    rows: list[dict[str, Any]] = []
    try:
        if "cuad" in args.cases:
            rows.append(measure("cuad", [CUAD], work))
        if "synthetic" in args.cases:
            t0 = time.perf_counter()
            make_synthetic(work / "synthetic", args.copies, args.big_mb)
            row = measure("synthetic", [work / "synthetic"], work)
            row["generation_seconds"] = round(time.perf_counter() - t0 - row["wall_seconds_incl_startup"], 1)
            rows.append(row)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    result = {
        "benchmark": "corpus_memory",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "cases": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
