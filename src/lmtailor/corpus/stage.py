"""Stage 1, `lmtailor corpus`: raw documents in, a clean, de-duplicated, split, sharded corpus folder out.

Per document: records stream from the segmenter into a spooled buffer (memory up to `SPOOL_BYTES`, disk past
it) while the exact-duplicate filter and the document's MinHash see them. Only at the end of the document is
it known whether it is a near-duplicate of an earlier one, or whether its bytes stop decoding half-way; only
then are its records written (or dropped whole) and its record hashes committed.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from datasketch import MinHash

from lmtailor.corpus.config import SPLITS, CorpusConfig
from lmtailor.corpus.dedup import ExactDedup, NearDupIndex
from lmtailor.corpus.encoding import decode_failure
from lmtailor.corpus.parallel import PreparedDoc, Settings, run_parallel
from lmtailor.corpus.readers import Document, Skip, check_inputs, discover
from lmtailor.corpus.segment import segment_document
from lmtailor.corpus.source import iter_documents
from lmtailor.corpus.split import Splitter
from lmtailor.corpus.stats import CorpusStats, DocCounts
from lmtailor.corpus.writer import CorpusWriter
from lmtailor.errors import EmptyInputError
from lmtailor.outputs import stage_output, write_json

log = logging.getLogger(__name__)

SPOOL_BYTES = 8 << 20


class CorpusBuilder:
    """Takes documents one at a time and writes the records of those it keeps."""

    def __init__(self, config: CorpusConfig, writer: CorpusWriter, stats: CorpusStats) -> None:
        self.config = config
        self.writer = writer
        self.stats = stats
        self.exact = ExactDedup() if config.dedup_exact else None
        threshold = config.near_dup_threshold
        self.near = NearDupIndex(threshold, config.num_perm, seed=config.seed) if threshold else None
        self.splitter = Splitter(SPLITS, config.split_ratios, config.seed)

    def _markdown(self, doc: Document) -> bool:
        mode = self.config.strip_markdown
        return doc.markdown if mode == "auto" else bool(mode)

    def add(self, doc: Document) -> None:
        """Read, filter and (if kept) write one document."""
        self.stats.documents_read += 1
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES, mode="w+b") as buffer:
            try:
                counts, minhash = self._fill(doc, buffer)
            except UnicodeDecodeError as exc:
                self._drop_pending()
                self.skip(Skip(doc.path, "decode error", decode_failure(doc.path, doc.encoding, exc)))
                return
            if self._keep(doc.key, counts, minhash):
                split = self._accept(doc.key, counts)
                buffer.seek(0)
                for line in buffer:
                    self.writer.write(split, line[:-1].decode("utf-8"), doc.key)

    def _fill(self, doc: Document, buffer: tempfile.SpooledTemporaryFile[bytes]) -> tuple[DocCounts, MinHash | None]:
        """Segment `doc` into `buffer`; returns its counts and its MinHash (None: near-dup off, or no tokens)."""
        cfg = self.config
        counts = DocCounts()
        sketch = self.near.new_sketch() if self.near is not None else None
        records = segment_document(
            doc.lines, markdown=self._markdown(doc), nfkc=cfg.nfkc, unit=cfg.unit, max_chars=cfg.max_chars
        )
        for text in records:
            if sketch is not None:
                sketch.add(text)
            if len(text) < cfg.min_chars:
                counts.too_short += 1
            elif self.exact is not None and not self.exact.is_new(text):
                counts.exact_duplicates += 1
            else:
                buffer.write(text.encode("utf-8") + b"\n")  # records never contain newlines (normalised)
                counts.add(text)
        return counts, sketch.finish() if sketch is not None else None

    def add_prepared(self, doc: PreparedDoc) -> None:
        """`add` for a document a worker process has read, segmented, hashed and counted (`corpus.parallel`): the
        same decisions, in the same order, so the output does not depend on the number of workers."""
        self.stats.documents_read += 1
        if doc.error is not None:
            self.skip(doc.error)
            return
        drop = set()
        if doc.digests is not None:  # in record order, as `_fill` offers them
            drop = {i for i, digest in enumerate(doc.digests.tolist()) if not self.exact.is_new_digest(digest)}
        minhash = self.near.from_values(doc.hashvalues) if doc.hashvalues is not None and self.near else None
        self._add_records(doc, drop, minhash)

    def add_decided(self, doc: PreparedDoc, near_duplicate: bool, drop: set[int]) -> None:
        """`add_prepared` with the decisions already taken elsewhere (`corpus.engine`): whether the document is a
        near-duplicate, and which of its records are exact repeats."""
        self.stats.documents_read += 1
        if doc.error is not None:
            self.skip(doc.error)
            return
        if near_duplicate:
            log.debug("dropped %s: near-duplicate of an earlier document", doc.key)
            self.stats.near_duplicate_documents += 1
            return
        self._add_records(doc, drop, None)

    def _add_records(self, doc: PreparedDoc, drop: set[int], minhash: MinHash | None) -> None:
        """Count a prepared document's records but the exact repeats in `drop`, then keep (and write) or drop it."""
        counts = DocCounts(too_short=doc.too_short)
        kept: list[str] = []
        for i, (line, row) in enumerate(zip(doc.lines, doc.counts.tolist(), strict=True)):
            if i in drop:
                counts.exact_duplicates += 1
            else:
                kept.append(line)
                counts.add_counted(*row)
        if self._keep(doc.key, counts, minhash):
            split = self._accept(doc.key, counts)
            for line in kept:
                self.writer.write_line(split, line)

    def settings(self) -> Settings:
        cfg = self.config
        return Settings(cfg.read_options(), cfg.strip_markdown, cfg.nfkc, cfg.unit, cfg.max_chars, cfg.min_chars,
                        cfg.dedup_exact, cfg.num_perm if cfg.near_dup_threshold else None, cfg.seed)  # fmt: skip

    def _keep(self, key: str, counts: DocCounts, minhash: MinHash | None) -> bool:
        """The decisions once a document's records are counted: dropped as a near-duplicate of a kept document, or as
        empty; else kept (the caller writes it after `_accept`)."""
        if minhash is not None and self.near is not None:
            original = self.near.check_and_add(key, minhash)
            if original is not None:
                log.debug("dropped %s: near-duplicate of %s", key, original)
                self.stats.near_duplicate_documents += 1
                self._drop_pending()
                return False
        self.stats.add_filtered(counts)
        if counts.records == 0:
            self.stats.documents_empty += 1
            self._drop_pending()
            return False
        return True

    def _accept(self, key: str, counts: DocCounts) -> str:
        """Commit a kept document's record digests and counts; returns the split its records go to."""
        if self.exact is not None:
            self.exact.commit()
        split = self.splitter.assign(key)
        self.stats.add_kept(split, counts)
        return split

    def _drop_pending(self) -> None:
        if self.exact is not None:
            self.exact.discard()

    def skip(self, skip: Skip) -> None:
        log.warning("skipped %s (%s): %s", skip.where(), skip.reason, skip.detail)
        self.stats.add_skip(skip)


