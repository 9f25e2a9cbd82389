"""`lmtailor corpus --workers N`: the per-document work on N processes, every decision in one, in input order.

What costs time is per document and independent of every other document: decoding, cleaning and segmenting, the
shingle hashes and MinHash, the record digests and the script counts. Workers do that for one input file at a time
(`prepare_file`). What depends on the documents before — is a record an exact repeat, is a document a near
duplicate of one kept earlier, which split it falls in — stays in the main process, which takes the files' results
in the order of the inputs. So 1, 2 or N workers keep the same documents, in the same splits, written in the same
order: the output is byte-identical (tested), and the single-process path stays the default for small inputs.

At most `2 × workers` files are in flight, so memory is bounded by the largest files, not by the corpus. A file is
the unit of work: one huge .jsonl gets one worker (split it to use more).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from datasketch import MinHash

from lmtailor.corpus.dedup import DocSketch, _identity, record_digest
from lmtailor.corpus.encoding import decode_failure
from lmtailor.corpus.normalize import LATIN_WORD_RE, script_counts
from lmtailor.corpus.readers import ReadOptions, Skip, SourceFile, read_file
from lmtailor.corpus.segment import segment_document
from lmtailor.display import progress_over


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
    records: list[str]
    digests: list[int] | None
    counts: np.ndarray
    too_short: int
    hashvalues: np.ndarray | None
    error: Skip | None = None


def _record_counts(text: str) -> tuple[int, int, int, int, int]:
    han, latin, other = script_counts(text)
    return len(text), len(LATIN_WORD_RE.findall(text)), han, latin, other


def prepare_file(src: SourceFile, s: Settings) -> list[Skip | PreparedDoc]:
    """Every document (and skip) of one file, as `CorpusBuilder._fill` would see them."""
    template = MinHash(num_perm=s.num_perm, seed=s.seed, hashfunc=_identity) if s.num_perm else None
    out: list[Skip | PreparedDoc] = []
    for item in read_file(src, s.options):
        if isinstance(item, Skip):
            out.append(item)
            continue
        markdown = item.markdown if s.strip_markdown == "auto" else bool(s.strip_markdown)
        sketch = DocSketch(template.copy()) if template is not None else None
        kept: list[str] = []
        short = 0
        try:
            for text in segment_document(item.lines, markdown=markdown, nfkc=s.nfkc, unit=s.unit,
                                         max_chars=s.max_chars):  # fmt: skip
                if sketch is not None:
                    sketch.add(text)
                if len(text) < s.min_chars:
                    short += 1
                else:
                    kept.append(text)
        except UnicodeDecodeError as exc:
            error = Skip(item.path, "decode error", decode_failure(item.path, item.encoding, exc))
            out.append(PreparedDoc(item.key, item.path, [], None, np.zeros((0, 5), np.int64), 0, None, error))
            continue
        minhash = sketch.finish() if sketch is not None else None
        counts = np.array([_record_counts(t) for t in kept], dtype=np.int64).reshape(-1, 5)
        digests = [record_digest(t) for t in kept] if s.digests else None
        out.append(PreparedDoc(item.key, item.path, kept, digests, counts, short,
                               None if minhash is None else minhash.hashvalues))  # fmt: skip
    return out


def run_parallel(builder, files: list[SourceFile], settings: Settings, workers: int, show_progress: bool) -> None:
    """Prepare `files` on `workers` processes and hand each file's documents to `builder` in input order."""
    ctx = get_context("spawn")  # a clean interpreter: nothing of the parent's state (locks, threads) is inherited
    with ctx.Pool(workers) as pool, progress_over(len(files), "reading files", show_progress) as advance:
        queue: deque = deque()
        todo = iter(files)
        for src in todo:
            queue.append((src, pool.apply_async(prepare_file, (src, settings))))
            if len(queue) == 2 * workers:
                break
        read_mb, documents = 0.0, 0
        while queue:
            src, result = queue.popleft()
            items = result.get()
            nxt = next(todo, None)
            if nxt is not None:
                queue.append((nxt, pool.apply_async(prepare_file, (nxt, settings))))
            for item in items:
                if isinstance(item, Skip):
                    builder.skip(item)
                else:
                    documents += 1
                    builder.add_prepared(item)
            read_mb += src.path.stat().st_size / 1e6 if src.path.is_file() else 0.0
            advance(MB_read=round(read_mb, 1), documents=documents)
