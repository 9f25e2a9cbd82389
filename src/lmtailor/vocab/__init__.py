"""Stage 4: vocabulary surgery on pretrained models (trim to a domain, extend with terms, transfer to a tokenizer).

The configs are imported eagerly (`config` imports no torch); the stages, which import torch and tokenizers, when
first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.lazy import lazy_names
from lmtailor.vocab.config import ExtendConfig, TransferConfig, TrimConfig

if TYPE_CHECKING:
    from lmtailor.vocab.extend import run_extend
    from lmtailor.vocab.transfer import run_transfer
    from lmtailor.vocab.trim import run_trim

_LAZY = {
    "run_extend": "lmtailor.vocab.extend",
    "run_transfer": "lmtailor.vocab.transfer",
    "run_trim": "lmtailor.vocab.trim",
}

__all__ = ["ExtendConfig", "TransferConfig", "TrimConfig", "run_extend", "run_transfer", "run_trim"]

__getattr__ = lazy_names(__name__, _LAZY)
