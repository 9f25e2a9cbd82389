"""The on-disk state of `lmtailor corpus --engine datatrove` (see `corpus.engine`), and the decisions taken from it.

Kept apart from `corpus.engine` (which runs the steps) and `corpus.engine_steps` (the datatrove steps), which both
use it. Nothing here imports datatrove at module level.
"""

from __future__ import annotations

import itertools
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np

from lmtailor.corpus.parallel import Settings
from lmtailor.corpus.readers import SourceFile

# digests/PART/TASK.bin: one row per record kept by the filters; drops/TASK/PART.bin: the exact repeats among them
DIGEST = np.dtype([("digest", "<u8"), ("doc", "<u4"), ("rec", "<u4")])
DROP = np.dtype([("doc", "<u4"), ("rec", "<u4")])


# ---- the plan: which task reads which files --------------------------------------------------------------------


def balanced_ranges(sizes: list[int], tasks: int) -> list[tuple[int, int]]:
    """Split files (in order) into `tasks` contiguous runs of about equal bytes; runs may be empty."""
    total = sum(sizes)
    bounds = [0]
    acc = 0
    cut = 1
    for i, size in enumerate(sizes):
        acc += size
        while cut < tasks and acc >= total * cut / tasks and i + 1 > bounds[-1]:
            bounds.append(i + 1)
            cut += 1
    bounds += [len(sizes)] * (tasks + 1 - len(bounds))
    return list(itertools.pairwise(bounds))


class Plan:
    """What every task needs to know, written once to `plan.json` in the staging folder."""

    def __init__(self, files: list[SourceFile], tasks: int, partitions: int, settings: Settings,
                 num_perm: int | None, bands: int, rows: int) -> None:  # fmt: skip
        self.files, self.tasks, self.partitions = files, tasks, partitions
        self.settings = settings  # num_perm None: the MinHash is made by the Signature step, not `prepare_file`
        self.num_perm, self.bands, self.rows = num_perm, bands, rows
        sizes = [f.path.stat().st_size if f.path.is_file() else 0 for f in files]
        self.ranges = balanced_ranges(sizes, tasks)

    def files_for(self, rank: int) -> list[SourceFile]:
        start, stop = self.ranges[rank]
        return self.files[start:stop]


# ---- staging: the folder every step reads and writes (a local path here; any fsspec path for datatrove) -----------


class Staging:
    def __init__(self, root: str | Path) -> None:
        from datatrove.io import get_datafolder

        self.root = str(root)
        self.folder = get_datafolder(self.root)

    def sub(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def write_bytes(self, path: str, data: bytes) -> None:
        with self.folder.open(path, "wb") as fh:
            fh.write(data)

    def read_bytes(self, path: str) -> bytes:
        with self.folder.open(path, "rb") as fh:
            return fh.read()

    def plan(self) -> Plan:
        return pickle.loads(self.read_bytes("plan.pkl"))

    def removed(self) -> dict[int, np.ndarray]:
        """Per task, the sorted numbers of its near-duplicate documents (datatrove's `.remove` format)."""
        out: dict[int, np.ndarray] = {}
        if self.folder.isdir("remove"):
            for name in self.folder.list_files("remove"):
                out[int(Path(name).name.split(".")[0])] = np.frombuffer(self.read_bytes(name), "<u4")
        return out


class DigestSpool:
    """A task's record digests, written to one file per partition in chunks (memory: one chunk)."""

    CHUNK = 1 << 20

    def __init__(self, stage: Staging, rank: int, partitions: int) -> None:
        self.partitions = partitions
        self.files = [stage.folder.open(f"digests/{p:05d}/{rank:05d}.bin", "wb") for p in range(partitions)]
        self.pending: list[np.ndarray] = []
        self.rows = 0

    def add(self, doc: int, digests: np.ndarray) -> None:
        rows = np.empty(len(digests), DIGEST)
        rows["digest"], rows["doc"], rows["rec"] = digests, doc, np.arange(len(digests))
        self.pending.append(rows)
        self.rows += len(rows)
        if self.rows >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        rows = np.concatenate(self.pending)
        part = rows["digest"] % np.uint64(self.partitions)
        order = np.argsort(part, kind="stable")
        bounds = np.searchsorted(part[order], np.arange(self.partitions + 1))
        for p in range(self.partitions):
            self.files[p].write(rows[order[bounds[p] : bounds[p + 1]]].tobytes())
        self.pending, self.rows = [], 0

    def close(self) -> None:
        self.flush()
        for fh in self.files:
            fh.close()


def near_duplicates(pairs_by_band: dict[int, np.ndarray]) -> list[int]:
    """The documents (as task << 32 | number, ascending) that `NearDupIndex` would drop, given, per band, the pairs
    (task, doc, task, doc) of documents with equal band signatures.

    datatrove writes a band's equal signatures as a chain (a-b, b-c), so a band's groups are the connected
    components of its pairs. In input order, a document is dropped if one of its groups already holds a kept
    document, else kept; that is exactly "the LSH query of the documents kept so far found it"."""
    groups_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for band, pairs in pairs_by_band.items():
        parent: dict[int, int] = {}
        a = (pairs[:, 0].astype(np.int64) << 32) | pairs[:, 1]
        b = (pairs[:, 2].astype(np.int64) << 32) | pairs[:, 3]
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = _find(parent, x), _find(parent, y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
        for node in parent:
            groups_of[node].append((band, _find(parent, node)))
    kept_groups: set[tuple[int, int]] = set()
    removed = []
    for node in sorted(groups_of):
        groups = groups_of[node]
        if any(g in kept_groups for g in groups):
            removed.append(node)
        else:
            kept_groups.update(groups)
    return removed


def _find(parent: dict[int, int], x: int) -> int:
    """Union-find's root of `x` (the smallest member, by how unions are made), with path compression."""
    root = x
    while parent.setdefault(root, root) != root:
        root = parent[root]
    while parent[x] != root:
        parent[x], x = root, parent[x]
    return root


def exact_duplicates(stage: Staging, part: int, tasks: int, removed: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
    """Per task, the (doc, record) pairs of partition `part` whose digest occurred earlier in input order among the
    documents that are not near-duplicates (`ExactDedup`'s rule: the first copy stays)."""
    chunks, owners = [], []
    for task in range(tasks):
        rows = np.frombuffer(stage.read_bytes(f"digests/{part:05d}/{task:05d}.bin"), DIGEST)
        if task in removed and len(rows):
            rows = rows[~np.isin(rows["doc"], removed[task])]
        chunks.append(rows)
        owners.append(np.full(len(rows), task, np.uint32))
    if not chunks:
        return {}
    rows, owner = np.concatenate(chunks), np.concatenate(owners)
    order = np.lexsort((rows["rec"], rows["doc"], owner, rows["digest"]))
    digest = rows["digest"][order]
    repeat = np.zeros(len(order), bool)
    repeat[1:] = digest[1:] == digest[:-1]
    hit = order[repeat]
    out: dict[int, np.ndarray] = {}
    for task in np.unique(owner[hit]).tolist():
        sel = hit[owner[hit] == task]
        drops = np.empty(len(sel), DROP)
        drops["doc"], drops["rec"] = rows["doc"][sel], rows["rec"][sel]
        out[task] = drops
    return out
