"""`lmtailor init`: a starting recipe whose choices are measured on the user's data (tiny tasks made here)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from lmtailor.errors import InputNotFoundError, OutputExistsError
from lmtailor.recipe import load_recipe
from lmtailor.recipe.init import run_init

TOPICS = {"pay": "invoice payment fee price amount due", "law": "governed court jurisdiction statute venue",
          "end": "terminate expiry cancel notice period"}  # fmt: skip


def _cls(path: Path, counts: dict[str, int], seed: int) -> Path:
    rng = random.Random(seed)
    rows = []
    for label, n in counts.items():
        for _ in range(n):
            words = rng.sample(TOPICS[label].split(), 3) + rng.sample(
                ["the", "party", "shall", "this", "agreement", "of"], 3
            )
            rows.append({"text": " ".join(words), "label": label})
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _splits(tmp_path: Path, counts: dict[str, int]) -> tuple[Path, Path, Path]:
    return tuple(_cls(tmp_path / f"{s}.jsonl", counts, i) for i, s in enumerate(("train", "dev", "test")))


def test_a_skewed_two_label_task_gets_the_rare_label_f1_class_weights_and_a_recipe_that_loads(tmp_path: Path):
    train, dev, test = _splits(tmp_path, {"pay": 120, "law": 8})  # 15× rarer
    out, c = run_init("cls", train, dev, test, [], tmp_path / "recipe.yaml", work=str(tmp_path / "work"))
    assert (c.metric, c.class_weights, c.chinese, c.max_length) == ("f1:law", True, False, 128)
    assert "'pay' 120, 'law' 8 training examples (15.0×)" in c.metric_why
    text = out.read_text()
    assert 'metric: "f1:law"' in text and "class_weights: true" in text and "search_trials: 6" in text
    plan = load_recipe(out, {})  # what `lmtailor build --dry-run` checks: every stage's config and reference
    names = [s.name for s in plan.stages]
    assert names[0] == "baseline" and names[-1] == "report" and "teacher" in names and "int8" in names
    teacher = next(s for s in plan.stages if s.name == "teacher").config
    assert teacher.metric == "f1:law" and teacher.search_trials == 6 and teacher.search_space["class_weights"]
    # Six sentence patterns cannot fill 2,000 tokens: one size is tried, and the reason is measured, not assumed.
    assert len(c.tokenizer_table) == 1 and c.tokenizer_table[0]["vocab_size"] < 2000
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run_init("cls", train, dev, test, [], out)


def test_balanced_labels_keep_accuracy_and_ner_gets_entity_f1(tmp_path: Path):
    train, dev, test = _splits(tmp_path, {"pay": 30, "law": 25, "end": 20})
    _, c = run_init("cls", train, dev, test, [], tmp_path / "r.yaml")
    assert (c.metric, c.class_weights) == ("accuracy", False) and "under the 10× threshold" in c.metric_why
    ner = tmp_path / "ner.tsv"
    ner.write_text("".join(f"the\tO\nlicensee\tB-Party\npays\tO\n{w}\tO\n\n" for w in TOPICS["pay"].split()),
                   encoding="utf-8")  # fmt: skip
    out, c = run_init("ner", ner, ner, ner, [], tmp_path / "n.yaml")
    assert c.metric == "entity_f1" and "class_weights" not in out.read_text()
    assert {s.name for s in load_recipe(out, {}).stages} >= {"baseline", "teacher", "student"}


def test_held_out_words_missing_from_the_corpus_are_counted_as_the_reason(tmp_path: Path):
    train, _, test = _splits(tmp_path, {"pay": 40, "law": 30})
    dev = tmp_path / "dev_new.jsonl"  # dev words the training text never has: no vocabulary can cover them
    dev.write_text("".join(json.dumps({"text": f"zyx{i} qwv{i} plk{i}", "label": "pay"}) + "\n" for i in range(30)))
    out, c = run_init("cls", train, dev, test, [], tmp_path / "r.yaml")
    assert c.tokenizer_size is None and not c.tokenizer_pays
    assert "100.0% of the held-out words never occur in the corpus" in c.tokenizer_why
    assert "tokenizer.train" not in out.read_text() and "too small for a domain tokenizer to pay" in c.tokenizer_why


def test_missing_inputs_are_named(tmp_path: Path):
    train, dev, test = _splits(tmp_path, {"pay": 5, "law": 5})
    with pytest.raises(InputNotFoundError, match=r"--corpus .*nowhere"):
        run_init("cls", train, dev, test, [tmp_path / "nowhere"], tmp_path / "r.yaml")
    assert not (tmp_path / "r.yaml").exists()


def test_command_line_writes_the_recipe_and_says_why(tmp_path: Path):
    from typer.testing import CliRunner

    from lmtailor.cli import app

    train, dev, test = _splits(tmp_path, {"pay": 120, "law": 8})
    args = ["init", "--task", "cls", "--train", str(train), "--dev", str(dev), "--test", str(test), "--out",
            str(tmp_path / "r.yaml")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "metric: f1:law (skewed:" in result.output and f"next: lmtailor build {tmp_path / 'r.yaml'}" in result.output
    again = CliRunner().invoke(app, args)  # the file exists now: one clear line, exit 2
    assert again.exit_code == 2 and "pass --overwrite" in again.output


def test_chinese_classification_gets_the_trimmed_e5_with_its_head_fitted_first(tmp_path: Path):
    charges = {"盗窃": "被告人秘密窃取他人财物价值人民币", "诈骗": "被告人虚构事实骗取被害人钱款共计"}
    rng = random.Random(0)
    paths = []
    for split in ("train", "dev", "test"):
        rows = [{"text": f"{text}{rng.randint(100, 9999)}元，公诉机关指控。", "label": label}
                for label, text in charges.items() for _ in range(12)]  # fmt: skip
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    out, c = run_init("cls", *paths, [], tmp_path / "zh.yaml")
    assert c.chinese and "head_epochs: 100" in out.read_text()
    plan = load_recipe(out, {})
    teacher = next(s for s in plan.stages if s.name == "teacher").config
    assert teacher.head_epochs == 100 and teacher.long_text == "head_tail"
    assert "e5_trimmed" in [s.name for s in plan.stages]
    # A classifier ships fused with the baseline (weights chosen on dev); the report judges the pair.
    fused = next(s for s in plan.stages if s.name == "fused").config
    assert (fused.model.name, fused.baseline.name) == ("int8", "baseline")
    assert next(s for s in plan.stages if s.name == "report").config.student == fused.out_dir
    # Latin-script text keeps MiniLM's plain fine-tune (medical abstracts: the head first did not pay).
    latin, _ = run_init("cls", *_splits(tmp_path, {"pay": 30, "law": 25}), [], tmp_path / "en.yaml")
    assert "head_epochs" not in latin.read_text()
