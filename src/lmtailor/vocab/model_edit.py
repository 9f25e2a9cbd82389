"""Loading any HF model folder and slicing every vocabulary-sized tensor to the kept token ids.

The input embedding rows, a tied or untied output layer and its bias (MLM heads) are indexed by token id; slicing
them with the kept old ids (ascending, as the new ids are) gives the trimmed model exactly the original's vectors.
Task heads (classification, token classification) do not depend on the vocabulary and are kept as they are, with
their label maps in config.json.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import transformers
from transformers import AutoConfig, PreTrainedModel

from lmtailor.errors import InputFormatError
from lmtailor.models.folder import WEIGHT_SUFFIXES, check_model_folder

log = logging.getLogger(__name__)


def load_model(path: str | Path) -> PreTrainedModel:
    """The model a folder's config.json describes (its first architecture), or the bare AutoModel."""
    folder = Path(path)
    check_model_folder(folder)
    config = AutoConfig.from_pretrained(str(folder))
    arch = (config.architectures or [None])[0]
    cls = getattr(transformers, arch, None) if arch else None
    if cls is None:
        cls = transformers.AutoModel
    model = cls.from_pretrained(str(folder))
    if model.get_input_embeddings() is None:
        raise InputFormatError(f"model {path} ({arch}) has no input embeddings to trim.")
    return model.eval()


def vocab_tensors(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """Names of the parameters indexed by token id: input embeddings, output layer weight and bias."""
    vocab_size = model.get_input_embeddings().weight.shape[0]
    names = {}
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    targets = {id(emb)}
    if out is not None:
        targets.add(id(out.weight))
        if getattr(out, "bias", None) is not None:
            targets.add(id(out.bias))
    for name, tensor in model.state_dict(keep_vars=True).items():
        is_head_bias = name.endswith("bias") and tensor.dim() == 1 and tensor.shape[0] == vocab_size and out is not None
        if id(tensor) in targets or is_head_bias:
            names[name] = tensor
    return names


@torch.no_grad()
def slice_model(model: PreTrainedModel, kept: list[int]) -> PreTrainedModel:
    """A new model of the same class whose vocabulary is the rows `kept` (old ids, ascending) of the original."""
    index = torch.tensor(kept, dtype=torch.long)
    sliced = {name: t.detach()[index].clone() for name, t in vocab_tensors(model).items()}
    return _rebuild(model, sliced, len(kept), {old: new for new, old in enumerate(kept)})


@torch.no_grad()
def average_rows(model: PreTrainedModel, rows: list[list[int]], special_map: dict[int, int]) -> PreTrainedModel:
    """A new model whose token i has, in every vocabulary tensor, the mean of the old rows `rows[i]`.

    `special_map` (old id → new id) carries the special-token ids of the config (pad, bos, eos, ...).
    """
    flat = torch.tensor([i for r in rows for i in r], dtype=torch.long)
    offsets = torch.tensor([0, *torch.tensor([len(r) for r in rows]).cumsum(0).tolist()[:-1]], dtype=torch.long)
    averaged = {}
    for name, t in vocab_tensors(model).items():
        weight = t.detach().float() if t.dim() == 2 else t.detach().float().unsqueeze(1)
        # EmbeddingBag(mode="mean") averages a variable number of rows per output row in one call.
        rows_mean = torch.nn.functional.embedding_bag(flat, weight, offsets, mode="mean")
        averaged[name] = (rows_mean if t.dim() == 2 else rows_mean.squeeze(1)).to(t.dtype)
    return _rebuild(model, averaged, len(rows), special_map)


def _rebuild(
    model: PreTrainedModel, vocab_state: dict[str, torch.Tensor], vocab_size: int, old_to_new: dict[int, int]
) -> PreTrainedModel:
    state = {k: v for k, v in model.state_dict().items()}
    state.update(vocab_state)
    config = model.config.__class__.from_dict(model.config.to_dict())
    config.vocab_size = vocab_size
    for attr in (
        "pad_token_id",
        "bos_token_id",
        "eos_token_id",
        "sep_token_id",
        "cls_token_id",
        "decoder_start_token_id",
    ):
        value = getattr(config, attr, None)
        if isinstance(value, int):
            setattr(config, attr, old_to_new.get(value))
    new_model = model.__class__(config)
    missing, unexpected = new_model.load_state_dict(state, strict=False)
    tied = {k for k in missing if k in vocab_state or "decoder" in k}
    if set(missing) - tied or unexpected:
        raise InputFormatError(f"cannot rebuild {model.__class__.__name__}: missing {missing}, unexpected {unexpected}")
    if missing:
        new_model.tie_weights()
    return new_model.to(model.dtype).eval()


def count_parameters(model: PreTrainedModel) -> tuple[int, int]:
    """(all parameters, parameters in vocabulary-indexed tensors), counting tied tensors once."""
    seen: dict[int, int] = {}
    for p in model.parameters():
        seen[id(p)] = p.numel()
    vocab = {id(t): t.numel() for t in vocab_tensors(model).values()}
    return sum(seen.values()), sum(vocab.values())


STAGE_RESULTS = ("eval_", "predictions_", "confusion_", "metrics.jsonl", "sparsity_curve", "bench.")


def extra_files(src: Path) -> list[Path]:
    """Files beside the weights that describe how the model is used (e.g. sentence-transformers pooling)."""
    from lmtailor.vocab.tokenizer_edit import TOKENIZER_FILES

    skip = TOKENIZER_FILES | {"config.json", "lmtailor.json", "generation_config.json"}
    out = []
    for p in sorted(src.iterdir()):
        if p.name.startswith(".") or p.name in skip or p.name.endswith(WEIGHT_SUFFIXES) or "index.json" in p.name:
            continue
        if p.name.startswith(STAGE_RESULTS) or p.name.endswith("_report.json"):  # the input's results, not ours
            continue
        out.append(p)
    return out
