"""Known-answer metric tests: hand-counted examples with exact precision, recall and F1."""

from __future__ import annotations

import pytest

from lmtailor.tasks.metrics import classification_metrics, confusion_png, ner_metrics


def test_ner_strict_known_answer():
    # Gold: DIS "a b" (0-1), CHEM "d" (3), DIS "f" (5)  -> 3 entities.
    # Pred: DIS "a b" right; CHEM "d e" wrong end; DIS "f" right; an extra DIS at 7 -> 4 predicted, 2 right.
    gold = [["B-DIS", "I-DIS", "O", "B-CHEM", "O", "B-DIS", "O", "O"]]
    pred = [["B-DIS", "I-DIS", "O", "B-CHEM", "I-CHEM", "B-DIS", "O", "B-DIS"]]
    m = ner_metrics(gold, pred)
    assert (m["precision"], m["recall"], m["f1"]) == (0.5, round(2 / 3, 4), round(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3), 4))
    assert m["entities"] == 3
    assert m["per_type"]["DIS"] == {"precision": round(2 / 3, 4), "recall": 1.0, "f1": 0.8, "support": 2}
    assert m["per_type"]["CHEM"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert m["macro_f1"] == 0.4


def test_ner_strict_does_not_promote_dangling_inside_tag():
    # "O I-DIS" is not an entity in strict IOB2 (the CoNLL script would count it as one and call this prediction right).
    m = ner_metrics([["O", "B-DIS"]], [["O", "I-DIS"]])
    assert m["f1"] == 0.0 and m["recall"] == 0.0


def test_ner_no_entities_anywhere():
    assert ner_metrics([["O", "O"]], [["O", "O"]])["f1"] == 0.0


def test_classification_known_answer():
    y_true = ["a", "a", "b", "b", "c"]
    y_pred = ["a", "b", "b", "b", "a"]
    m = classification_metrics(y_true, y_pred, ["a", "b", "c"])
    assert m["accuracy"] == 0.6 and m["micro_f1"] == 0.6
    # a: P 1/2 R 1/2 F 0.5; b: P 2/3 R 1 F 0.8; c: never predicted, F 0 -> macro (0.5 + 0.8 + 0) / 3.
    assert m["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert m["per_class"]["b"]["f1"] == 0.8 and m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx(1.3 / 3, abs=1e-4)
    assert m["examples"] == 5


def test_confusion_png(tmp_path):
    path = confusion_png(["a", "b", "b"], ["a", "a", "b"], ["a", "b"], tmp_path / "cm.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000


def test_confusion_png_never_draws_missing_glyphs(tmp_path):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        confusion_png(["盗窃", "诈骗"], ["盗窃", "盗窃"], ["盗窃", "诈骗"], tmp_path / "zh.png")
    assert not [w for w in caught if "missing from font" in str(w.message)]
    assert (tmp_path / "zh.png").stat().st_size > 2000