def _empty_message(inputs: list[Path], stats: CorpusStats) -> str:
    shown = ", ".join(str(p) for p in inputs)
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(stats.skip_reasons.items())) or "none"
    return (
        f"no records from {shown}: {stats.files_seen} files found, skipped: {reasons}; "
        f"{stats.documents_read} documents read, {stats.documents_empty} without text after cleaning, "
        f"{stats.near_duplicate_documents} near-duplicates. Pass folders or files of .txt/.md/.jsonl/.csv text "
        "(each skipped file was logged with its fix)."
    )


def run(config: CorpusConfig) -> Path:
    """Run the corpus stage; returns the output folder (`config.out_dir`)."""
    inputs = check_inputs(config.inputs)
    ner_inputs = check_inputs(config.ner_inputs)
    files = discover(inputs) + discover(ner_inputs, kind="ner")
    stats = CorpusStats(SPLITS, files_seen=len(files))
    with stage_output(config) as out:
        for i, path in enumerate(inputs):
            out.add_input(f"inputs[{i}]", path)
        for i, path in enumerate(ner_inputs):
            out.add_input(f"ner_inputs[{i}]", path)
        with CorpusWriter(out.dir, SPLITS, config.shard_records) as writer:
            builder = CorpusBuilder(config, writer, stats)
            if config.engine == "datatrove":
                from lmtailor.corpus.engine import run_engine

                run_engine(config, files, builder, Path(config.out_dir).expanduser().absolute())
            elif config.workers > 1:
                run_parallel(builder, files, builder.settings(), config.workers, config.show_progress)
            else:
                for item in iter_documents(files, config.read_options(), config.show_progress):
                    if isinstance(item, Skip):
                        builder.skip(item)
                    else:
                        builder.add(item)
        if stats.total_records() == 0:
            raise EmptyInputError(_empty_message(inputs + ner_inputs, stats))
        write_json(out.dir / "stats.json", stats.to_json())
        out.metrics.update(stats.metrics())
    for name, ratio in zip(SPLITS, config.split_ratios, strict=True):
        if ratio > 0 and stats.records[name] == 0:  # a later stage reading this split would find no text
            log.warning(
                "corpus: split %r is empty although its share is %g: %d document(s) were kept and documents are "
                "split whole, so none fell into it; give more and smaller documents, or set its share to 0 and hold "
                "text out another way (for example a second corpus stage on a task's dev file).",
                name, ratio, stats.documents_kept,
            )  # fmt: skip
    log.info(
        "corpus: %d of %d documents kept, %d records (%s), %d exact-duplicate records and %d near-duplicate "
        "documents removed, %d skipped -> %s",
        stats.documents_kept,
        stats.documents_read,
        stats.total_records(),
        ", ".join(f"{s} {stats.records[s]}" for s in SPLITS),
        stats.exact_duplicate_records,
        stats.near_duplicate_documents,
        sum(stats.skip_reasons.values()),
        config.out_dir,
    )
    return Path(config.out_dir)
