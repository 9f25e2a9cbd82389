"""Sharded JSON Lines output: `<split>/part-00000.jsonl`, one `{"text": ..., "doc": ...}` per line.

A new shard starts every `shard_records` records, so any shard can be read (or handed to `datasets`) on its own.
Every split folder gets at least `part-00000.jsonl`, possibly empty, so readers can rely on it being there.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

SHARD_PATTERN = "part-*.jsonl"
_WRITE_BUFFER = 1 << 20


def shard_name(index: int) -> str:
    return f"part-{index:05d}.jsonl"


def record_line(text: str, doc: str) -> str:
    """One record as a line of a shard file."""
    return json.dumps({"text": text, "doc": doc}, ensure_ascii=False) + "\n"


class ShardWriter:
    """Writes the records of one split into numbered shards of at most `shard_records` lines."""

    def __init__(self, folder: Path, shard_records: int) -> None:
        self.folder = folder
        self.shard_records = shard_records
        self.records = 0
        self.shards = 0
        self._fh: IO[str] | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self._open_next()

    def _open_next(self) -> None:
        if self._fh is not None:
            self._fh.close()
        path = self.folder / shard_name(self.shards)
        # backslashreplace: a file name with undecodable bytes (a lone surrogate in `doc`) becomes a JSON \u escape.
        self._fh = open(path, "w", encoding="utf-8", errors="backslashreplace", buffering=_WRITE_BUFFER)  # noqa: SIM115
        self.shards += 1

    def write(self, text: str, doc: str) -> None:
        self.write_line(record_line(text, doc))

    def write_line(self, line: str) -> None:
        """Write one record already encoded by `record_line` (a corpus worker process encodes its records)."""
        if self.records and self.records % self.shard_records == 0:
            self._open_next()
        assert self._fh is not None  # opened in __init__; only close() clears it
        self._fh.write(line)
        self.records += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class CorpusWriter:
    """One `ShardWriter` per split under the output folder; use as a context manager."""

    def __init__(self, out_dir: Path, splits: Sequence[str], shard_records: int) -> None:
        self.writers = {name: ShardWriter(out_dir / name, shard_records) for name in splits}

    def write(self, split: str, text: str, doc: str) -> None:
        self.writers[split].write(text, doc)

    def write_line(self, split: str, line: str) -> None:
        self.writers[split].write_line(line)

    def records(self) -> dict[str, int]:
        return {name: w.records for name, w in self.writers.items()}

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()

    def __enter__(self) -> CorpusWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def shard_paths(folder: Path) -> list[Path]:
    """The shards of one split folder, in order."""
    return sorted(folder.glob(SHARD_PATTERN))


def read_shards(shards: Sequence[Path]) -> Iterator[dict[str, str]]:
    """The records of `shards` (e.g. `shard_paths(split_folder)`), in written order."""
    for path in shards:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)
