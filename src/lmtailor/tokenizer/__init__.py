"""Stage 3: domain tokenizers (train, evaluate against a reference).

The configs are imported eagerly (`config` imports no tokenizers); the stages when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmtailor.lazy import lazy_names
from lmtailor.tokenizer.config import TokenizerEvalConfig, TokenizerTrainConfig

if TYPE_CHECKING:
    from lmtailor.tokenizer.stage import run_eval, run_train

__all__ = ["TokenizerEvalConfig", "TokenizerTrainConfig", "run_eval", "run_train"]

__getattr__ = lazy_names(__name__, {"run_eval": "lmtailor.tokenizer.stage", "run_train": "lmtailor.tokenizer.stage"})
