"""`lmtailor corpus --workers N`: the per-document work on N processes, every decision in one, in input order.

What costs time is per document and independent of every other document: decoding, cleaning and segmenting, the
shingle hashes and MinHash, the record digests and the script counts. Workers do that for one input file at a time
(`prepare_file`). What depends on the documents before — is a record an exact repeat, is a document a near
duplicate of one kept earlier, which split it falls in — stays in the main process, which takes the files' results
in the order of the inputs. So 1, 2 or N workers keep the same documents, in the same splits, written in the same
order: the output is byte-identical (tested), and the single-process path stays the default for small inputs.

At most `2 × workers` files are in flight, so memory is bounded by the largest files, not by the corpus. A file is
the unit of work: one huge .jsonl gets one worker (split it to use more). A worker that dies fails the stage with a
message naming the file; the output folder is only ever written whole (`outputs.stage_output`), so a rerun starts
clean.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path

import numpy as np
from datasketch import MinHash

from lmtailor.corpus.dedup import DocSketch, _identity, record_digest
from lmtailor.corpus.encoding import decode_failure
from lmtailor.corpus.normalize import LATIN_WORD_RE, script_counts
from lmtailor.corpus.readers import ReadOptions, Skip, SourceFile, read_file
from lmtailor.corpus.segment import segment_document
from lmtailor.corpus.writer import record_line
from lmtailor.display import progress_over
from lmtailor.errors import OutputWriteError


@dataclass(frozen=True)
class Settings:
    """What a worker needs of the corpus config (picklable, small)."""

    options: ReadOptions
    strip_markdown: str | bool
    nfkc: bool
    unit: str
    max_chars: int
    min_chars: int
    digests: bool
    num_perm: int | None  # None: no near-duplicate detection
    seed: int


@dataclass
class PreparedDoc:
    """One document, ready for the main process's decisions: its records long enough to keep, their digests and
    script counts ([n, 5]: chars, Latin words, Han, Latin letters, other letters), how many were too short, its
    MinHash values (None: near-dup off or no tokens), or the decode error that drops it."""

    key: str
    path: Path
    joined: str  # the records as shard lines (`writer.record_line`), joined: one string pickles faster than a list
    digests: np.ndarray | None  # uint64
    counts: np.ndarray
    too_short: int
    hashvalues: np.ndarray | None
    error: Skip | None = None
    texts: str | None = None  # every record, too-short ones too, "\n"-joined: for `--engine datatrove`'s MinHash

    @property
    def lines(self) -> list[str]:
        """Each record's shard line, with its newline."""
        return self.joined.splitlines(keepends=True)


def _record_counts(text: str) -> tuple[int, int, int, int, int]:
    han, latin, other = script_counts(text)
    return len(text), len(LATIN_WORD_RE.findall(text)), han, latin, other


@lru_cache(maxsize=4)
def _template(num_perm: int, seed: int) -> MinHash:
    # Drawing the permutations costs ~0.3 ms: once per worker, not once per file.
    return MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity)


def prepare_file(src: SourceFile, s: Settings) -> list[Skip | PreparedDoc]:
    """Every document (and skip) of one file, as `CorpusBuilder._fill` would see them."""
    return list(iter_prepared(src, s))


def iter_prepared(src: SourceFile, s: Settings, keep_texts: bool = False) -> Iterator[Skip | PreparedDoc]:
    """`prepare_file`, one document at a time (`keep_texts`: with every record's text, for a MinHash made
    elsewhere)."""
    template = _template(s.num_perm, s.seed) if s.num_perm else None
    for item in read_file(src, s.options):
        if isinstance(item, Skip):
            yield item
            continue
        markdown = item.markdown if s.strip_markdown == "auto" else bool(s.strip_markdown)
        sketch = DocSketch(template.copy()) if template is not None else None
        kept: list[str] = []
        every: list[str] | None = [] if keep_texts else None
        short = 0
        try:
            for text in segment_document(item.lines, markdown=markdown, nfkc=s.nfkc, unit=s.unit,
                                         max_chars=s.max_chars):  # fmt: skip
                if sketch is not None:
                    sketch.add(text)
                if every is not None:
                    every.append(text)
                if len(text) < s.min_chars:
                    short += 1
                else:
                    kept.append(text)
        except UnicodeDecodeError as exc:
            error = Skip(item.path, "decode error", decode_failure(item.path, item.encoding, exc))
            yield PreparedDoc(item.key, item.path, "", None, np.zeros((0, 5), np.int64), 0, None, error)
            continue
        minhash = sketch.finish() if sketch is not None else None
        counts = np.array([_record_counts(t) for t in kept], dtype=np.int64).reshape(-1, 5)
        digests = np.fromiter(map(record_digest, kept), np.uint64, len(kept)) if s.digests else None
        yield PreparedDoc(item.key, item.path, "".join(record_line(t, item.key) for t in kept), digests, counts, short,
                          None if minhash is None else minhash.hashvalues,
                          texts=None if every is None else "\n".join(every))  # fmt: skip


def run_parallel(builder, files: list[SourceFile], settings: Settings, workers: int, show_progress: bool) -> None:
    """Prepare `files` on `workers` processes and hand each file's documents to `builder` in input order.

    concurrent.futures rather than multiprocessing.Pool: when a worker dies (killed, out of memory) its pool raises
    BrokenProcessPool on the file it held, where a Pool would wait for that file's result forever."""
    # fork where there is one: workers start in milliseconds and need nothing re-imported (a script without a
    # `__main__` guard works too); this process has started no threads a child could inherit half-locked.
    ctx = get_context("fork" if "fork" in get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool, \
            progress_over(len(files), "reading files", show_progress) as advance:  # fmt: skip
        queue: deque = deque()
        todo = iter(files)
        for src in todo:
            queue.append((src, pool.submit(prepare_file, src, settings)))
            if len(queue) == 2 * workers:
                break
        read_mb, documents = 0.0, 0
        while queue:
            src, future = queue.popleft()
            try:
                items = future.result()
            except BrokenProcessPool:
                raise OutputWriteError(
                    f"a corpus worker process died (killed, or out of memory) while reading {src.path}; nothing "
                    "was written. Run the stage again, with fewer --workers if memory was short."
                ) from None
            nxt = next(todo, None)
            if nxt is not None:
                queue.append((nxt, pool.submit(prepare_file, nxt, settings)))
            for item in items:
                if isinstance(item, Skip):
                    builder.skip(item)
                else:
                    documents += 1
                    builder.add_prepared(item)
            read_mb += src.path.stat().st_size / 1e6 if src.path.is_file() else 0.0
            advance(MB_read=round(read_mb, 1), documents=documents)
