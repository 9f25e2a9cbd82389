"""Stage 4: vocabulary surgery on pretrained models (trim to a domain)."""

from lmtailor.vocab.config import TrimConfig
from lmtailor.vocab.stage import run_trim

__all__ = ["TrimConfig", "run_trim"]
