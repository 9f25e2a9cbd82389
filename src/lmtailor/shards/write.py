"""`lmtailor tokenize`: a corpus tokenised once into shards of token ids and masking units, on every core.

Why numpy files with a JSON index rather than Arrow, litdata or mosaicml-streaming: a shard here is two flat arrays
(token ids, unit ids) that a reader slices into fixed-size blocks by offset, which `np.load(mmap_mode="r")` does
with no copy and no dependency; the page cache shares the pages between every DataLoader worker and every process
on a node, and any filesystem that holds the folder (NFS, a copied folder per node) serves several nodes. Measured
against the on-the-fly stream in docs/benchmarks.md ("Token shards"). Arrow would add row framing we do not need.

Layout of the output folder: `shards.json` (format, tokenizer fingerprint, masking settings, per split the shards
with their token counts, sizes and SHA-256) and, per split, `<split>-00000.ids.npy` (uint16, or uint32 for a
vocabulary over 65,535) and `<split>-00000.units.npy` (int32; -1 for a token outside every unit, such as [SEP]).
Documents are tokenised as `pretrain` tokenises them (`mlm_data.encode_texts`) and joined with [SEP]; a shard ends
at a document boundary once it holds `shard_tokens`, so a block never spans two shards.

Workers: the texts are read in order in this process and tokenised in chunks of 64 by a pool of processes whose
results come back in order, so 1 and N workers write byte-identical shards.
"""

from __future__ import annotations

import hashlib
import json
import logging
from itertools import chain
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from lmtailor.errors import EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.outputs import file_sha256, stage_output, write_json
from lmtailor.shards.config import TokenizeConfig

log = logging.getLogger(__name__)

FORMAT = "lmtailor-token-shards/1"
META = "shards.json"
_CHUNK = 64
_WORKER: dict = {}


