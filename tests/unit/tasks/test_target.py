"""The metric a task is judged by: parsing, reading it from metric tables, and the skew warning."""

from __future__ import annotations

from collections import Counter

import pytest

from lmtailor.errors import ConfigError
from lmtailor.tasks.target import SKEW_RATIO, parse_metric, skew_advice

CLS = {"accuracy": 0.9, "macro_f1": 0.6, "per_class": {"rare": {"f1": 0.25}, "common": {"f1": 0.95}}}
NER = {"f1": 0.7, "macro_f1": 0.5, "per_type": {"dis": {"f1": 0.8}}}


def test_defaults_spellings_and_values():
    assert parse_metric(None, "cls").name == "accuracy" and parse_metric(None, "ner").name == "entity_f1"
    assert parse_metric("f1", "ner") == parse_metric("entity_f1", "ner")  # the older NER spelling
    assert parse_metric(None, "cls").value(CLS) == 0.9 and parse_metric("macro_f1", "cls").value(CLS) == 0.6
    rare = parse_metric(" f1:rare ", "cls")
    assert (rare.name, rare.log_key, rare.value(CLS)) == ("f1:rare", "f1:rare", 0.25)
    assert parse_metric("f1:absent", "cls").value(CLS) is None  # a label the split lacks: undefined, not 0
    assert parse_metric(None, "ner").value(NER) == 0.7 and parse_metric("f1:dis", "ner").value(NER) == 0.8
    assert parse_metric(None, "ner").log_key == "f1"  # the key ner_metrics (and the Trainer's eval_f1) use


@pytest.mark.parametrize(
    ("spec", "task", "message"),
    [("f1", "cls", "f1:<label>"), ("entity_f1", "cls", "for ner"), ("accuracy", "ner", "use entity_f1"),
     ("f1:", "cls", "not a cls metric"), ("auc", "cls", "accuracy, macro_f1, f1:<label>")],
)  # fmt: skip
def test_bad_names_say_what_to_use(spec, task, message):
    with pytest.raises(ConfigError, match=message):
        parse_metric(spec, task)


def test_a_per_label_metric_must_name_a_training_label():
    parse_metric("f1:rare", "cls").check_labels(["common", "rare"], "train.jsonl")
    with pytest.raises(ConfigError, match=r"'Rare' is not among the labels of train.jsonl \('common', 'rare'\)"):
        parse_metric("f1:Rare", "cls").check_labels(["common", "rare"], "train.jsonl")


def test_skew_advice_at_the_stated_threshold():
    accuracy = parse_metric(None, "cls")
    below = Counter(common=int(SKEW_RATIO * 10) - 1, rare=10)  # 9.9×
    at = Counter(common=int(SKEW_RATIO * 10), rare=10)  # 10×
    assert skew_advice(below, accuracy, False) is None
    advice = skew_advice(at, accuracy, False)
    assert "'common' has 100 training examples, 'rare' 10" in advice and "10× fewer" in advice
    assert "macro_f1" in advice and "f1:rare" in advice and "class_weights: true" in advice
    # What is already chosen is not recommended again; with both, nothing is left to say.
    assert "macro_f1" not in skew_advice(at, parse_metric("f1:rare", "cls"), False)
    assert skew_advice(at, parse_metric("macro_f1", "cls"), True) is None
    assert skew_advice(Counter(only=5), accuracy, False) is None
