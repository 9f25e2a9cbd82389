"""Sharded JSON Lines output."""

from __future__ import annotations

import json
from pathlib import Path

from lmtailor.corpus.writer import CorpusWriter, read_shards, shard_paths


def test_shards_rotate_and_empty_splits_get_one_empty_shard(tmp_path: Path) -> None:
    with CorpusWriter(tmp_path, ["train", "dev"], shard_records=2) as writer:
        for i in range(5):
            writer.write("train", f"text {i} 中文", f"doc{i}")
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [
        "part-00000.jsonl",
        "part-00001.jsonl",
        "part-00002.jsonl",
    ]
    assert (tmp_path / "dev" / "part-00000.jsonl").read_text() == ""
    first = (tmp_path / "train" / "part-00000.jsonl").read_text(encoding="utf-8").splitlines()
    assert first == [json.dumps({"text": f"text {i} 中文", "doc": f"doc{i}"}, ensure_ascii=False) for i in (0, 1)]
    assert [r["doc"] for r in read_shards(shard_paths(tmp_path / "train"))] == [f"doc{i}" for i in range(5)]
