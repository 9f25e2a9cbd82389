"""`lmtailor prune`: structured pruning of a BERT-family task model into a dense, smaller model of the same class.

What is removed, and why only this:
- **Whole layers**, chosen by a pattern (`every_other`, `bottom`, `top`) or by importance. A standard config
  expresses any layer count, so the result loads with plain `AutoModel*.from_pretrained`.
- **FFN neurons**, by importance, to one `ffn_size` shared by every kept layer (a BERT config has one
  `intermediate_size`). The FFN holds two thirds of a BERT layer's weights (2·h·4h of 12·h²), so this is where
  structured pruning saves most.
- **Attention heads are not removed.** transformers 5 dropped `prune_heads`, and a BERT config derives the head
  size from hidden/heads, so "12 heads of 32" cannot become "8 heads of 32" without a custom architecture, which
  would break `AutoModel` loading everywhere downstream (ONNX export, TextBrewer-style tools, the Hub). Masking
  heads and folding the mask into the weights keeps every byte and every FLOP, so it is not offered as a saving.
  Head importance is still measured and written to the manifest (`head_importance`) so a user can see how much
  the heads differ. At sequence length 128 the attention projections are 4·h² per token against the FFN's 8·h²,
  so layers + FFN reach the same size/speed targets.

Importance is first-order Taylor, |w · ∂L/∂w| summed over a group's weights and over batches of task data
(Molchanov et al. 2019; the criterion TextPruner also uses), with the task loss on the labelled file. With
`iterations` > 1 the FFN is cut in steps, re-measuring importance on the smaller model each time; distillation
between steps is done by chaining `prune` and `distill` stages in a recipe.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification, DataCollatorWithPadding

from lmtailor.compress.config import PruneConfig
from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.models.encoder import choose_layers, encoder_layers
from lmtailor.models.task_folder import TASK_FILE, load_task_model
from lmtailor.outputs import stage_output, write_json
from lmtailor.tasks.align import encode_cls, encode_ner
from lmtailor.tasks.readers import read_cls, read_ner

log = logging.getLogger(__name__)


def keep_only_layers(model, keep: list[int]) -> None:
    layers = encoder_layers(model)
    model.base_model.encoder.layer = torch.nn.ModuleList([layers[i] for i in keep])
    model.config.num_hidden_layers = len(keep)
    for new_index, layer in enumerate(model.base_model.encoder.layer):
        for module in layer.modules():  # attention modules that know their index (for caches) must agree
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index


def _slice_linear(linear: torch.nn.Linear, index: torch.Tensor, dim: int) -> torch.nn.Linear:
    """A new Linear keeping rows (dim 0, outputs) or columns (dim 1, inputs) `index` of `linear`."""
    w = linear.weight.detach().index_select(dim, index).clone()
    bias = linear.bias is not None
    new = torch.nn.Linear(w.shape[1], w.shape[0], bias=bias, dtype=w.dtype, device=w.device)
    new.weight.data.copy_(w)
    if bias:
        new.bias.data.copy_(linear.bias.detach() if dim == 1 else linear.bias.detach()[index])
    return new


def shrink_ffn(model, keep: list[torch.Tensor]) -> None:
    """Keep neurons keep[l] (indices, in their original order) of every layer's FFN."""
    sizes = {len(k) for k in keep}
    if len(sizes) != 1:
        raise ValueError("every layer must keep the same number of FFN neurons (one intermediate_size)")
    for layer, idx in zip(encoder_layers(model), keep, strict=True):
        idx = torch.as_tensor(sorted(int(i) for i in idx), dtype=torch.long)
        layer.intermediate.dense = _slice_linear(layer.intermediate.dense, idx, 0)
        layer.output.dense = _slice_linear(layer.output.dense, idx, 1)
    model.config.intermediate_size = sizes.pop()


def _batches(model, tokenizer, spec, config: PruneConfig) -> list[dict]:
    if config.data is None:
        raise ConfigError("importance needs labelled data: set `data` (the train split) or prune by pattern only.")
    label2id = {v: int(k) for k, v in model.config.id2label.items()}
    if spec.task == "cls":
        data = read_cls(config.data, text_field=config.text_field, label_field=config.label_field)
        unknown = sorted({ex.label for ex in data.examples} - set(label2id))
        if unknown:
            raise InputFormatError(f"{config.data} has labels the model does not know: {unknown[:5]}.")
        enc = encode_cls(tokenizer, [ex.text for ex in data.examples], [label2id[ex.label] for ex in data.examples],
                         spec.max_length, "head", 0)  # fmt: skip
        collate = DataCollatorWithPadding(tokenizer)
    else:
        data = read_ner(config.data)
        enc = encode_ner(tokenizer, data.examples, label2id, spec.max_length, spec.stride)
        collate = DataCollatorForTokenClassification(tokenizer)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(enc.features))[: config.batches * config.batch_size]
    feats = [enc.features[i] for i in order]
    return [collate(feats[b : b + config.batch_size]) for b in range(0, len(feats), config.batch_size)]


