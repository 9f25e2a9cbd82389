"""Stage 3: domain tokenizers (train, evaluate against a reference)."""

from lmtailor.tokenizer.config import TokenizerEvalConfig, TokenizerTrainConfig
from lmtailor.tokenizer.stage import run_eval, run_train

__all__ = ["TokenizerEvalConfig", "TokenizerTrainConfig", "run_eval", "run_train"]
