"""`lmtailor corpus --engine datatrove`: the corpus stage as datatrove pipelines, every piece of state on disk.

Why datatrove (README, "Scale"): it is made for exactly this — web-scale text on one machine or a Slurm cluster —
and brings what a home-grown pool lacks: executors that run the same pipeline locally or as Slurm job arrays,
a record of finished tasks so a rerun after a crash or a killed job only redoes the unfinished ones, fsspec paths
(a shared disk or an object store for the staging folder), and a disk-backed, multi-stage MinHash whose memory
does not grow with the corpus. Ray Data would run the per-document work as well, but has no de-duplication of
its own and would keep the shuffle in the object store's memory.

The five steps, each a datatrove pipeline whose tasks run in parallel (the last one in this process):

1. **prepare** (`workers` tasks, at least one per 256 MB of input): each task reads a contiguous run of the input
   files (balanced by bytes, so (task, document number) orders documents as the inputs do), and does the
   per-document work of `corpus.parallel.iter_prepared`: decode, clean, segment, count, hash each record. It
   writes the documents to `prepared/`, the record digests to `digests/`, partitioned by digest, and — through
   datatrove's own `MinhashDedupSignature` — each document's MinHash band signatures, sorted, to `sigs/`.
2. **buckets** (one task per LSH band): datatrove's `MinhashDedupBuckets` merges the sorted signature files of its
   band and writes the pairs of documents with equal band signatures to `dups/`.
3. **near** (1 task): decides which documents are near-duplicates, as `NearDupIndex` does in one process (not
   datatrove's `MinhashDedupCluster`, which joins chains and keeps an arbitrary member of each cluster): in input
   order, a document is dropped when it shares a band with an earlier document that was kept. Memory grows with the
   number of documents that have a partner, not with the corpus.
4. **exact** (`partitions` tasks): each task loads one partition of the record digests (1/P of them), leaves out
   the near-duplicate documents, and marks every record whose digest occurred earlier in input order.
5. **write** (this process): streams the prepared documents in input order into the corpus folder, applying the
   decisions; nothing is decided here, so this is file copying.

The MinHash uses the same shingles, permutations and bands (datasketch's choice of bands for the threshold) as
the in-memory path, and the decisions are the same rules in the same order: the output is byte-identical to
`--workers 1` (tested on real data), whatever the number of tasks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import pickle
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np

from lmtailor.corpus.dedup import SHINGLE
from lmtailor.corpus.parallel import PreparedDoc
from lmtailor.corpus.readers import Skip, SourceFile
from lmtailor.corpus.staging import DROP, Plan, Staging
from lmtailor.errors import ConfigError, OutputWriteError

log = logging.getLogger(__name__)

PIP_COMMAND = 'pip install "datatrove==0.10.1"'
# One digest partition per this many input bytes (at least one per task): a partition's rows (16 B per record) are
# sorted in the memory of one task: 1 GB of text, ~4 M records of typical length, costs that task ~200 MB.
PARTITION_BYTES = 1 << 30
# At least one prepare task per this many input bytes, whatever --workers: a task sorts its band signatures in
# memory (56 B per document, one band at a time, twice while sorting), so memory stays bounded as the corpus grows:
# at worst ~200 MB for 256 MB of one-line documents, a few MB for documents of a few KB.
TASK_BYTES = 256 << 20


def _datatrove():
    try:
        import datatrove  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"--engine datatrove needs the datatrove package, which is not installed; run `{PIP_COMMAND}` (or "
            "install lmtailor[cluster]), or use the default engine (--engine local)."
        ) from None


def _fingerprint(config, files: list[SourceFile]) -> str:
    keep = config.model_dump(mode="json", exclude={"out_dir", "overwrite", "show_progress", "staging",
                                                   "executor_options"})  # fmt: skip
    keep["files"] = [[str(f.path), f.path.stat().st_size if f.path.is_file() else 0,
                      f.path.stat().st_mtime_ns if f.path.is_file() else 0] for f in files]  # fmt: skip
    return json.dumps(keep, sort_keys=True)


def default_staging(final: Path) -> Path:
    """`.NAME.engine` beside the output: kept after a failure (a rerun resumes the finished tasks), removed after
    success."""
    return final.with_name(f".{final.name}.engine")


def check_staging(root: Path, final: Path, inputs: list[Path]) -> None:
    """Refuse a staging folder that overlaps the output or an input: emptying it would delete them, and inside an
    input its files would be read as documents by the next run."""
    staging = Path(os.path.abspath(root.expanduser()))
    for what, other in [("the output folder", final), *[("the input", Path(p)) for p in inputs]]:
        other = Path(os.path.abspath(Path(other).expanduser()))
        if staging == other or other in staging.parents or staging in other.parents:
            raise ConfigError(
                f"--staging {root} overlaps {what} {other}; the staging folder is emptied and rewritten, so give "
                "one of its own (default: .NAME.engine beside --out)."
            )


def _open_staging(config, files: list[SourceFile], root: Path) -> tuple[Staging, bool]:
    """The staging folder, emptied first unless it holds an interrupted run of these same inputs and settings."""
    fingerprint = _fingerprint(config, files)
    marker = root / "fingerprint.json"
    resumed = marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint
    if not resumed:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        marker.write_text(fingerprint, encoding="utf-8")
    return Staging(root), resumed


def _executors(config, plan: Plan, staging: Staging) -> list[tuple[str, Any]]:
    """(step name, datatrove executor) of steps 1-4, each depending on the one before."""
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.utils.hashing import HashConfig

    from lmtailor.corpus.engine_steps import Exact, Near, Prepare, Signature

    minhash = MinhashConfig(n_grams=SHINGLE, num_buckets=plan.bands, hashes_per_bucket=plan.rows, seed=config.seed,
                            hash_config=HashConfig(precision=32, hash_fc="sha1"))  # fmt: skip
    near = plan.num_perm is not None
    steps: list[tuple[str, list, int]] = []
    prepare: list = [Prepare(staging.root)]
    if near:
        prepare.append(Signature(staging.sub("sigs"), minhash, plan.num_perm))
    steps.append(("prepare", prepare, plan.tasks))
    if near:
        steps.append(("buckets", [MinhashDedupBuckets(staging.sub("sigs"), staging.sub("dups"), config=minhash)],
                      plan.bands))  # fmt: skip
        steps.append(("near", [Near(staging.root)], 1))
    if plan.settings.digests:
        steps.append(("exact", [Exact(staging.root)], plan.partitions))
    made: list[tuple[str, Any]] = []
    for name, pipeline, tasks in steps:
        made.append((name, _executor(config, name, pipeline, tasks, staging, made[-1][1] if made else None)))
    return made


def _executor(config, name: str, pipeline: list, tasks: int, staging: Staging, depends):
    logs = staging.sub(f"logs/{name}")
    options = dict(config.executor_options)
    if config.executor == "local":
        from datatrove.executor import LocalPipelineExecutor

        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(tasks, config.workers), logging_dir=logs,
                                     depends=depends, start_method="fork", **options)  # fmt: skip
    from datatrove.executor import SlurmPipelineExecutor

    options.setdefault("job_name", f"lmtailor-corpus-{name}")
    options.setdefault("cpus_per_task", 1)
    return SlurmPipelineExecutor(pipeline, tasks=tasks, logging_dir=logs, depends=depends, **options)


@contextlib.contextmanager
def _quiet_datatrove() -> Iterator[None]:
    """datatrove logs every task to the console through loguru; run locally, its messages are left out (its task
    statistics still go to the staging folder's logs/)."""
    from loguru import logger

    logger.disable("datatrove")
    try:
        yield
    finally:
        logger.enable("datatrove")


def _run_local(name: str, executor, workers: int, stage: Staging) -> None:
    """Run the unfinished tasks of one step on this machine.

    Through datatrove's per-task runner (`_run_for_rank`: task logs, statistics, the record of finished tasks), but
    on a concurrent.futures pool rather than `LocalPipelineExecutor.run`'s multiprocess Pool: when a worker is
    killed (out of memory, SIGKILL), that Pool waits forever for its task, where this one fails at once."""
    todo = executor.get_incomplete_ranks()
    if not todo:
        return
    if min(workers, len(todo)) == 1:
        for rank in todo:
            executor._run_for_rank(rank)
        return
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx) as pool:
        futures = {pool.submit(executor._run_for_rank, rank): rank for rank in todo}
        for future in as_completed(futures):
            try:
                future.result()
            except BrokenProcessPool:
                raise OutputWriteError(
                    f"a worker process of the corpus step {name!r} died (killed, or out of memory); nothing was "
                    f"written. The finished tasks are kept in {stage.root}: run the stage again to finish the rest "
                    "(with fewer --workers if memory was short)."
                ) from None


