"""`lmtailor report`: one self-contained HTML page (plots inlined, no network), a Markdown twin and JSON, from a build
or any lmtailor output folders: the product plan's key metrics as pass/fail, the ledger of every model built, plots,
and tokenisation examples where domain terms stay whole in the domain tokenizer and break in the general one."""

from lmtailor.report.stage import ReportConfig, run_report

__all__ = ["ReportConfig", "run_report"]
