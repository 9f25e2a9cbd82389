"""Stage 4: vocabulary surgery on pretrained models (trim to a domain, extend with terms, transfer to a tokenizer)."""

from lmtailor.vocab.config import TrimConfig
from lmtailor.vocab.extend import ExtendConfig, run_extend
from lmtailor.vocab.stage import run_trim
from lmtailor.vocab.transfer import TransferConfig, run_transfer

__all__ = ["ExtendConfig", "TransferConfig", "TrimConfig", "run_extend", "run_transfer", "run_trim"]
