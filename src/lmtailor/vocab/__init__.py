"""Stage 4: vocabulary surgery on pretrained models (trim to a domain, extend with terms)."""

from lmtailor.vocab.config import TrimConfig
from lmtailor.vocab.extend import ExtendConfig, run_extend
from lmtailor.vocab.stage import run_trim

__all__ = ["ExtendConfig", "TrimConfig", "run_extend", "run_trim"]
