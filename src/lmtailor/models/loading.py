"""Loading a checkpoint for a task it was not saved for, with a plain account of what is new instead of alarms.

Fine-tuning loads an MLM checkpoint as a classifier; continued pretraining loads a sentence encoder (MiniLM, saved as
a `BertModel`) as an MLM. Both are expected to lack a head, and transformers answers each with a LOAD REPORT table
and, for an encoder without an MLM head, "This checkpoint seem corrupted". lmtailor logs one line instead: which head
is new, which one was dropped. What is *not* expected, encoder weights missing or of another shape, is logged as a
warning naming them, since the model then starts partly random (another architecture, or a damaged file).
"""

from __future__ import annotations

import logging
from collections import Counter

from transformers import AutoModelForMaskedLM, PreTrainedModel
from transformers.utils import logging as hf_logging

from lmtailor.models.folder import check_model_folder

log = logging.getLogger(__name__)


def _is_head(key: str, base: str) -> bool:
    """A tensor of a task head: outside the base model (`cls.`, `classifier.`, `lm_head.`), or its pooler."""
    return not key.startswith(f"{base}.") or key.startswith((f"{base}.pooler.", "pooler."))


def _modules(keys: list[str], base: str) -> str:
    """`classifier (2), bert.pooler (2)`: the head modules the keys belong to, with their tensor counts."""
    counts = Counter(".".join(k.split(".")[: 2 if k.startswith(f"{base}.") else 1]) for k in keys)
    return ", ".join(f"{m} ({n})" for m, n in sorted(counts.items()))


def load_pretrained(auto, name: str, **kwargs) -> tuple[PreTrainedModel, list[str]]:
    """`auto.from_pretrained(name, **kwargs)`, and the names of the head tensors it had to initialise."""
    check_model_folder(name)
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model, info = auto.from_pretrained(name, output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
    base = getattr(model, "base_model_prefix", "")  # "" (no base model): every new tensor is a head's
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", []))
    new = sorted({*info["missing_keys"], *mismatched})
    head = [k for k in new if _is_head(k, base)]
    body = [k for k in new if not _is_head(k, base)]
    dropped = sorted(k for k in info.get("unexpected_keys", []) if _is_head(k, base))
    if head:
        log.info("%s: new %s, initialised for %s%s", name, _modules(head, base), type(model).__name__,
                 f"; not used: {_modules(dropped, base)}" if dropped else "")  # fmt: skip
    if body:
        log.warning("%s lacks %d encoder tensors (or has them in another shape), which start random: %s%s", name,
                    len(body), ", ".join(body[:8]), " …" if len(body) > 8 else "")  # fmt: skip
    return model, head


def load_mlm(name: str) -> tuple[PreTrainedModel, list[str]]:
    """An MLM from `name`; a sentence encoder saved without the MLM head gets a new one, its decoder tied to the word
    embeddings (the second value names its tensors; empty for an MLM checkpoint)."""
    return load_pretrained(AutoModelForMaskedLM, name)
