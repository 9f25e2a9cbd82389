"""The teacher + baseline fusion: known answers for the fused distribution, the choice on dev and the label order."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from lmtailor.baseline.fusion import (
    baseline_margins,
    choose_fusion,
    fuse,
    load_baseline,
    log_softmax,
    out_of_fold_margins,
)
from lmtailor.errors import InputFormatError, InputNotFoundError

NAMES = ["a", "b"]


def test_the_fused_distribution_known_answers():
    z, m = np.array([[2.0, 0.0, -1.0]]), np.array([[0.5, 1.5, 0.0]])
    assert np.allclose(fuse(z, m, 1.0, 4.0), log_softmax(z))
    assert np.allclose(fuse(z, m, 0.0, 2.0), log_softmax(2 * m))
    mixed = 0.25 * log_softmax(z) + 0.75 * log_softmax(2 * m)
    assert np.allclose(fuse(z, m, 0.25, 2.0), mixed - np.log(np.exp(mixed).sum()))
    assert np.exp(fuse(z, m, 0.25, 2.0)).sum() == pytest.approx(1.0)


def test_the_choice_on_dev_takes_what_each_side_knows():
    # The model is sure and right on the first two texts and barely wrong on the others; the baseline the reverse.
    model = np.array([[5.0, 0.0], [0.0, 5.0], [0.0, 0.1], [0.1, 0.0]])
    margins = np.array([[-0.1, 0.1], [0.1, -0.1], [3.0, -3.0], [-3.0, 3.0]])
    gold = ["a", "b", "a", "b"]
    chosen = choose_fusion(model, margins, gold, NAMES)
    assert (chosen["dev_model"], chosen["dev_baseline"], chosen["dev_fused"]) == (0.5, 0.5, 1.0)
    assert 0 < chosen["weight"] < 1 and chosen["metric"] == "accuracy"
    # Where the model alone is right everywhere, the tie goes to it: weight 1.
    assert choose_fusion(model[:2], margins[:2], gold[:2], NAMES)["weight"] == 1.0


def _pipeline(labels: list[str]) -> Pipeline:
    texts = ["pay the rent", "rent is due", "terminate now", "notice to terminate", "indemnify all", "claims indemnify"]
    return Pipeline([("features", TfidfVectorizer()), ("classifier", LinearSVC())]).fit(texts, labels)


def test_margins_follow_the_models_label_order_and_other_labels_are_refused(tmp_path):
    pipe = _pipeline(["rent", "rent", "end", "end", "indemnity", "indemnity"])  # sklearn sorts: end, indemnity, rent
    margins = baseline_margins(pipe, ["the rent"], ["rent", "end", "indemnity"])
    assert margins.argmax(1).tolist() == [0]
    assert np.allclose(margins[0], pipe.decision_function(["the rent"])[0][[2, 0, 1]])
    with pytest.raises(InputFormatError, match=r"model only: \['law'\].*baseline only: \['rent'\]"):
        baseline_margins(pipe, ["x"], ["law", "end", "indemnity"], "bl")
    binary = _pipeline(["rent", "rent", "end", "end", "end", "end"])
    two = baseline_margins(binary, ["the rent is due"], ["rent", "end"])
    assert two.shape == (1, 2) and two.argmax(1).tolist() == [0]
    with pytest.raises(InputNotFoundError, match="lmtailor baseline cls"):
        load_baseline(tmp_path)


def test_out_of_fold_margins_do_not_know_a_training_texts_own_words():
    texts = ["rent due", "rent paid", "rent late", "rent owed", "zzz qqq", "end now", "end soon", "end today",
             "end notice", "end term"]  # fmt: skip
    labels = ["rent"] * 5 + ["end"] * 5
    pipe = _pipeline(["rent", "rent", "end", "end", "end", "end"])
    pipe.fit(texts, labels)
    names = ["rent", "end"]
    inside = baseline_margins(pipe, texts, names)
    outside, folds = out_of_fold_margins(pipe, texts, labels, names, folds=5)
    assert folds == 5 and outside.shape == (10, 2)
    # "zzz qqq" is a rent text only by its label: fitted on it, the baseline is sure; without it, it cannot know.
    assert inside[4].argmax() == 0 and outside[4, 0] < inside[4, 0]
    assert (outside[[0, 1, 2, 3]].argmax(1) == 0).all() and (outside[5:].argmax(1) == 1).all()
    # Folds never exceed the rarest label's count; a label with one text cannot be scored out of fold.
    assert out_of_fold_margins(pipe, texts[:6], [*labels[:4], "end", "end"], names)[1] == 2
    with pytest.raises(InputFormatError, match="single training text"):
        out_of_fold_margins(pipe, texts[:5], [*labels[:4], "end"], names)


def test_the_int8_baseline_is_the_fitted_one_within_half_a_step(tmp_path):
    import joblib

    from lmtailor.models.fused import INT8_FORMAT, pack_int8, unpack_int8

    pipe = _pipeline(["rent", "rent", "end", "end", "indemnity", "indemnity"])
    packed = pack_int8(pipe)
    coef, scale = pipe.named_steps["classifier"].coef_, packed["scale"]
    assert packed["format"] == INT8_FORMAT and packed["coef"].dtype == np.int8 and scale.shape == (3, 1)
    assert np.abs(packed["coef"]).max(1).tolist() == [127, 127, 127]  # each class's largest weight is ±127
    assert pipe.named_steps["classifier"].coef_ is coef  # packing leaves the fitted pipeline alone
    back = unpack_int8(packed)
    assert np.abs(back.named_steps["classifier"].coef_ - coef).max() <= scale.max() / 2 + 1e-12
    assert packed["pipeline"].named_steps["classifier"].coef_ is None  # unpacking copies: the pack stays storable
    texts = ["the rent is due", "notice to terminate", "indemnify the claims"]
    assert (back.decision_function(texts).argmax(1) == pipe.decision_function(texts).argmax(1)).all()
    joblib.dump(packed, tmp_path / "b.joblib")
    assert np.allclose(load_baseline(tmp_path / "b.joblib").decision_function(texts), back.decision_function(texts))