def _wait(executor, poll_seconds: float) -> None:
    """Block until every task of `executor` (submitted to Slurm) has finished."""
    while incomplete := len(executor.get_incomplete_ranks()):
        log.info("corpus: waiting for %d of %d Slurm tasks of the last step", incomplete, executor.world_size)
        time.sleep(poll_seconds)


def run_engine(config, files: list[SourceFile], builder, final: Path) -> None:
    """Run steps 1-4 on datatrove's executor, then step 5 into `builder` (this process)."""
    _datatrove()
    from datasketch import MinHashLSH

    settings = replace(builder.settings(), num_perm=None)  # the MinHash is made in the Signature step
    num_perm = builder.config.num_perm if builder.config.near_dup_threshold else None
    bands = rows = 0
    if num_perm is not None:
        lsh = MinHashLSH(threshold=config.near_dup_threshold, num_perm=num_perm)
        bands, rows = lsh.b, lsh.r
    total = sum(f.path.stat().st_size for f in files if f.path.is_file())
    partitions = max(config.workers, math.ceil(total / PARTITION_BYTES)) if config.dedup_exact else 0
    root = Path(config.staging) if config.staging else default_staging(final)
    check_staging(root, final, [*config.inputs, *config.ner_inputs])
    stage, resumed = _open_staging(config, files, root)
    if resumed:
        log.info("corpus: resuming the interrupted datatrove run in %s (finished tasks are not run again)", root)
    tasks = max(config.workers, math.ceil(total / TASK_BYTES))
    plan = Plan(files, tasks, partitions, settings, num_perm, bands, rows)
    stage.write_bytes("plan.pkl", pickle.dumps(plan, protocol=5))
    executors = _executors(config, plan, stage)
    if config.executor == "local":
        with _quiet_datatrove():
            for name, executor in executors:
                t0 = time.perf_counter()
                _run_local(name, executor, config.workers, stage)
                log.info("corpus: datatrove step %s: %d task(s), %.1f s", name, executor.world_size,
                         time.perf_counter() - t0)  # fmt: skip
    else:
        executors[-1][1].run()  # submits the chain of Slurm jobs
        _wait(executors[-1][1], float(config.executor_options.get("poll_seconds", 60)))
    for name, executor in executors:
        if incomplete := executor.get_incomplete_ranks():
            raise OutputWriteError(
                f"the datatrove step {name!r} left {len(incomplete)} task(s) unfinished (see the task logs under "
                f"{stage.sub('logs/' + name)}); nothing was written. Run the stage again: finished tasks are kept."
            )
    t0 = time.perf_counter()
    write_decided(stage, plan, builder)
    log.info("corpus: writing the kept documents in input order: %.1f s", time.perf_counter() - t0)
    shutil.rmtree(root, ignore_errors=True)


def write_decided(stage: Staging, plan: Plan, builder) -> None:
    """Step 5: every task's documents, in input order, through the builder with the decisions of steps 3 and 4."""
    removed = stage.removed()
    for task in range(plan.tasks):
        near = set(removed.get(task, np.empty(0, "<u4")).tolist())
        drops: dict[int, set[int]] = defaultdict(set)
        if stage.folder.isdir(f"drops/{task:05d}"):
            for name in stage.folder.list_files(f"drops/{task:05d}"):
                for doc, rec in np.frombuffer(stage.read_bytes(name), DROP).tolist():
                    drops[doc].add(rec)
        doc = 0
        with stage.folder.open(f"prepared/{task:05d}.pkl", "rb") as fh:
            for item in _pickled_items(fh):
                if isinstance(item, Skip):
                    builder.skip(item)
                elif item.error is not None:
                    builder.add_decided(item, False, set())
                else:
                    builder.add_decided(item, doc in near, drops.pop(doc, set()))
                    doc += 1


def _pickled_items(fh) -> Iterator[Skip | PreparedDoc]:
    """The items of a `prepared/` file: one pickled list per input file."""
    while True:
        try:
            items = pickle.load(fh)
        except EOFError:
            return
        yield from items
