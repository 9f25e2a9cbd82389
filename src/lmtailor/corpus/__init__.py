"""Stage 1, `lmtailor corpus`: turn folders of real documents into a clean, de-duplicated, split corpus.

`run(CorpusConfig(...))` writes the corpus folder; `iter_texts(paths, split)` is how later stages read text,
from such a folder or straight from raw documents. `CorpusConfig` is imported eagerly; the rest (near-duplicate
detection pulls in datasketch and scipy) when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.corpus.config import CorpusConfig
from lmtailor.lazy import lazy_names

if TYPE_CHECKING:
    from lmtailor.corpus.source import Record, iter_records, iter_texts
    from lmtailor.corpus.stage import run

_LAZY = {
    "Record": "lmtailor.corpus.source",
    "iter_records": "lmtailor.corpus.source",
    "iter_texts": "lmtailor.corpus.source",
    "run": "lmtailor.corpus.stage",
}

__all__ = ["CorpusConfig", "Record", "iter_records", "iter_texts", "run"]

__getattr__ = lazy_names(__name__, _LAZY)
