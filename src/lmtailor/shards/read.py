"""Reading token shards (`lmtailor tokenize`) for pretraining: checked, memory-mapped, cut into blocks, masked.

- `ShardCorpus` opens one split of a shard folder after checking it: the format, the tokenizer fingerprint and the
  masking settings against the run's, and every shard's size against the index (a truncated copy is an error
  naming the file, not a crash in a DataLoader worker). Its blocks are the on-the-fly stream's blocks: [CLS], the
  next seq_len − 2 tokens of the shard, [SEP].
- `ShardIndexStream` yields only block numbers: each pass is a seeded permutation of every block (a true shuffle,
  not a buffer's), and the positions of all passes form one sequence cut into global batches of
  `batch × world size`. DataLoader worker w yields the global batches k with k mod W = w, which is the order in which
  the DataLoader takes batches from its workers; accelerate then gives each rank its slice of every global batch.
  So every rank reads and masks only its own blocks, and a run with R ranks of batch B sees at every step exactly
  the blocks and masks one process with batch R×B sees, whatever the worker count.
- `ShardCollator` reads and masks the blocks of a batch in the worker, all at once (`shards.masking`); a block's
  mask is a function of the seed and its position in the sequence alone, so a resumed run and every rank and worker
  layout see the same masks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.shards.masking import mask_batch
from lmtailor.shards.write import FORMAT, META, tokenizer_fingerprint
from lmtailor.train.mlm_data import MaskingSpec


def is_shard_folder(path: str | Path) -> bool:
    return (Path(path) / META).is_file()


def read_meta(folder: Path) -> dict:
    try:
        meta = json.loads((Path(folder) / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputFormatError(
            f"shard folder {folder}: cannot read {META} ({exc}); run `lmtailor tokenize` again."
        ) from None
    if meta.get("format") != FORMAT:
        raise InputFormatError(f"shard folder {folder} has format {meta.get('format')!r}, not {FORMAT!r}; "
                               "run `lmtailor tokenize` again with this lmtailor.")  # fmt: skip
    return meta


class ShardCorpus:
    """One split of a shard folder, its blocks addressable by number."""

    def __init__(self, folder: Path, split: str, tokenizer, seq_len: int, masking: str | None = None) -> None:
        self.folder, self.split, self.seq_len = Path(folder), split, seq_len
        meta = read_meta(self.folder)
        theirs, ours = meta["tokenizer"]["fingerprint"], tokenizer_fingerprint(tokenizer)
        if theirs != ours:
            raise ConfigError(
                f"shard folder {folder} was tokenised with another tokenizer ({meta['tokenizer']['path']}, fingerprint "
                f"{theirs}) than this run's (fingerprint {ours}); run `lmtailor tokenize --tokenizer` with this "
                "run's tokenizer, or pretrain with the tokenizer the shards were made with."
            )
        if masking == "whole_term" and meta["masking"]["mode"] != "whole_term":
            raise ConfigError(f"shard folder {folder} has word units only (tokenize --masking token); whole-term "
                              "masking needs shards tokenised with --masking whole_term.")  # fmt: skip
        if split not in meta["splits"]:
            raise InputNotFoundError(f"shard folder {folder} has no {split!r} split (it has "
                                     f"{', '.join(meta['splits'])}).")  # fmt: skip
        self.meta = meta
        self.cls, self.sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        self.entries = meta["splits"][split]["shards"]
        for entry in self.entries:
            for kind in ("ids", "units"):
                path = self.folder / f"{entry['name']}.{kind}.npy"
                if not path.is_file():
                    raise InputNotFoundError(f"shard {path} is missing; copy the whole folder or tokenize again.")
                if path.stat().st_size != entry[kind]["bytes"]:
                    raise InputFormatError(
                        f"shard {path} is {path.stat().st_size} bytes, not the {entry[kind]['bytes']} its index "
                        "says: a truncated or partial copy. Copy it again or run `lmtailor tokenize` again."
                    )
        body = seq_len - 2
        per_shard = [entry["tokens"] // body for entry in self.entries]
        self.starts = np.cumsum([0, *per_shard])  # block number where each shard's blocks begin
        self.n_blocks = int(self.starts[-1])
        self._arrays: list[tuple[np.ndarray, np.ndarray]] | None = None

    def _open(self) -> list[tuple[np.ndarray, np.ndarray]]:
        # Opened on first use, in the process (DataLoader worker) that reads: memory maps share the page cache.
        if self._arrays is None:
            self._arrays = [tuple(np.load(self.folder / f"{e['name']}.{kind}.npy", mmap_mode="r") for kind in
                                  ("ids", "units")) for e in self.entries]  # fmt: skip
        return self._arrays

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_arrays": None}  # workers map the files themselves

    def block(self, number: int) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, unit ids) of block `number`: [CLS] + seq_len − 2 shard tokens + [SEP]."""
        shard = int(np.searchsorted(self.starts, number, side="right") - 1)
        body = self.seq_len - 2
        start = (number - int(self.starts[shard])) * body
        ids, units = self._open()[shard]
        block = np.empty(self.seq_len, dtype=np.int64)
        block[0], block[-1] = self.cls, self.sep
        block[1:-1] = ids[start : start + body]
        ublock = np.full(self.seq_len, -1, dtype=np.int64)
        ublock[1:-1] = units[start : start + body]
        return block, ublock

    def blocks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every block in shard order (what the on-the-fly stream's `blocks()` gives for the same corpus)."""
        for number in range(self.n_blocks):
            yield self.block(number)


class ShardIndexStream(IterableDataset):
    """Block numbers and their positions, pass after pass (see the module docstring)."""

    def __init__(self, n_blocks: int, seed: int, global_batch: int, passes: int | None = None) -> None:
        self.n_blocks, self.seed, self.global_batch, self.passes = n_blocks, seed, global_batch, passes

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        total = None if self.passes is None else self.passes * self.n_blocks
        orders: dict[int, np.ndarray] = {}
        k = worker
        while total is None or k * self.global_batch < total:
            first = k * self.global_batch
            last = first + self.global_batch if total is None else min(first + self.global_batch, total)
            for position in range(first, last):
                n_pass, i = divmod(position, self.n_blocks)
                if n_pass not in orders:
                    orders.clear()  # one pass's permutation held at a time
                    orders[n_pass] = np.random.default_rng([self.seed, n_pass]).permutation(self.n_blocks)
                yield {"block": int(orders[n_pass][i]), "position": position}
            k += workers


class ShardCollator:
    """A batch of block numbers → masked input_ids, attention_mask and labels (`shards.masking`: each block's mask
    a function of the seed and its position alone)."""

    def __init__(self, corpus: ShardCorpus, spec: MaskingSpec, seed: int) -> None:
        self.corpus, self.spec, self.seed = corpus, spec, seed

    def batch(self, blocks: list[int], positions: list[int]) -> dict:
        pairs = [self.corpus.block(b) for b in blocks]
        ids = np.stack([p[0] for p in pairs])
        units = np.stack([p[1] for p in pairs])
        inputs, labels = mask_batch(ids, units, np.asarray(positions, dtype=np.int64), self.spec, self.seed)
        return {"input_ids": torch.from_numpy(inputs), "labels": torch.from_numpy(labels),
                "attention_mask": torch.ones(ids.shape, dtype=torch.int64)}  # fmt: skip

    def example(self, block: int, position: int) -> dict:
        return {k: v[0] for k, v in self.batch([block], [position]).items()}

    def __call__(self, items: list[dict]) -> dict:
        return self.batch([it["block"] for it in items], [it["position"] for it in items])


class ShardExamples(IterableDataset):
    """Masked examples of the blocks in order, once (held-out loss, subclone calibration)."""

    def __init__(self, collator: ShardCollator) -> None:
        self.collator = collator

    def __iter__(self) -> Iterator[dict]:
        for number in range(self.collator.corpus.n_blocks):
            yield self.collator.example(number, number)