def taylor_importance(model, batches: list[dict]) -> dict[str, np.ndarray]:
    """Per-layer, per-FFN-neuron and per-head |w·g| summed over `batches` (task loss).

    Returns {"layer": [L], "ffn": [L, I], "head": [L, H]}."""
    layers = encoder_layers(model)
    n_heads = model.config.num_attention_heads
    ffn = torch.zeros(len(layers), model.config.intermediate_size, dtype=torch.float64)
    head = torch.zeros(len(layers), n_heads, dtype=torch.float64)
    layer = torch.zeros(len(layers), dtype=torch.float64)
    model.train()  # dropout on, as in training: importance under the conditions the weights will be used in
    for batch in batches:
        model.zero_grad(set_to_none=True)
        model(**batch).loss.backward()
        with torch.no_grad():
            for li, lay in enumerate(layers):
                inter, out = lay.intermediate.dense, lay.output.dense
                s = (inter.weight * inter.weight.grad).abs().sum(1) + (out.weight * out.weight.grad).abs().sum(0)
                if inter.bias is not None:
                    s = s + (inter.bias * inter.bias.grad).abs()
                ffn[li] += s.double()
                attn_out = lay.attention.output.dense  # input columns are grouped by head: [h, heads * head_size]
                per_col = (attn_out.weight * attn_out.weight.grad).abs().sum(0)
                head[li] += per_col.view(n_heads, -1).sum(1).double()
                layer[li] += sum((p * p.grad).abs().sum().double() for p in lay.parameters() if p.grad is not None)
    model.zero_grad(set_to_none=True)
    model.eval()
    return {"layer": layer.numpy(), "ffn": ffn.numpy(), "head": head.numpy()}


def run_prune(config: PruneConfig) -> Path:
    model, tokenizer, spec = load_task_model(config.model)
    if not isinstance(model, torch.nn.Module) or getattr(spec, "torch_int8", False):
        raise InputFormatError(
            f"{config.model} is an exported or quantised model; prune the fp32 fine-tuned folder, then quantise."
        )
    layers = encoder_layers(model)
    n_layers, n_ffn = len(layers), model.config.intermediate_size
    before = sum(p.numel() for p in model.parameters())
    if config.ffn_size and config.ffn_size > n_ffn:
        raise ConfigError(f"ffn_size={config.ffn_size} but the model's FFN has only {n_ffn} neurons.")
    if config.keep_layers is not None:
        bad = [i for i in config.keep_layers if not 0 <= i < n_layers]
        if bad or not config.keep_layers or len(set(config.keep_layers)) != len(config.keep_layers):
            raise ConfigError(f"keep_layers={config.keep_layers}: give distinct indices in 0..{n_layers - 1}.")
    needs_data = config.ffn_size is not None or (config.layers and config.layer_choice == "importance")
    batches = _batches(model, tokenizer, spec, config) if needs_data else []
    torch.manual_seed(config.seed)
    report: dict = {"layers_before": n_layers, "ffn_before": n_ffn, "params_before": before}
    imp = taylor_importance(model, batches) if batches else None
    if imp is not None:
        report["layer_importance"] = [round(float(x), 4) for x in imp["layer"]]
        report["head_importance"] = [[round(float(x), 4) for x in row] for row in imp["head"]]
    if config.keep_layers is not None:
        keep = sorted(config.keep_layers)
    elif config.layers:
        keep = choose_layers(n_layers, config.layers, config.layer_choice, imp["layer"] if imp else None)
    else:
        keep = list(range(n_layers))
    keep_only_layers(model, keep)
    report["kept_layers"] = keep
    if config.ffn_size is not None and config.ffn_size < n_ffn:
        sizes = np.linspace(n_ffn, config.ffn_size, config.iterations + 1).round().astype(int)[1:]
        for step, size in enumerate(sizes):
            # importance of the kept layers only; the first step reuses the measurement made before layer removal
            ffn = imp["ffn"][keep] if step == 0 and imp is not None else taylor_importance(model, batches)["ffn"]
            shrink_ffn(model, [torch.as_tensor(np.argsort(-row, kind="stable")[:size]) for row in ffn])
            log.info("prune step %d/%d: FFN %d neurons", step + 1, len(sizes), size)
    report["ffn_after"] = model.config.intermediate_size
    report["params_after"] = sum(p.numel() for p in model.parameters())
    report["params_ratio"] = round(report["params_after"] / before, 4)
    return _write(config, model, tokenizer, report)


def _write(config: PruneConfig, model, tokenizer, report: dict) -> Path:
    with stage_output(config) as out:
        out.add_input("model", Path(config.model))
        if config.data is not None:
            out.add_input("data", Path(config.data))
        model.save_pretrained(str(out.dir))
        tokenizer.save_pretrained(str(out.dir))
        if (Path(config.model) / TASK_FILE).is_file():
            shutil.copy(Path(config.model) / TASK_FILE, out.dir / TASK_FILE)
        write_json(out.dir / "prune_report.json", report)
        out.metrics.update({k: v for k, v in report.items() if "importance" not in k})
    log.info("pruned: %s", json.dumps({k: v for k, v in report.items() if "importance" not in k}))
    return Path(config.out_dir)