def tokenizer_fingerprint(tokenizer) -> str:
    """What decides the ids a text gets (vocabulary, added tokens, normaliser, pre-tokeniser, model), without the
    truncation and padding settings that loading may change: shards and a pretraining run must agree on it."""
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    state.pop("truncation", None)
    state.pop("padding", None)
    return hashlib.sha256(json.dumps(state, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:16]


Packed = tuple[np.ndarray, np.ndarray, int, list[int]]


def pack_chunk(tokenizer, splitter, texts: list[str]) -> Packed:
    """One chunk's documents joined with [SEP]: token ids, unit ids (numbered from 0 in the chunk, -1 for none), the
    number of unit ids used, and where each document ends; documents without tokens are left out, as the on-the-fly
    stream leaves them out."""
    from lmtailor.train.mlm_data import encode_texts

    ids_out: list[int] = []
    units_out: list[int] = []
    ends: list[int] = []
    base = 0
    for ids, units, n_units in encode_texts(tokenizer, splitter, texts):
        if not ids:
            continue
        ids_out.extend(ids)
        ids_out.append(tokenizer.sep_token_id)
        units_out.extend(u + base if u >= 0 else -1 for u in units)
        units_out.append(-1)
        base += n_units + 1
        ends.append(len(ids_out))
    return np.asarray(ids_out, dtype=np.int64), np.asarray(units_out, dtype=np.int64), base, ends


def _init_worker(tok_dir: str, terms: list[str], masking: str) -> None:
    from transformers import AutoTokenizer

    from lmtailor.train.mlm_data import unit_splitter

    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    _WORKER.update(tok=tokenizer, splitter=unit_splitter(tokenizer, [Path(t) for t in terms], masking, Path(tok_dir)))


def _work(texts: list[str]) -> Packed:
    return pack_chunk(_WORKER["tok"], _WORKER["splitter"], texts)


class _SplitWriter:
    """Collects one split's chunks and writes a shard whenever `shard_tokens` are held."""

    def __init__(self, folder: Path, split: str, shard_tokens: int, dtype: type) -> None:
        self.folder, self.split, self.shard_tokens, self.dtype = folder, split, shard_tokens, dtype
        self.ids: list[np.ndarray] = []
        self.units: list[np.ndarray] = []
        self.held = 0
        self.base = 0  # unit ids only need to be distinct and in order within a shard
        self.shards: list[dict] = []

    def add(self, ids: np.ndarray, units: np.ndarray, n_units: int, ends: list[int]) -> None:
        """Append a packed chunk; a shard is written at the first document end that fills it."""
        units = np.where(units >= 0, units + self.base, -1).astype(np.int32)
        self.base += n_units
        start = 0
        for end in ends:
            if self.held + end - start >= self.shard_tokens:
                self._take(ids[start:end], units[start:end])
                self.flush()
                start = end
        if start < len(ids):
            self._take(ids[start:], units[start:])

    def _take(self, ids: np.ndarray, units: np.ndarray) -> None:
        self.ids.append(ids.astype(self.dtype))
        self.units.append(units)
        self.held += len(ids)

    def flush(self) -> None:
        if not self.held:
            return
        name = f"{self.split}-{len(self.shards):05d}"
        entry: dict = {"name": name, "tokens": self.held}
        for kind, parts in (("ids", self.ids), ("units", self.units)):
            path = self.folder / f"{name}.{kind}.npy"
            np.save(path, np.concatenate(parts))
            entry[kind] = {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
        self.shards.append(entry)
        self.ids, self.units, self.held = [], [], 0


def run_tokenize(config: TokenizeConfig) -> Path:
    from transformers import AutoTokenizer

    from lmtailor.corpus.source import is_corpus, iter_texts
    from lmtailor.train.mlm_data import masking_terms, text_chunks, unit_splitter

    for path in [*config.corpus, config.tokenizer, *config.terms]:
        if not Path(path).exists():
            raise InputNotFoundError(f"tokenize input {path} does not exist; check the path.")
    tokenizer = AutoTokenizer.from_pretrained(str(config.tokenizer))
    if not tokenizer.is_fast or tokenizer.sep_token_id is None or tokenizer.mask_token_id is None:
        raise InputFormatError(f"{config.tokenizer} needs a fast tokenizer with [SEP] and [MASK] for MLM shards.")
    terms = masking_terms(config.terms, config.tokenizer) if config.masking == "whole_term" else []
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max else np.uint32
    corpus_folders = all(is_corpus(Path(p)) for p in config.corpus)
    splits = config.splits if corpus_folders else ["train"]  # raw files have no splits
    term_files = [str(p) for p in config.terms] or (
        [str(Path(config.tokenizer) / "protected_terms.txt")] if terms else [])  # fmt: skip
    meta = {"format": FORMAT, "tokenizer": {"path": str(Path(config.tokenizer).resolve()),
            "fingerprint": tokenizer_fingerprint(tokenizer), "vocab_size": len(tokenizer),
            "sep_token_id": tokenizer.sep_token_id, "cls_token_id": tokenizer.cls_token_id},
            "masking": {"mode": config.masking, "terms": len(terms),
                        "terms_sha256": hashlib.sha256("\n".join(terms).encode()).hexdigest()[:16]},
            "dtype": np.dtype(dtype).name, "splits": {}}  # fmt: skip
    ctx = get_context("spawn")  # a fresh interpreter per worker: no forked tokenizer threads
    pool = ctx.Pool(config.workers, _init_worker, (str(config.tokenizer), term_files, config.masking)) \
        if config.workers > 1 else None  # fmt: skip
    local = unit_splitter(tokenizer, config.terms, config.masking, Path(config.tokenizer)) if pool is None else None
    try:
        with stage_output(config) as out:
            for i, path in enumerate(config.corpus):
                out.add_input(f"corpus[{i}]", Path(path))
            out.add_input("tokenizer", Path(config.tokenizer))
            for split in splits:
                writer = _SplitWriter(out.dir, split, config.shard_tokens, dtype)
                chunks = text_chunks(iter_texts(config.corpus, split, config.show_progress), _CHUNK)
                try:
                    first = next(chunks)  # an empty or missing split fails here, in this process
                except (EmptyInputError, InputFormatError):
                    if split == "train":
                        raise
                    log.info("no %s split in %s: not written", split, ", ".join(map(str, config.corpus)))
                    continue
                chunks = chain([first], chunks)
                results = pool.imap(_work, chunks) if pool else (pack_chunk(tokenizer, local, c) for c in chunks)
                for packed in results:
                    writer.add(*packed)
                writer.flush()
                if not writer.shards:
                    if split == "train":
                        raise EmptyInputError(f"no tokens in {', '.join(map(str, config.corpus))}; add text.")
                    continue
                meta["splits"][split] = {"tokens": sum(s["tokens"] for s in writer.shards), "shards": writer.shards}
                log.info("%s: %d tokens in %d shards", split, meta["splits"][split]["tokens"], len(writer.shards))
            write_json(out.dir / META, meta)
            out.metrics.update({f"{s}_tokens": v["tokens"] for s, v in meta["splits"].items()})
            out.metrics.update({"workers": config.workers, "tokenizer_fingerprint": meta["tokenizer"]["fingerprint"]})
    finally:
        if pool is not None:
            pool.terminate()
    return Path(config.out_dir)
