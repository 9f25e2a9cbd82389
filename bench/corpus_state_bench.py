"""De-duplication state as the corpus grows: the in-memory path against `--engine datatrove` (issue 27).

    .venv/bin/python bench/corpus_state_bench.py --work /tmp/corpus-state [--records 500000 4000000]

The worst case for the in-memory path is many small documents: every document goes into the LSH index (one entry
per band) and every record into the exact-duplicate set. The input is `.jsonl` files of one-sentence documents,
each unique (seeded words, ~70 characters), 100,000 per file. Each size runs `lmtailor corpus` with 1 worker on
each engine, in its own process; peak RSS is that of the process tree, sampled every 50 ms. Appends a JSON line to
`--work/corpus_state.jsonl`. Timings are reported too but are not the point here.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus_scale_bench import record, run_corpus

WORDS = ["party", "notice", "term", "fee", "claim", "goods", "price", "delivery", "court", "law", "breach", "remedy",
         "licence", "payment", "invoice", "tax", "damage", "warranty", "seller", "buyer", "lease", "rent", "loan",
         "bank", "patent", "trade"]  # fmt: skip
PER_FILE = 100_000


def make_input(root: Path, records: int) -> tuple[Path, float]:
    folder = root / f"docs-{records}"
    if not folder.is_dir():
        tmp = folder.with_name(folder.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        rng = random.Random(0)
        for start in range(0, records, PER_FILE):
            with open(tmp / f"part-{start // PER_FILE:04d}.jsonl", "w", encoding="utf-8") as fh:
                for i in range(start, min(records, start + PER_FILE)):
                    words = " ".join(rng.choice(WORDS) for _ in range(8))
                    fh.write(json.dumps({"text": f"Clause {i}: the {words}."}) + "\n")
        tmp.rename(folder)
    return folder, sum(p.stat().st_size for p in folder.glob("*.jsonl")) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--records", type=int, nargs="+", default=[500_000, 4_000_000])
    ap.add_argument("--engines", nargs="+", default=["local", "datatrove"], choices=["local", "datatrove"])
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    runs = []
    for records in args.records:
        folder, mb = make_input(args.work, records)
        for engine in args.engines:
            out = args.work / f"out-{records}-{engine}"
            r = run_corpus(folder, out, 1, engine)
            r.update(records_in=records, input_mb=round(mb, 1))
            shutil.rmtree(out, ignore_errors=True)
            runs.append(r)
            print(json.dumps(r), flush=True)
    record(args.work / "corpus_state.jsonl", runs)


if __name__ == "__main__":
    main()
