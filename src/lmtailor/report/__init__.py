"""`lmtailor report`: one self-contained HTML page (plots inlined, no network), a Markdown twin and JSON, from a build
or any lmtailor output folders: the product plan's key metrics as pass/fail, the ledger of every model built, plots,
and tokenisation examples where domain terms stay whole in the domain tokenizer and break in the general one.

`ReportConfig` is imported eagerly (`config` imports no matplotlib); `run_report` when first used."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.lazy import lazy_names
from lmtailor.report.config import ReportConfig

if TYPE_CHECKING:
    from lmtailor.report.stage import run_report

__all__ = ["ReportConfig", "run_report"]

__getattr__ = lazy_names(__name__, {"run_report": "lmtailor.report.stage"})
