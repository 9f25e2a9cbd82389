"""The datatrove pipeline steps of `lmtailor corpus --engine datatrove` (see `corpus.engine` for the design).

A module of its own because it imports datatrove at the top: `corpus.engine` imports it only when the engine runs,
so lmtailor works without datatrove installed.
"""

from __future__ import annotations

import itertools
import pickle
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from datasketch import MinHash
from datatrove.data import Document
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.utils.word_tokenizers import WordTokenizer

from lmtailor.corpus.dedup import _identity, shingle_hashes
from lmtailor.corpus.parallel import iter_prepared
from lmtailor.corpus.readers import Skip
from lmtailor.corpus.staging import DigestSpool, Staging, exact_duplicates, near_duplicates

PICKLE_BATCH = 256


class _StagingStep(PipelineStep):
    """A step that reads and writes the staging folder (given by its path: steps are pickled to their tasks)."""

    def __init__(self, staging: str) -> None:
        super().__init__()
        self.staging = staging


class Prepare(_StagingStep):
    """Step 1: the per-document work on this task's files; yields each document's records for the MinHash."""

    type = "📖 - READER"
    name = "lmtailor prepare"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stage = Staging(self.staging)
        plan = stage.plan()
        settings = plan.settings
        digests = DigestSpool(stage, rank, plan.partitions) if settings.digests else None
        doc = 0
        with stage.folder.open(f"prepared/{rank:05d}.pkl", "wb") as fh:
            for src in plan.files_for(rank):
                batch: list = []  # pickled a few hundred at a time: a write per document through fsspec costs more
                for item in iter_prepared(src, settings, keep_texts=True):
                    batch.append(item if isinstance(item, Skip) else replace(item, texts=None))
                    if len(batch) >= PICKLE_BATCH:
                        fh.write(pickle.dumps(batch, protocol=5))
                        batch = []
                    if isinstance(item, Skip) or item.error is not None:
                        continue
                    self.stat_update("documents")
                    if digests is not None:
                        digests.add(doc, item.digests)
                    yield Document(text=item.texts or "", id=str(doc))
                    doc += 1
                if batch:
                    fh.write(pickle.dumps(batch, protocol=5))
        if digests is not None:
            digests.close()


class RecordTokens(WordTokenizer):
    """Not used for shingles (`Signature.get_shingles` is lmtailor's); given so datatrove loads no language."""

    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return text.split("\n")

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        raise NotImplementedError


class Signature(MinhashDedupSignature):
    """datatrove's step 1 with lmtailor's shingles and datasketch's permutations: the band signatures are the
    values `NearDupIndex` would hash into its LSH tables."""

    name = "lmtailor MinHash signatures"

    def __init__(self, output_folder: str, config, num_perm: int) -> None:
        super().__init__(output_folder, config, language=RecordTokens())
        self.num_perm = num_perm
        self._template = None

    def get_shingles(self, text: str) -> np.ndarray:
        hashes = itertools.chain.from_iterable(shingle_hashes(t) for t in text.split("\n"))
        return np.fromiter(hashes, dtype=np.uint64).reshape(-1, 1)

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        if self._template is None:
            self._template = MinHash(num_perm=self.num_perm, seed=self.config.seed, hashfunc=_identity)
        minhash = self._template.copy()
        minhash.update_batch(shingles.ravel().tolist())
        bands, rows = self.config.num_buckets, self.config.hashes_per_bucket
        values = minhash.hashvalues[: bands * rows]
        return [values[i * rows : (i + 1) * rows].tolist() for i in range(bands)]


class Near(_StagingStep):
    """Step 3: the near-duplicate decisions from the band pairs, in input order."""

    type = "🫂 - DEDUP"
    name = "lmtailor near-duplicates"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stage = Staging(self.staging)
        by_band: dict[int, list[np.ndarray]] = defaultdict(list)
        for name in stage.folder.list_files("dups", glob_pattern="*.dups"):
            pairs = np.frombuffer(stage.read_bytes(name), "<u4").reshape(-1, 4)
            by_band[int(Path(name).name.split("_")[0])].append(pairs)
        removed = near_duplicates({b: np.concatenate(p) for b, p in by_band.items()})
        self.stat_update("near_duplicates", value=len(removed))
        for task, docs in itertools.groupby(removed, key=lambda node: node >> 32):
            stage.write_bytes(f"remove/{task:06d}.remove",
                              np.array([d & 0xFFFFFFFF for d in docs], "<u4").tobytes())  # fmt: skip


class Exact(_StagingStep):
    """Step 4: one partition of the record digests; marks every record whose digest came earlier."""

    type = "🫂 - DEDUP"
    name = "lmtailor exact duplicates"

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        stage = Staging(self.staging)
        plan = stage.plan()
        removed = stage.removed()
        for task, drops in exact_duplicates(stage, rank, plan.tasks, removed).items():
            stage.write_bytes(f"drops/{task:05d}/{rank:05d}.bin", drops.tobytes())
            self.stat_update("exact_duplicates", value=len(drops))
