"""Known answers for the logit comparison behind export parity and the quantisation report."""

from __future__ import annotations

import numpy as np

from lmtailor.export.probe import compare


def test_compare_ignores_padded_positions_of_token_logits():
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    batch = {"input_ids": np.zeros((2, 3), np.int64), "attention_mask": mask}
    ref = np.zeros((2, 3, 2), np.float32)
    ref[..., 0] = 1.0  # every position predicts class 0
    got = ref.copy()
    got[0, 1] = [0.0, 2.0]  # a real position changes its argmax: |diff| 1 and 2
    got[0, 2] = [99.0, -99.0]  # padding: whatever is there does not count
    got[1, 1:] = [0.0, 50.0]
    result = compare(lambda b: ref, lambda b: got, [batch])
    assert result["max_abs_diff"] == 2.0 and result["positions"] == 3
    assert result["argmax_agreement"] == round(2 / 3, 6) and result["shapes"] == [[2, 3]]
    assert result["mean_abs_diff"] == 0.5  # (0 + 0 + 1 + 2 + 0 + 0) / 6 values over 3 positions x 2 classes


def test_compare_sequence_logits_over_batches():
    batches = [{"input_ids": np.zeros((n, 4), np.int64), "attention_mask": np.ones((n, 4))} for n in (1, 3)]
    ref = {1: np.array([[0.0, 1.0]]), 3: np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.4]])}
    got = {1: np.array([[0.0, 1.0]]), 3: np.array([[0.0, 1.0], [1.0, 0.0], [0.4, 0.5]])}
    result = compare(lambda b: ref[len(b["input_ids"])], lambda b: got[len(b["input_ids"])], batches)
    assert result["positions"] == 4 and result["argmax_agreement"] == 0.75
    assert np.isclose(result["max_abs_diff"], 0.1)
