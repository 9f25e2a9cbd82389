"""Weight subcloning: initialise a small BERT from a larger pretrained one instead of from random weights.

A preset trained from scratch on a 2-core CPU sees a few million tokens in its budget and stays a weak language
model. Samragh et al. (2023, "Weight subcloning: direct initialization of transformers using larger pretrained
ones") showed that a smaller transformer initialised with a subset of a larger one's weights trains to the same
loss several times faster. The subset is chosen by activation magnitude on domain text, with no gradients:

- **Hidden (embedding) dimensions**: a few dimensions of BERT's residual stream carry most of its magnitude, and
  the same ones in every layer (the residual connections carry them through). Each dimension is scored by its mean
  |activation| over the embedding output and every layer's output; the top `hidden` are kept in every tensor that
  reads or writes the residual stream (embeddings, attention and FFN projections, LayerNorms, the MLM transform).
- **Layers**: evenly spaced, ending with the last (`every_other`, as `lmtailor prune` does).
- **Attention heads**, per kept layer: the heads whose context vectors have the largest mean norm. The head size
  stays the source's, so the subclone has hidden / head_size heads (MiniLM's heads are 32 wide, so a hidden-256
  subclone has 8 heads; parameters do not depend on the head count).
- **FFN neurons**, per kept layer: the largest mean |GELU output|.
- **LayerNorm scale**: a LayerNorm over fewer dimensions divides by a different standard deviation. For each one,
  the mean ratio σ(kept dims) / σ(all dims) of its input on the calibration text multiplies its weight, so the kept
  dimensions come out of it at the scale the next layer was trained on.

The result is a plain `BertForMaskedLM`: every later stage and HF tool loads it. Vocabulary and position tables keep
their rows; give the source the domain tokenizer first (`lmtailor vocab transfer`).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.models.encoder import choose_layers, encoder_layers
from lmtailor.models.presets import Shape

log = logging.getLogger(__name__)


@dataclass
class SubcloneReport:
    source_shape: dict
    shape: dict
    layers: list[int]
    hidden_dims_kept_share_of_magnitude: float
    heads: list[list[int]]
    layernorm_scale: dict[str, float]
    fidelity_cosine: float  # subclone's last hidden state vs the source's, on the kept dims, calibration tokens
    calibration_tokens: int


def _check(source, shape: Shape) -> tuple[int, int]:
    if not isinstance(source, BertForMaskedLM):
        raise InputFormatError(
            f"subcloning needs a BERT masked-LM model (BertForMaskedLM), not {type(source).__name__}; "
            "convert the source to BERT or pretrain the preset from scratch."
        )
    c = source.config
    head_size = c.hidden_size // c.num_attention_heads
    big = {"layers": c.num_hidden_layers, "hidden": c.hidden_size, "intermediate": c.intermediate_size}
    small = {"layers": shape.layers, "hidden": shape.hidden, "intermediate": shape.intermediate}
    too_big = [f"{k} {small[k]} > {big[k]}" for k in big if small[k] > big[k]]
    if too_big:
        raise ConfigError(f"a subclone must be smaller than its source: {', '.join(too_big)}; pick a smaller preset.")
    if shape.hidden % head_size:
        raise ConfigError(
            f"hidden {shape.hidden} is not a multiple of the source's head size {head_size}; the subclone keeps "
            "whole heads of the source. Pick a hidden size that is."
        )
    return head_size, shape.hidden // head_size


def _layer_norms(model: BertForMaskedLM) -> dict[str, torch.nn.LayerNorm]:
    """Every LayerNorm over the residual stream, by the name it has in the model."""
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.LayerNorm)}


@torch.no_grad()
def _activation_stats(source: BertForMaskedLM, batches: list[dict]) -> dict:
    """Mean |activation| of the residual dims, FFN neurons and heads; LayerNorm inputs kept for the scale pass."""
    layers = encoder_layers(source)
    c = source.config
    head_size = c.hidden_size // c.num_attention_heads
    ffn = torch.zeros(len(layers), c.intermediate_size, dtype=torch.float64)
    heads = torch.zeros(len(layers), c.num_attention_heads, dtype=torch.float64)
    dims = torch.zeros(c.hidden_size, dtype=torch.float64)
    tokens = 0
    mask_now: dict[str, torch.Tensor] = {}
    hooks = []
    for li, layer in enumerate(layers):

        def ffn_hook(_m, _i, out, li=li):
            ffn[li] += out[mask_now["m"]].abs().sum(0).double()

        def head_hook(_m, inputs, li=li):
            ctx = inputs[0][mask_now["m"]]  # [T, heads * head_size]: the context vectors before the output projection
            if ctx.shape[0]:
                heads[li] += ctx.view(ctx.shape[0], -1, head_size).norm(dim=-1).sum(0).double()

        hooks.append(layer.intermediate.register_forward_hook(ffn_hook))
        hooks.append(layer.attention.output.dense.register_forward_pre_hook(head_hook))
    try:
        source.eval()
        for batch in batches:
            m = batch["attention_mask"].bool()
            mask_now["m"] = m
            out = source.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                              output_hidden_states=True)  # fmt: skip
            for h in out.hidden_states:
                dims += h[m].abs().sum(0).double()
            tokens += int(m.sum())
    finally:
        for h in hooks:
            h.remove()
    if tokens == 0:
        raise InputFormatError("the calibration text for subcloning has no tokens; check the corpus.")
    return {"ffn": (ffn / tokens).numpy(), "heads": (heads / tokens).numpy(),
            "dims": (dims / tokens / (len(layers) + 1)).numpy(), "tokens": tokens}  # fmt: skip


@torch.no_grad()
def _layernorm_scales(source: BertForMaskedLM, batches: list[dict], dims: torch.Tensor) -> dict[str, float]:
    """For each LayerNorm: mean over tokens of σ(its input on the kept dims) / σ(on all dims)."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    mask_now: dict[str, torch.Tensor] = {}
    hooks = []
    for name, ln in _layer_norms(source).items():

        def hook(_m, inputs, name=name):
            x = inputs[0]
            x = x[mask_now["m"]] if x.dim() == 3 else x
            ratio = x[:, dims].std(-1, unbiased=False) / x.std(-1, unbiased=False).clamp(min=1e-12)
            sums[name] = sums.get(name, 0.0) + float(ratio.sum())
            counts[name] = counts.get(name, 0) + ratio.numel()

        hooks.append(ln.register_forward_pre_hook(hook))
    try:
        for batch in batches:
            mask_now["m"] = batch["attention_mask"].bool()
            hidden = source.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
            source.cls.predictions.transform(hidden[mask_now["m"]])  # the MLM head's LayerNorm too
    finally:
        for h in hooks:
            h.remove()
    return {name: sums[name] / counts[name] for name in sums}


