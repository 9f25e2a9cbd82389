"""Known-answer tests of unstructured magnitude pruning on hand-made Linear layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmtailor.compress.unstructured import count_zeros, csr_bytes, magnitude_prune, prune_targets


def _linear(values: list[float], rows: int = 2) -> nn.Linear:
    layer = nn.Linear(len(values) // rows, rows)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(values).view(rows, -1))
    return layer


def test_per_layer_zeroes_exactly_the_smallest_magnitudes() -> None:
    layer = _linear([0.5, -0.1, 0.3, -0.8, 0.05, 0.7, -0.2, 0.9])
    targets = [("a", layer)]
    magnitude_prune(targets, 0.5, "per_layer")
    # The four smallest |w| are 0.05, 0.1, 0.2, 0.3.
    assert torch.equal(layer.weight, torch.tensor([[0.5, 0.0, 0.0, -0.8], [0.0, 0.7, 0.0, 0.9]]))
    assert not hasattr(layer, "weight_orig") and isinstance(layer.weight, nn.Parameter)  # made permanent
    assert count_zeros(targets)["sparsity"] == 0.5


def test_global_threshold_spans_layers() -> None:
    small = _linear([0.01, 0.02, 0.03, 0.04])
    big = _linear([1.0, 2.0, 3.0, 4.0])
    targets = [("small", small), ("big", big)]
    magnitude_prune(targets, 0.5, "global")
    assert small.weight.abs().sum() == 0 and (big.weight != 0).all()
    counted = count_zeros(targets)
    assert counted == {"zeros": 4, "weights": 8, "sparsity": 0.5, "per_module": {"small": 1.0, "big": 0.0}}


@pytest.mark.parametrize("sparsity", [0.1, 0.33, 0.5, 0.9])
def test_achieved_sparsity_matches_request_within_rounding(sparsity: float) -> None:
    torch.manual_seed(0)
    layers = [("a", nn.Linear(17, 13)), ("b", nn.Linear(13, 7))]
    magnitude_prune(layers, sparsity, "global")
    counted = count_zeros(layers)
    assert counted["zeros"] == round(sparsity * counted["weights"])


def test_zero_sparsity_changes_nothing_and_csr_estimate() -> None:
    layer = _linear([1.0, 2.0, 3.0, 4.0])
    magnitude_prune([("a", layer)], 0.0)
    assert layer.weight.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    # 4 non-zeros x (4 value + 4 index bytes) + 3 row pointers x 4 bytes.
    assert csr_bytes([("a", layer)]) == 4 * 8 + 3 * 4


def test_targets_leave_embeddings_and_head_dense_by_default() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(
        BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    )
    names = [n for n, _ in prune_targets(model)]
    assert len(names) == 2 * 6 and all(n.startswith("bert.encoder.") for n in names)
    everything = [n for n, _ in prune_targets(model, embeddings=True, head=True)]
    assert {"classifier", "bert.pooler.dense", "bert.embeddings.word_embeddings"} <= set(everything)
