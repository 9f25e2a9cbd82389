"""Duplicate removal: exact duplicate records by hash, near-duplicate documents by MinHash LSH.

Exact: an 8-byte blake2b digest of each record's normalised text, kept (as an int, 36 bytes rather than 41 for
`bytes`) in a set, so a 100 M-record corpus costs a few GB at most and a typical one a few MB.

Near: a document's MinHash is built record by record while it streams (5-shingles of words for Latin script and
of single characters for CJK, which has no spaces), then queried against the LSH index of the documents kept so
far. The decision can only be made at the end of the document, which is why the stage buffers its records.
"""

from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np
from datasketch import MinHash, MinHashLSH

from lmtailor.corpus.normalize import CJK_CLASS

SHINGLE = 5
# One token per CJK character, one per run of other letters/digits: 5-shingles over these are word 5-grams in
# English and character 5-grams in Chinese, and mixed text gets both without a language switch.
_ROLL = np.uint64(0x100000001B3)  # the 64-bit FNV prime: odd, so the rolling hash loses no information
_TOKEN = re.compile(rf"[{CJK_CLASS}]|[^\W_{CJK_CLASS}]+")


def record_digest(text: str) -> int:
    """The 8-byte blake2b digest of a normalised record, as an int."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


class ExactDedup:
    """Digests of the records written so far, plus those of the document being read (committed only if kept)."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.pending: set[int] = set()

    def is_new(self, text: str) -> bool:
        """True (and remembered as pending) the first time `text` is offered; False for a repeat."""
        return self.is_new_digest(record_digest(text))

    def is_new_digest(self, digest: int) -> bool:
        """`is_new` for a digest computed elsewhere (a corpus worker process)."""
        if digest in self.seen or digest in self.pending:
            return False
        self.pending.add(digest)
        return True

    def commit(self) -> None:
        self.seen |= self.pending
        self.pending = set()

    def discard(self) -> None:
        self.pending = set()


def shingles(text: str, size: int = SHINGLE) -> list[str]:
    """Token `size`-shingles of one record as strings (a record of fewer tokens is one shingle); for tests/debug."""
    tokens = _TOKEN.findall(text.lower())
    if len(tokens) <= size:
        return [" ".join(tokens)] if tokens else []
    return [" ".join(tokens[i : i + size]) for i in range(len(tokens) - size + 1)]


def shingle_hashes(text: str, size: int = SHINGLE) -> list[int]:
    """32-bit hashes of the token `size`-shingles of one record (one hash if it has fewer tokens, none if 0).

    Why not `MinHash.update_batch` on shingle strings: joining and sha1-hashing every shingle in Python was
    two thirds of the stage's time. Here each token is hashed once (crc32: deterministic across processes,
    unlike `hash()`) and shingle hashes are rolled from token hashes with numpy; datasketch still mixes and
    permutes them, so the MinHash math stays the library's.
    """
    tokens = _TOKEN.findall(text.lower())
    if not tokens:
        return []
    hashes = np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint64, count=len(tokens))
    if len(tokens) <= size:
        size = len(tokens)
    n = len(tokens) - size + 1
    rolled = hashes[:n].copy()
    for k in range(1, size):
        rolled = rolled * _ROLL + hashes[k : k + n]  # uint64 arithmetic wraps: a polynomial hash mod 2**64
    return (rolled & np.uint64(0xFFFFFFFF)).tolist()


def _identity(value: int) -> int:
    return value


class DocSketch:
    """The MinHash of one document, fed record by record; shingle hashes are applied in batches."""

    # Batching matters: each datasketch update has a fixed numpy overhead, and most records are short.
    BATCH = 1 << 13

    def __init__(self, minhash: MinHash) -> None:
        self.minhash = minhash
        self._pending: list[int] = []
        self.empty = True

    def add(self, text: str) -> None:
        self._pending.extend(shingle_hashes(text))
        if len(self._pending) >= self.BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.minhash.update_batch(self._pending)
            self._pending = []
            self.empty = False

    def finish(self) -> MinHash | None:
        """The document's MinHash, or None when it had no tokens at all (nothing to compare)."""
        self._flush()
        return None if self.empty else self.minhash


class NearDupIndex:
    """MinHash LSH over the documents kept so far (sorted order decides which of two near-duplicates stays)."""

    def __init__(self, threshold: float, num_perm: int = 128, seed: int = 1) -> None:
        self.lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        # Drawing the permutations costs ~0.3 ms; copying a pristine MinHash reuses them (matters per .jsonl row).
        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=_identity)
        self._count = 0

    def new_sketch(self) -> DocSketch:
        return DocSketch(self._template.copy())

    def from_values(self, hashvalues) -> MinHash:
        """A MinHash with these values (computed in a worker from the same seed), sharing the permutations."""
        return MinHash(num_perm=len(hashvalues), hashvalues=hashvalues, permutations=self._template.permutations,
                       hashfunc=_identity, scheme=self._template.scheme)  # fmt: skip

    def check_and_add(self, key: str, minhash: MinHash) -> str | None:
        """The key of a kept document this one nearly duplicates, or None (and then this one is indexed)."""
        matches = self.lsh.query(minhash)
        if matches:
            return min(matches, key=lambda m: m[0])[1]
        self.lsh.insert((self._count, key), minhash, check_duplication=False)
        self._count += 1
        return None
