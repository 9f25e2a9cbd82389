"""Stage 2, `lmtailor terms`: mine domain terms from a corpus and merge them with user glossaries.

`run_mine(MineConfig(...))` and `run_merge(MergeConfig(...))` each write a folder holding `terms.tsv`;
`load_terms(path)` reads any term file (or such a folder) back as a clean list, best terms first. The configs and
`load_terms` are imported eagerly; the stages when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.lazy import lazy_names
from lmtailor.terms.config import MergeConfig, MineConfig
from lmtailor.terms.glossary import load_terms

if TYPE_CHECKING:
    from lmtailor.terms.stage import run_merge, run_mine

__all__ = ["MergeConfig", "MineConfig", "load_terms", "run_merge", "run_mine"]

__getattr__ = lazy_names(__name__, {"run_merge": "lmtailor.terms.stage", "run_mine": "lmtailor.terms.stage"})
