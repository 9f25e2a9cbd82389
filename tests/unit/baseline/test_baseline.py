"""`lmtailor baseline`: the classical models, chosen on dev, scored in finetune's format (tiny tasks made here)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import joblib
import pytest

from lmtailor.baseline.config import BaselineConfig
from lmtailor.baseline.stage import run_baseline
from lmtailor.baseline.tagger import Featurizer
from lmtailor.errors import ConfigError, InputNotFoundError
from lmtailor.tasks.readers import NerExample
from lmtailor.tokenizer.protect import TermMatcher

WORDS = {"pay": ["invoice", "payment", "fee", "price"], "end": ["terminate", "expiry", "cancel", "notice"],
         "law": ["governed", "court", "jurisdiction", "statute"]}  # fmt: skip
FILLER = ["the", "party", "shall", "this", "agreement", "any", "of", "and"]


def _cls(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(WORDS))
        words = rng.sample(FILLER, 4) + rng.sample(WORDS[label], 2)
        rng.shuffle(words)
        rows.append({"text": " ".join(words), "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _cfg(tmp_path: Path, task: str, train: Path, dev: Path | None, test: Path | None, **kw) -> BaselineConfig:
    values = {"out_dir": tmp_path / f"bl-{task}", **kw}
    return BaselineConfig.build(task=task, train=train, dev=dev, test=test, show_progress=False, **values)


def test_classification_baseline_is_chosen_on_dev_and_scored_like_finetune(tmp_path: Path):
    train, dev, test = (_cls(tmp_path / f"{s}.jsonl", n, i) for i, (s, n) in
                        enumerate((("train", 90), ("dev", 30), ("test", 30))))  # fmt: skip
    out = run_baseline(_cfg(tmp_path, "cls", train, dev, test, c_grid=[0.1, 1.0], metric="macro_f1"))
    trials = json.loads((out / "trials.json").read_text())
    assert len(trials) == 2 * 2 * 2  # feature sets × C × class weighting
    [chosen] = [t for t in trials if t.get("chosen")]
    assert chosen["dev_macro_f1"] == max(t["dev_macro_f1"] for t in trials)  # the best on dev, the first of ties
    assert chosen is next(t for t in trials if t["dev_macro_f1"] == chosen["dev_macro_f1"])
    ev = json.loads((out / "eval_test.json").read_text())
    assert ev["metric"] == "macro_f1" and ev["metric_value"] == ev["macro_f1"] == 1.0  # two keywords a text: easy
    assert set(ev["per_class"]) == set(WORDS) and ev["throughput"]["examples_per_second"] > 0
    preds = [json.loads(x) for x in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert len(preds) == 30 and all(p["predicted"] == p["label"] for p in preds)
    model = joblib.load(out / "model.joblib")
    assert list(model.predict(["the court and the statute"])) == ["law"]
    manifest = json.loads((out / "lmtailor.json").read_text())
    assert manifest["stage"] == "baseline-cls" and manifest["metrics"]["size_bytes"] > 0
    assert manifest["metrics"]["test"]["metric_value"] == 1.0 and manifest["metrics"]["parameters"] > 0


def test_without_dev_one_setting_is_fitted(tmp_path: Path):
    train = _cls(tmp_path / "train.jsonl", 60, 0)
    out = run_baseline(_cfg(tmp_path, "cls", train, None, None))
    [trial] = json.loads((out / "trials.json").read_text())
    assert trial["C"] == 1.0 and trial["features"] == "words" and trial["chosen"]  # the grid's middle; Latin text


def test_bad_input_is_named_and_nothing_is_written(tmp_path: Path):
    train = _cls(tmp_path / "train.jsonl", 30, 0)
    with pytest.raises(ConfigError, match="'Pay' is not among the labels"):
        run_baseline(_cfg(tmp_path, "cls", train, train, None, metric="f1:Pay"))
    with pytest.raises(ConfigError, match="c_grid"):
        _cfg(tmp_path, "cls", train, train, None, c_grid=[0.0])
    with pytest.raises(ConfigError, match="use entity_f1"):
        _cfg(tmp_path, "ner", train, train, None, metric="accuracy")
    ner = tmp_path / "ner.tsv"
    ner.write_text("a\tO\nb\tB-X\n", encoding="utf-8")
    with pytest.raises(InputNotFoundError, match=r"glossary .*nope\.txt"):
        run_baseline(_cfg(tmp_path, "ner", ner, ner, None, glossary=[tmp_path / "nope.txt"]))
    assert not (tmp_path / "bl-cls").exists() and not (tmp_path / "bl-ner").exists()


def _example(text: str, entities: list[tuple[int, int]]) -> NerExample:
    tags = ["O"] * len(text)
    for s, e in entities:
        tags[s:e] = ["B-dis"] + ["I-dis"] * (e - s - 1)
    return NerExample(text, tuple((i, i + 1) for i in range(len(text))), tuple(tags), "x")


def test_glossary_features_mark_begin_inside_end_single():
    matcher = TermMatcher(["糖尿病", "癌"], lowercase=True)
    [feats] = Featurizer([("disease", matcher)]).sentences([_example("患糖尿病和癌", [])])
    marks = [[f for f in unit if f.startswith("g:")] for unit in feats]
    assert marks == [[], ["g:disease=B"], ["g:disease=I"], ["g:disease=E"], [], ["g:disease=S"]]
    assert (
        "g+1:disease=S" in feats[4]
        and "g-1:disease=E" in feats[4]
        and "u=患" in feats[0]
        and "bos" in feats[0]
        and "bi+=患|糖" in feats[0]
    )


FILL = "的了是在有和我也就都而及与着或"
DISEASES = [
    "糖尿病",
    "高血压",
    "肺炎",
    "胃溃疡",
    "哮喘",
    "贫血",
    "痛风",
    "肝硬化",
    "心肌梗死",
    "脑卒中",
    "肾结石",
    "白血病",
]


def _ner_json(path: Path, diseases: list[str], n: int, seed: int) -> Path:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        d = rng.choice(diseases)  # between runs of common characters: the context does not say where it starts
        head = "".join(rng.choices(FILL, k=rng.randint(1, 4)))
        text = f"{head}{d}{''.join(rng.choices(FILL, k=rng.randint(1, 4)))}"
        records.append({"text": text, "entities": [{"start_idx": len(head), "end_idx": len(head) + len(d) - 1,
                                                    "type": "dis", "entity": d}]})  # fmt: skip
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def test_crf_finds_glossary_diseases_it_never_saw_in_training(tmp_path: Path):
    """Train on six diseases, test on six others that only the glossary knows: the glossary features carry the
    CRF to them (known answer: every test entity found), and without the glossary it cannot (F1 far lower)."""
    train = _ner_json(tmp_path / "train.json", DISEASES[:6], 80, 0)
    dev = _ner_json(tmp_path / "dev.json", DISEASES[:6], 20, 1)
    test = _ner_json(tmp_path / "test.json", DISEASES[6:], 30, 2)
    glossary = tmp_path / "disease.txt"
    glossary.write_text("\n".join(DISEASES) + "\n", encoding="utf-8")
    small = {"crf_c1": [0.05], "crf_c2": [0.01], "crf_iterations": 60}
    out = run_baseline(_cfg(tmp_path, "ner", train, dev, test, glossary=[glossary], **small))
    ev = json.loads((out / "eval_test.json").read_text())
    assert ev["metric"] == "entity_f1" and ev["metric_value"] == ev["f1"] == 1.0 and ev["entities"] == 30
    without = run_baseline(_cfg(tmp_path, "ner", train, dev, test, out_dir=tmp_path / "plain", **small))
    assert json.loads((without / "eval_test.json").read_text())["f1"] < 0.5  # measured: 0.0
    assert (out / "model.crfsuite").is_file() and not list(out.glob("trial-*"))
    preds = [json.loads(x) for x in (out / "predictions_test.jsonl").read_text().splitlines()]
    assert preds[0]["predicted"] == preds[0]["entities"]
