"""Stage 1, `lmtailor corpus`: turn folders of real documents into a clean, de-duplicated, split corpus.

`run(CorpusConfig(...))` writes the corpus folder; `iter_texts(paths, split)` is how later stages read text,
from such a folder or straight from raw documents.
"""

from lmtailor.corpus.config import CorpusConfig
from lmtailor.corpus.source import Record, iter_records, iter_texts
from lmtailor.corpus.stage import run

__all__ = ["CorpusConfig", "Record", "iter_records", "iter_texts", "run"]
