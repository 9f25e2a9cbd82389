"""The shared reader: text for later stages, from a corpus folder written by this stage or from raw documents.

`iter_texts` is how `terms/`, `tokenizer/` and training read text. Given a corpus folder (one whose
`lmtailor.json` says `"stage": "corpus"`) it yields the records of one split, in written order. Given raw files
or folders it reads them with the same readers, normaliser and segmenter as the corpus stage, with default
settings and without de-duplication or splitting, so a quick experiment needs no corpus stage run first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lmtailor.corpus.readers import Document, ReadOptions, Skip, SourceFile, check_inputs, discover, read_file
from lmtailor.corpus.segment import segment_document
from lmtailor.corpus.writer import read_shards, shard_paths
from lmtailor.display import progress_over
from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError
from lmtailor.outputs import read_manifest

log = logging.getLogger(__name__)

CORPUS_SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class Record:
    """One unit of text and the key of the document it came from."""

    text: str
    doc: str


def iter_documents(
    files: Sequence[SourceFile], options: ReadOptions, show_progress: bool = False
) -> Iterator[Document | Skip]:
    """The documents (and skips) of `files` in order, with a progress bar over files."""
    with progress_over(len(files), "reading files", show_progress) as advance:
        read_mb, documents = 0.0, 0
        for src in files:
            for item in read_file(src, options):
                documents += isinstance(item, Document)
                yield item
            read_mb += src.path.stat().st_size / 1e6 if src.path.is_file() else 0.0
            advance(MB_read=round(read_mb, 1), documents=documents)


def is_corpus(path: Path) -> bool:
    """Whether `path` is an output folder of the corpus stage."""
    return Path(path).is_dir() and read_manifest(Path(path)).get("stage") == "corpus"


def _corpus_records(folder: Path, split: str, show_progress: bool) -> Iterator[Record]:
    if split not in CORPUS_SPLITS:
        raise ConfigError(f"split = {split!r}: a corpus folder has the splits {', '.join(CORPUS_SPLITS)}.")
    shards = shard_paths(folder / split)
    if not shards:
        raise InputFormatError(f"corpus folder {folder} has no {split}/part-*.jsonl; re-run `lmtailor corpus`.")
    with progress_over(len(shards), f"reading {split} shards", show_progress) as advance:
        for shard in shards:
            for row in read_shards([shard]):
                yield Record(row["text"], row["doc"])
            advance()


def _raw_records(paths: Sequence[Path], show_progress: bool) -> Iterator[Record]:
    for item in iter_documents(discover(paths), ReadOptions(), show_progress):
        if isinstance(item, Skip):
            log.warning("skipped %s: %s", item.where(), item.detail)
            continue
        try:
            for text in segment_document(item.lines, markdown=item.markdown):
                yield Record(text, item.key)
        except UnicodeDecodeError as exc:
            log.warning("skipped the rest of %s: invalid %s (%s)", item.path, item.encoding, exc.reason)


def iter_records(paths: Sequence[Path], split: str = "train", show_progress: bool = False) -> Iterator[Record]:
    """Records (text + document key) of corpus folders' `split`, or of raw documents; see the module docstring.

    Raises `InputNotFoundError` at once for a missing path, and `EmptyInputError` when the iteration ends
    without a single record.
    """
    checked = check_inputs(paths)
    return _checked_records(checked, split, show_progress)


def _checked_records(paths: list[Path], split: str, show_progress: bool) -> Iterator[Record]:
    count = 0
    for path in paths:
        if is_corpus(path):
            records = _corpus_records(path, split, show_progress)
        else:
            records = _raw_records([path], show_progress)
        for record in records:
            count += 1
            yield record
    if count == 0:
        shown = ", ".join(str(p) for p in paths)
        raise EmptyInputError(
            f"no text in {shown} (split {split!r} for corpus folders); check that the files hold text "
            "in .txt/.md/.jsonl/.csv form, or that the corpus stage wrote records to that split."
        )


def iter_texts(paths: Sequence[Path], split: str = "train", show_progress: bool = False) -> Iterator[str]:
    """The text of every record: of `split` in corpus folders, or of raw documents (normalised paragraphs)."""
    records = iter_records(paths, split, show_progress)
    return (record.text for record in records)
