"""The Chinese tasks end to end on slices of the real data, with a tiny BERT on an lmtailor domain tokenizer.

MiniLM knows ~244 Chinese characters, so real Chinese numbers wait for lmtailor's own models; here the readers,
the alignment of multi-character tokens to character units, windows over long CAIL2018 facts and the metrics are
exercised on the real files, and the outputs are checked for consistency with the data.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

from lmtailor.tasks import entity_spans, read_cls, read_ner
from lmtailor.tokenizer import TokenizerTrainConfig, run_train
from lmtailor.train.finetune import FinetuneConfig, run_finetune

from .conftest import SMALL

pytestmark = pytest.mark.data


def _tiny_model(tmp_path: Path, texts: list[str], terms: list[str]) -> Path:
    """A 2-layer BERT on a 2,500-token BPE tokenizer trained on `texts`, with `terms` protected (one token each)."""
    (tmp_path / "text.txt").write_text("\n\n".join(texts), encoding="utf-8")
    (tmp_path / "terms.txt").write_text("\n".join(terms), encoding="utf-8")
    cfg = TokenizerTrainConfig.build(inputs=[tmp_path / "text.txt"], terms=[tmp_path / "terms.txt"], vocab_size=2500,
                                     out_dir=tmp_path / "tok", show_progress=False)  # fmt: skip
    folder = run_train(cfg)
    tok = AutoTokenizer.from_pretrained(str(folder))
    torch.manual_seed(0)
    BertForMaskedLM(BertConfig(vocab_size=len(tok), max_position_embeddings=128, **SMALL)).save_pretrained(str(folder))
    return folder


def _slice_json(src: Path, dst: Path, n: int) -> Path:
    dst.write_text(json.dumps(json.loads(src.read_text(encoding="utf-8"))[:n], ensure_ascii=False), encoding="utf-8")
    return dst


def _finetune(tmp_path: Path, model: Path, task: str, train: Path, dev: Path, **kw) -> Path:
    values = dict(task=task, model=str(model), train=train, dev=dev, test=dev, out_dir=tmp_path / "ft", epochs=1,
                  batch_size=16, lr=1e-3, max_length=64, stride=16, show_progress=False)  # fmt: skip
    return run_finetune(FinetuneConfig.build(**{**values, **kw}))


def test_cmeee_spans_with_merged_tokens(shared_data, tmp_path):
    src = shared_data / "zh-med" / "cmeee-v2"
    train, dev = (
        _slice_json(src / "train.json", tmp_path / "train.json", 80),
        _slice_json(src / "dev.json", tmp_path / "dev.json", 20),
    )
    data = read_ner(train)
    terms = sorted({ex.text[s:e] for ex in data.examples for s, e, _ in entity_spans(ex) if e - s >= 2})[:100]
    out = _finetune(tmp_path, _tiny_model(tmp_path, [ex.text for ex in data.examples], terms), "ner", train, dev)
    report = json.loads((out / "eval_test.json").read_text())
    gold = read_ner(dev)
    # Scored on characters: the entity count is the data's, whatever the tokenizer merged.
    assert report["entities"] == sum(len(entity_spans(ex)) for ex in gold.examples)
    assert 0 <= report["f1"] <= 1 and set(report["per_type"]) <= set(data.labels)
    align = report["alignment"]
    assert (
        align["entities"] == report["entities"] and 0 <= align["entities_crossing_token_boundaries"] < align["entities"]
    )
    for line in (out / "predictions_test.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        assert all(row["text"][e["start"] : e["end"]] == e["text"] for e in row["entities"] + row["predicted"])


def test_cmedqaner_character_columns(shared_data, tmp_path):
    src = shared_data / "zh-med" / "cmedqaner"
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    for name, dst, n in (("train.txt", train, 120), ("dev.txt", dev, 30)):
        dst.write_text("\n\n".join((src / name).read_text(encoding="utf-8").split("\n\n")[:n]) + "\n", encoding="utf-8")
    data = read_ner(train)
    assert all(e - s == 1 for ex in data.examples for s, e in ex.units)  # character units
    out = _finetune(tmp_path, _tiny_model(tmp_path, [ex.text for ex in data.examples], []), "ner", train, dev)
    assert json.loads((out / "task.json").read_text())["units"] == "chars"
    report = json.loads((out / "eval_test.json").read_text())
    assert report["entities"] == sum(len(entity_spans(ex)) for ex in read_ner(dev).examples) > 0


def test_cail2018_long_facts_in_windows(shared_data, tmp_path):
    src = shared_data / "zh-legal" / "cail2018"
    rows = [json.loads(line) for line in (src / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    rows.sort(key=lambda r: -len(r["text"]))  # the longest facts: several windows each
    labels = sorted({r["label"] for r in rows[:60]})
    train, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:60]), encoding="utf-8")
    dev.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows[:20]), encoding="utf-8")
    model = _tiny_model(tmp_path, [r["text"][:3000] for r in rows[:60]], [])
    out = _finetune(tmp_path, model, "cls", train, dev, long_text="windows", epochs=0.2)
    report = json.loads((out / "eval_test.json").read_text())
    assert set(report["per_class"]) == set(read_cls(train).labels) == set(labels)
    assert report["examples"] == 20 and report["throughput"]["features"] > 20  # several windows per fact
    assert (out / "confusion_test.png").is_file()