def _head_rows(heads: list[int], head_size: int) -> torch.Tensor:
    return torch.cat([torch.arange(h * head_size, (h + 1) * head_size) for h in heads])


def _copy_linear(dst: torch.nn.Linear, src: torch.nn.Linear, rows: torch.Tensor, cols: torch.Tensor) -> None:
    dst.weight.copy_(src.weight[rows][:, cols])
    if src.bias is not None:
        dst.bias.copy_(src.bias[rows])


def _copy_layernorm(dst: torch.nn.LayerNorm, src: torch.nn.LayerNorm, dims: torch.Tensor, scale: float) -> None:
    dst.weight.copy_(src.weight[dims] * scale)
    dst.bias.copy_(src.bias[dims])


@torch.no_grad()
def subclone(source: BertForMaskedLM, shape: Shape, batches: list[dict]) -> tuple[BertForMaskedLM, SubcloneReport]:
    """A `BertForMaskedLM` of `shape` (hidden, layers, intermediate; heads follow from the source's head size)
    whose weights are the most active subset of `source`'s, measured on `batches` (input_ids, attention_mask)."""
    head_size, n_heads = _check(source, shape)
    c = source.config
    stats = _activation_stats(source, batches)
    dims = torch.as_tensor(np.sort(np.argsort(-stats["dims"], kind="stable")[: shape.hidden]), dtype=torch.long)
    keep_layers = choose_layers(c.num_hidden_layers, shape.layers, "every_other")
    scales = _layernorm_scales(source, batches, dims)

    config = BertConfig.from_dict({**c.to_dict(), "hidden_size": shape.hidden, "num_hidden_layers": shape.layers,
                                   "num_attention_heads": n_heads, "intermediate_size": shape.intermediate,
                                   "architectures": ["BertForMaskedLM"]})  # fmt: skip
    model = BertForMaskedLM(config).eval()
    src_emb, dst_emb = source.bert.embeddings, model.bert.embeddings
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        getattr(dst_emb, name).weight.copy_(getattr(src_emb, name).weight[:, dims])
    _copy_layernorm(dst_emb.LayerNorm, src_emb.LayerNorm, dims, scales["bert.embeddings.LayerNorm"])

    src_layers, kept_heads = encoder_layers(source), []
    for new, old in enumerate(keep_layers):
        s, d = src_layers[old], model.bert.encoder.layer[new]
        heads = sorted(int(h) for h in np.argsort(-stats["heads"][old], kind="stable")[:n_heads])
        kept_heads.append(heads)
        rows = _head_rows(heads, head_size)
        for proj in ("query", "key", "value"):
            _copy_linear(getattr(d.attention.self, proj), getattr(s.attention.self, proj), rows, dims)
        _copy_linear(d.attention.output.dense, s.attention.output.dense, dims, rows)
        neurons = torch.as_tensor(np.sort(np.argsort(-stats["ffn"][old], kind="stable")[: shape.intermediate]))
        _copy_linear(d.intermediate.dense, s.intermediate.dense, neurons, dims)
        _copy_linear(d.output.dense, s.output.dense, dims, neurons)
        prefix = f"bert.encoder.layer.{old}."
        _copy_layernorm(d.attention.output.LayerNorm, s.attention.output.LayerNorm, dims,
                        scales[prefix + "attention.output.LayerNorm"])  # fmt: skip
        _copy_layernorm(d.output.LayerNorm, s.output.LayerNorm, dims, scales[prefix + "output.LayerNorm"])

    s_head, d_head = source.cls.predictions, model.cls.predictions
    _copy_linear(d_head.transform.dense, s_head.transform.dense, dims, dims)
    _copy_layernorm(d_head.transform.LayerNorm, s_head.transform.LayerNorm, dims,
                    scales["cls.predictions.transform.LayerNorm"])  # fmt: skip
    d_head.bias.copy_(s_head.bias)
    model.tie_weights()

    report = SubcloneReport(
        source_shape={
            "layers": c.num_hidden_layers,
            "hidden": c.hidden_size,
            "heads": c.num_attention_heads,
            "intermediate": c.intermediate_size,
        },
        shape={**asdict(shape), "heads": n_heads},
        layers=keep_layers,
        hidden_dims_kept_share_of_magnitude=round(float(stats["dims"][dims.numpy()].sum() / stats["dims"].sum()), 4),
        heads=kept_heads,
        layernorm_scale={k: round(v, 4) for k, v in scales.items()},
        fidelity_cosine=round(fidelity(source, model, batches, dims), 4),
        calibration_tokens=stats["tokens"],
    )
    log.info(
        "subclone: layers %s, %d of %d dims (%.0f%% of the magnitude), fidelity %.3f",
        keep_layers,
        shape.hidden,
        c.hidden_size,
        100 * report.hidden_dims_kept_share_of_magnitude,
        report.fidelity_cosine,
    )
    return model, report


@torch.no_grad()
def fidelity(source: BertForMaskedLM, clone: BertForMaskedLM, batches: list[dict], dims: torch.Tensor) -> float:
    """Mean cosine between the clone's last hidden states and the source's on the kept dims (1.0: the same)."""
    total, n = 0.0, 0
    source.eval()
    clone.eval()
    for batch in batches:
        m = batch["attention_mask"].bool()
        a = source.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0][m][:, dims]
        b = clone.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0][m]
        total += float(torch.nn.functional.cosine_similarity(a, b, dim=-1).sum())
        n += int(m.sum())
    return total / max(n, 1)
