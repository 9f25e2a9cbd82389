"""Stage 2, `lmtailor terms`: mine domain terms from a corpus and merge them with user glossaries.

`run_mine(MineConfig(...))` and `run_merge(MergeConfig(...))` each write a folder holding `terms.tsv`;
`load_terms(path)` reads any term file (or such a folder) back as a clean list, best terms first.
"""

from lmtailor.terms.config import MergeConfig, MineConfig
from lmtailor.terms.glossary import load_terms
from lmtailor.terms.stage import run_merge, run_mine

__all__ = ["MergeConfig", "MineConfig", "load_terms", "run_merge", "run_mine"]
