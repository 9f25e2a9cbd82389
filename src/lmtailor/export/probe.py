"""Probe batches and logit comparisons: now `lmtailor.models.probe`, which `export` and `quantize` share; the names
stay importable from here."""

from lmtailor.models.probe import PROBE_SHAPES, compare, probe_batches

__all__ = ["PROBE_SHAPES", "compare", "probe_batches"]
