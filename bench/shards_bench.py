"""Pretraining's data stream from token shards against tokenising on the fly (issue 27): tokens/s through a
DataLoader, what a GPU would be fed.

    .venv/bin/python bench/shards_bench.py --corpus ../shared/data/en-legal/cuad/contracts/train \
        --tokenizer <MiniLM folder> --work /tmp/shards-bench [--workers 0 2] [--batches 200]

Both arms mask with whole-term units (the default) and give the Trainer the same tensors: the on-the-fly arm is
`make_stream` (tokenise + pack + shuffle buffer + mask in the DataLoader's worker), the shard arm `ShardIndexStream`
+ `ShardCollator` over the folder `lmtailor tokenize` wrote (timed too: it is paid once). The same number of batches
of the same size is drawn from each, after one warm-up batch; each arm runs in turn in this process, so a ratio
is measured under the same load. Appends one JSON line to `--work/shards.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from torch.utils.data import DataLoader
from transformers import AutoTokenizer, default_data_collator


def _rate(loader: DataLoader, batches: int, seq_len: int, batch: int) -> float:
    it = iter(loader)
    next(it)  # warm-up: workers started, files mapped
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * batch * seq_len / (time.perf_counter() - t0)


def main() -> None:
    from lmtailor.shards.config import TokenizeConfig
    from lmtailor.shards.read import ShardIndexStream
    from lmtailor.shards.write import run_tokenize
    from lmtailor.train.config import PretrainConfig
    from lmtailor.train.pretrain import make_stream

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--tokenize-workers", type=int, default=2)
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=128)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.work / "shards"
    t0 = time.perf_counter()
    run_tokenize(TokenizeConfig(corpus=[args.corpus], tokenizer=args.tokenizer, out_dir=folder, overwrite=True,
                                workers=args.tokenize_workers, show_progress=False))  # fmt: skip
    tokenize_s = time.perf_counter() - t0
    meta = json.loads((folder / "shards.json").read_text())
    tok = AutoTokenizer.from_pretrained(str(args.tokenizer))
    common = dict(tokenizer=str(args.tokenizer), out_dir=args.work / "unused", seq_len=args.seq_len,
                  batch_size=args.batch_size, preset=None, model=str(args.tokenizer))  # fmt: skip
    fly_cfg = PretrainConfig(corpus=[args.corpus], **common)
    shard_cfg = PretrainConfig(corpus=[folder], **common)
    results = {}
    for workers in args.workers:
        fly = make_stream(fly_cfg, tok, "train", None, args.tokenizer)
        loader = DataLoader(fly, batch_size=args.batch_size, num_workers=workers, collate_fn=default_data_collator)
        fly_rate = _rate(loader, args.batches, args.seq_len, args.batch_size)
        collator = make_stream(shard_cfg, tok, "train", 1, args.tokenizer).collator
        index = ShardIndexStream(collator.corpus.n_blocks, 0, args.batch_size)
        shard_rate = _rate(DataLoader(index, batch_size=args.batch_size, num_workers=workers, collate_fn=collator),
                           args.batches, args.seq_len, args.batch_size)  # fmt: skip
        results[str(workers)] = {"on_the_fly_tokens_per_s": round(fly_rate), "shards_tokens_per_s": round(shard_rate),
                                 "ratio": round(shard_rate / fly_rate, 2)}  # fmt: skip
        print(workers, results[str(workers)], flush=True)
    line = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
            "date": datetime.now(UTC).isoformat(timespec="seconds"), "corpus": str(args.corpus),
            "tokens": meta["splits"]["train"]["tokens"], "tokenize_seconds": round(tokenize_s, 1),
            "tokenize_workers": args.tokenize_workers, "batch_size": args.batch_size, "seq_len": args.seq_len,
            "batches": args.batches, "by_dataloader_workers": results}  # fmt: skip
    with open(args.work / "shards.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")
    print(json.dumps(line, indent=1))


if __name__ == "__main__":
    main()
