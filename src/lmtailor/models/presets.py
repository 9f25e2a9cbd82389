"""lmtailor's own small BERT family: named presets of a plain HF `BertConfig`, sized for a domain vocabulary.

The presets are ordinary `BertForMaskedLM` models, so every later stage (fine-tune, distil, prune, export) and every
HF tool loads them with `AutoModel*.from_pretrained`. Only the shape is ours; the vocabulary size and the special
token ids come from the domain tokenizer the model is built for, so the embedding table never carries tokens the
domain does not use (the product plan's point: 8k domain tokens instead of 30k general ones).

- `tiny`: 2 layers, hidden 64 — tests and smoke runs.
- `mini`: 4 layers, hidden 256, 4 heads — pretrains on a 2-core CPU in under an hour.
- `small`: 6 layers, hidden 512, 8 heads — the shape of LEGAL-BERT-SMALL.
- `litebert`: 6 layers, hidden 768, 12 heads — the design in the product plan (49.7M parameters with 8k tokens).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerBase

from lmtailor.errors import ConfigError


@dataclass(frozen=True)
class Shape:
    """The size of a BERT encoder; vocabulary and special tokens come from the tokenizer."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    max_positions: int = 512

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ConfigError(f"hidden size {self.hidden} is not divisible by {self.heads} heads; pick another.")


PRESETS: dict[str, Shape] = {
    "tiny": Shape(layers=2, hidden=64, heads=2, intermediate=256),
    "mini": Shape(layers=4, hidden=256, heads=4, intermediate=1024),
    "small": Shape(layers=6, hidden=512, heads=8, intermediate=2048),
    "litebert": Shape(layers=6, hidden=768, heads=12, intermediate=3072),
}


def preset_shape(name: str) -> Shape:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; choose one of {', '.join(PRESETS)}.") from None


def bert_config(shape: Shape, vocab_size: int, pad_token_id: int = 0, **special: int | None) -> BertConfig:
    """A `BertConfig` of this shape (GELU, dropout 0.1, LayerNorm eps 1e-12: BERT's own defaults)."""
    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.intermediate,
        max_position_embeddings=shape.max_positions,
        type_vocab_size=2,
        pad_token_id=pad_token_id,
        **{k: v for k, v in special.items() if v is not None},
    )


def build_mlm(preset: str | Shape, tokenizer: PreTrainedTokenizerBase, max_positions: int | None = None):
    """A freshly initialised `BertForMaskedLM` of `preset` for `tokenizer`'s vocabulary (seed with torch first)."""
    shape = preset_shape(preset) if isinstance(preset, str) else preset
    if max_positions is not None:
        shape = Shape(**{**asdict(shape), "max_positions": max_positions})
    if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
        raise ConfigError(
            "the tokenizer has no [MASK] or [PAD] token, which MLM pretraining needs; train it with lmtailor "
            "tokenizer (it adds both) or add them to its special tokens."
        )
    config = bert_config(
        shape, len(tokenizer), tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id, eos_token_id=tokenizer.sep_token_id,
    )  # fmt: skip
    return BertForMaskedLM(config)
