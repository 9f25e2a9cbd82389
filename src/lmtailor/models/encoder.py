"""The layer stack of a BERT-family encoder: finding it in any HF model, and choosing which of its layers to keep.

Shared by `lmtailor prune` (dropping layers of a task model) and weight subcloning (`models.subclone`, a small BERT
initialised from chosen layers of a larger one).
"""

from __future__ import annotations

import numpy as np
import torch

from lmtailor.errors import ConfigError, InputFormatError


def encoder_layers(model) -> torch.nn.ModuleList:
    """The encoder's layer list of a BERT-family model (BERT, RoBERTa, ELECTRA, XLM-R, ...)."""
    layers = getattr(getattr(model.base_model, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not all(
        hasattr(lay, "intermediate") and hasattr(lay, "output") for lay in layers
    ):
        raise InputFormatError(
            f"{type(model).__name__} is not a BERT-family encoder (base_model.encoder.layer[i].intermediate/"
            "output); lmtailor prune supports BERT, RoBERTa, ELECTRA and their kin."
        )
    return layers


def choose_layers(n: int, keep: int, how: str, importance: np.ndarray | None = None) -> list[int]:
    """Sorted indices of the `keep` layers to keep out of `n`."""
    if keep > n:
        raise ConfigError(f"layers={keep} but the model has only {n} layers; choose at most {n}.")
    if how == "bottom":
        return list(range(keep))
    if how == "top":
        return list(range(n - keep, n))
    if how == "importance":
        assert importance is not None
        return sorted(int(i) for i in np.argsort(-importance, kind="stable")[:keep])
    # every_other: evenly spaced and ending with the last layer (6 -> 3 keeps 1, 3, 5), which the layer-drop
    # literature (Sajjad et al. 2023) found better than keeping the bottom layers for fine-tuned BERTs.
    return sorted({round(n - 1 - i * n / keep) for i in range(keep)})
