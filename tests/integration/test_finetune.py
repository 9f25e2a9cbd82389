"""`lmtailor finetune` / `evaluate` / `predict` end to end on a tiny BERT and tiny tasks written here."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError, OutputExistsError
from lmtailor.tasks.evaluate import EvaluateConfig, predict, read_inputs, run_evaluate
from lmtailor.train.config import DistillConfig
from lmtailor.train.finetune import FinetuneConfig, _label_names, checkpoint_dir, run_finetune
from lmtailor.train.head_first import fit_head, head_of
from lmtailor.train.task_training import encode_split, metric_fn, read_splits

CLAUSES = {
    "indemnity": "The licensee shall indemnify the licensor against all claims.",
    "law": "This agreement is governed by the laws of the State of New York.",
    "termination": "Either party may terminate this agreement upon written notice.",
}


def _cls_file(path: Path, n: int, seed: int) -> Path:
    """Each clause with one word of another clause appended: learnable by a tiny random model whatever vocabulary
    the fixture's tokenizer trainer settles on (it breaks ties between equal counts differently from run to run)."""
    rng = random.Random(seed)
    pool = sorted({w for text in CLAUSES.values() for w in text.split()})
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(CLAUSES))
        rows.append({"text": f"{CLAUSES[label]} {rng.choice(pool)}", "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _ner_file(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        left, right = rng.choice(["the", "a", "this"]), rng.choice(["claims", "notice", "laws"])
        lines += [f"{left}\tO", "licensee\tB-Party", "shall\tO", "indemnify\tO", "the\tO", "licensor\tB-Party",
                  f"{right}\tO", ""]  # fmt: skip
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _cfg(tmp_path: Path, model: Path, task: str, train: Path, dev: Path, **kw) -> FinetuneConfig:
    values = dict(task=task, model=str(model), train=train, dev=dev, test=dev, out_dir=tmp_path / f"ft-{task}",
                  epochs=10, batch_size=8, lr=1e-2, max_length=32, stride=4, show_progress=False,
                  logging_steps=5)  # fmt: skip
    values.update(kw)
    return FinetuneConfig.build(**values)


def test_finetune_cls_evaluate_predict(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 90, 0), _cls_file(tmp_path / "dev.jsonl", 30, 1)
    # A tiny random model can sit at 2 of 3 classes for a few epochs before it separates the third: no early stop.
    # The checkpoint is chosen by one class's F1 (the metric a team with a rare class of interest would pick).
    cfg = _cfg(tmp_path, tiny_bert, "cls", train, dev, class_weights=True, lr=3e-3, epochs=20, patience=0,
               metric="f1:indemnity")  # fmt: skip
    out = run_finetune(cfg)
    report = json.loads((out / "finetune_report.json").read_text())
    # What the choice guarantees is that class's F1 (the first checkpoint to reach the best one is kept, and the
    # others may still be mixed up then), so that is what is checked.
    assert report["dev"]["metric_value"] >= 0.9 and report["test"]["metric_value"] >= 0.9
    test_eval = json.loads((out / "eval_test.json").read_text())
    assert test_eval["metric"] == "f1:indemnity" == json.loads((out / "task.json").read_text())["metric"]
    assert test_eval["metric_value"] == test_eval["per_class"]["indemnity"]["f1"] == report["test"]["metric_value"]
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert set(model.config.label2id) == set(CLAUSES) and AutoTokenizer.from_pretrained(str(out)).is_fast
    for name in ("metrics.jsonl", "eval_test.json", "predictions_test.jsonl", "confusion_test.png", "task.json"):
        assert (out / name).is_file(), name
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval_accuracy" in r for r in history) and any("loss" in r for r in history)
    assert any("eval_f1:indemnity" in r for r in history)  # the Trainer compared checkpoints on it
    assert not checkpoint_dir(_cfg(tmp_path, tiny_bert, "cls", train, dev)).exists()

    ev = run_evaluate(EvaluateConfig.build(model=out, data=dev, out_dir=tmp_path / "ev", show_progress=False))
    assert json.loads((ev / "eval_test.json").read_text())["accuracy"] == report["test"]["accuracy"]
    [row] = list(predict(out, [CLAUSES["indemnity"]]))
    assert row["label"] == "indemnity" and 0 < row["score"] <= 1 and len(row["top"]) == 3
    # A label the model never saw is named; nothing is written.
    odd = tmp_path / "odd.jsonl"
    odd.write_text(json.dumps({"text": "a warranty clause", "label": "warranty"}) + "\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="warranty"):
        run_evaluate(EvaluateConfig.build(model=out, data=odd, out_dir=tmp_path / "ev2", show_progress=False))
    assert not (tmp_path / "ev2").exists()
    with pytest.raises(InputNotFoundError, match=r"nothing\.txt"):
        read_inputs(None, tmp_path / "nothing.txt")


def test_finetune_ner_scores_entities(tiny_bert, tmp_path):
    train, dev = _ner_file(tmp_path / "train.tsv", 60, 0), _ner_file(tmp_path / "dev.tsv", 10, 1)
    out = run_finetune(_cfg(tmp_path, tiny_bert, "ner", train, dev))
    report = json.loads((out / "eval_test.json").read_text())
    assert report["f1"] >= 0.9 and report["per_type"]["Party"]["support"] == 20
    assert report["alignment"]["entities_crossing_token_boundaries"] == 0
    model = AutoModelForTokenClassification.from_pretrained(str(out))
    assert model.config.id2label[0] == "O" and set(model.config.label2id) == {"O", "B-Party", "I-Party"}
    [row] = list(predict(out, ["the licensee shall indemnify the licensor laws"]))
    assert [(e["text"], e["type"], e["start"]) for e in row["entities"]] == [
        ("licensee", "Party", 4),
        ("licensor", "Party", 33),
    ]


def test_resume_continues_from_checkpoint(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 40, 0), _cls_file(tmp_path / "dev.jsonl", 10, 1)
    cfg = _cfg(tmp_path, tiny_bert, "cls", train, dev, epochs=2, keep_checkpoints=True, patience=0)
    run_finetune(cfg)
    steps = json.loads((cfg.out_dir / "finetune_report.json").read_text())["steps"]
    # A longer run resumes from the 2-epoch checkpoint instead of starting over.
    longer = cfg.model_copy(update={"epochs": 3, "resume": True, "overwrite": True})
    run_finetune(longer)
    history = [json.loads(line) for line in (cfg.out_dir / "metrics.jsonl").read_text().splitlines()]
    assert json.loads((cfg.out_dir / "finetune_report.json").read_text())["steps"] == steps * 3 // 2
    assert sum(1 for r in history if "eval_accuracy" in r) == 3


def test_bad_inputs(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 20, 0), tmp_path / "dev.jsonl"
    dev.write_text(json.dumps({"text": "a new clause", "label": "warranty"}) + "\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="warranty"):
        run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, dev))
    with pytest.raises(ConfigError, match=r"'warranty' is not among the labels .*macro_f1"):
        run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, train, metric="f1:warranty"))
    with pytest.raises(ConfigError, match="entity_f1 is for ner"):
        _cfg(tmp_path, tiny_bert, "cls", train, train, metric="entity_f1")
    with pytest.raises(ConfigError, match="stride"):
        run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, train, stride=17, max_length=32))
    with pytest.raises(ConfigError, match="positions"):
        run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, train, max_length=128))
    assert not (tmp_path / "ft-cls").exists()
    (tmp_path / "ft-cls").mkdir()
    with pytest.raises(OutputExistsError, match="overwrite"):
        run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, train))


def test_command_line_finetune_evaluate_predict(tiny_bert, tmp_path):
    from typer.testing import CliRunner

    from lmtailor.cli import app

    train, dev = _ner_file(tmp_path / "train.tsv", 60, 0), _ner_file(tmp_path / "dev.tsv", 10, 1)
    runner = CliRunner()
    args = ["finetune", "ner", str(train), "--model", str(tiny_bert), "--dev", str(dev), "--out", str(tmp_path / "m"),
            "--epochs", "10", "--lr", "1e-2", "--batch-size", "8", "--max-length", "32", "--stride", "4",
            "--attention-dropout", "0", "--no-progress"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["attention_probs_dropout_prob"] == 0.0 and saved["hidden_dropout_prob"] == 0.1
    result = runner.invoke(
        app, ["evaluate", str(tmp_path / "m"), str(dev), "--out", str(tmp_path / "ev"), "--no-progress"]
    )
    assert result.exit_code == 0 and json.loads((tmp_path / "ev" / "eval_test.json").read_text())["f1"] >= 0.9
    result = runner.invoke(app, ["predict", str(tmp_path / "m"), "--text", "a licensee shall indemnify the licensor"])
    assert result.exit_code == 0, result.output
    assert [e["text"] for e in json.loads(result.stdout.strip())["entities"]] == ["licensee", "licensor"]
    # A user error is one line and exit status 2, and nothing is written.
    result = runner.invoke(app, ["finetune", "ner", str(tmp_path / "missing.tsv"), "--model", str(tiny_bert),
                                 "--out", str(tmp_path / "m2")])  # fmt: skip
    assert result.exit_code == 2 and "missing.tsv" in result.output and not (tmp_path / "m2").exists()


def test_torchrun_two_processes(tiny_bert, tmp_path):
    """DDP on CPU (gloo) through torchrun: both processes train, the main one alone writes the output folder."""
    import socket
    import subprocess
    import sys

    train, dev = _cls_file(tmp_path / "train.jsonl", 64, 0), _cls_file(tmp_path / "dev.jsonl", 30, 1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "lmtailor.cli", "finetune", "cls", str(train), "--model", str(tiny_bert), "--dev", str(dev),
           "--out", str(tmp_path / "ddp"), "--epochs", "2", "--batch-size", "8", "--lr", "1e-2", "--max-length", "32",
           "--stride", "4", "--patience", "0", "--no-progress"]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ddp" / "finetune_report.json").read_text())
    # 64 examples, 8 per process, 2 processes: 4 steps an epoch, 8 in all (one process alone would take 16).
    assert report["steps"] == 8 and report["dev"]["examples"] == 30
    assert not list(tmp_path.glob(".ddp*"))  # no temporary or checkpoint folders left


def test_search_on_dev_keeps_the_best_trial_and_records_every_one(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 60, 0), _cls_file(tmp_path / "dev.jsonl", 20, 1)
    cfg = _cfg(tmp_path, tiny_bert, "cls", train, dev, epochs=2, patience=0, metric="macro_f1", search_trials=3,
               search_space={"lr": [1e-4, 1e-2], "class_weights": [False, True]})  # fmt: skip
    out = run_finetune(cfg)
    search = json.loads((out / "search.json").read_text())
    assert search["metric"] == "macro_f1" and len(search["trials"]) == 3
    done = [t for t in search["trials"] if t["state"] == "complete"]
    [chosen] = [t for t in search["trials"] if t.get("chosen")]
    assert chosen["dev"] == max(t["dev"] for t in done) and search["chosen"] == chosen["params"]
    assert all(1e-4 <= t["params"]["lr"] <= 1e-2 for t in search["trials"])
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["dev"]["metric_value"] == chosen["dev"] and report["test"]["metric"] == "macro_f1"
    assert (out / "eval_test.json").is_file() and AutoTokenizer.from_pretrained(str(out)).is_fast
    assert not (tmp_path / f".{out.name}.search").exists() and not checkpoint_dir(cfg).exists()
    manifest = json.loads((out / "lmtailor.json").read_text())
    assert manifest["config"]["search_trials"] == 3 and manifest["metrics"]["search"]["trials"] == 3
    assert set(manifest["inputs"]) == {"model", "train", "dev", "test"} and manifest["inputs"]["train"]["sha256"]
    with pytest.raises(ConfigError, match="needs --dev"):
        run_finetune(cfg.model_copy(update={"dev": None, "out_dir": tmp_path / "nodev"}))


def test_a_trial_below_the_median_is_pruned_after_a_dev_evaluation():
    import optuna

    from lmtailor.train.search import PruneOnDev

    class Trial:
        def __init__(self):
            self.reported = []

        def report(self, value, step):
            self.reported.append((value, step))

        def should_prune(self):
            return self.reported[-1][0] < 0.5

    trial = Trial()
    callback = PruneOnDev(trial, "macro_f1")
    callback.on_evaluate(None, None, None, metrics={"eval_macro_f1": 0.7, "eval_loss": 1.0})
    callback.on_evaluate(None, None, None, metrics={"eval_loss": 1.0})  # no score: nothing reported
    with pytest.raises(optuna.TrialPruned, match=r"eval_macro_f1 0\.3000 after evaluation 2"):
        callback.on_evaluate(None, None, None, metrics={"eval_macro_f1": 0.3})
    assert trial.reported == [(0.7, 1), (0.3, 2)] and callback.last == 0.3


def test_the_first_half_of_a_trials_evaluations_is_never_pruned():
    import optuna

    from lmtailor.train.config import FinetuneConfig
    from lmtailor.train.search import warmup_evaluations

    def protected(epochs: float) -> list[int]:
        cfg = FinetuneConfig.build(task="cls", model="m", train="t.jsonl", out_dir="o", epochs=epochs)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=warmup_evaluations(cfg) + 1)
        study = optuna.create_study(direction="maximize", pruner=pruner)
        study.optimize(lambda t: [t.report(1.0, s) for s in range(1, 6)] and 1.0, n_trials=1)  # one good trial
        trial = study.ask()
        steps = []
        for step in range(1, int(epochs) + 1):  # a trial far below the median at every evaluation
            trial.report(0.0, step)
            if not trial.should_prune():
                steps.append(step)
        return steps

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert protected(2) == [1] and protected(4) == [1, 2] and protected(5) == [1, 2, 3]


def test_a_search_on_a_small_dev_split_is_warned_about(tmp_path):
    from lmtailor.tasks.target import parse_metric
    from lmtailor.train.config import FinetuneConfig
    from lmtailor.train.search import small_dev_warning

    dev = _cls_file(tmp_path / "dev.jsonl", 60, 1)
    cfg = FinetuneConfig.build(task="cls", model="m", train=dev, dev=dev, out_dir=tmp_path / "o",
                               metric="f1:indemnity")  # fmt: skip
    data = cfg.read_task("cls", dev)
    n = sum('"indemnity"' in line for line in dev.read_text().splitlines())
    assert small_dev_warning(cfg, parse_metric("f1:indemnity", "cls"), data).startswith(
        f"the search chooses on {dev}, which has {n} examples of 'indemnity' (under 50)"
    )
    assert small_dev_warning(cfg, parse_metric(None, "cls"), data) is None  # 60 examples in all


def test_the_skew_warning_does_not_recommend_what_the_search_already_tries(tmp_path, caplog):
    from lmtailor.train.finetune import read_splits

    train = tmp_path / "train.jsonl"
    rows = [{"text": f"common text {i}", "label": "common"} for i in range(40)] + [{"text": "rare", "label": "rare"}]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    plain = FinetuneConfig.build(task="cls", model="m", train=train, out_dir=tmp_path / "o")
    searched = plain.model_copy(update={"search_trials": 2, "search_space": {"class_weights": [False, True]}})
    with caplog.at_level("WARNING"):
        read_splits(plain)
        read_splits(searched)
    first, second = [r.getMessage() for r in caplog.records if "skewed labels" in r.getMessage()]
    assert "class_weights: true" in first and "class_weights" not in second and "macro_f1" in second


def test_a_search_under_torchrun_is_refused(tmp_path, monkeypatch):
    dev = _cls_file(tmp_path / "dev.jsonl", 10, 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    cfg = FinetuneConfig.build(task="cls", model="m", train=dev, dev=dev, out_dir=tmp_path / "o", search_trials=2)
    with pytest.raises(ConfigError, match="one process: start it without torchrun"):
        run_finetune(cfg)
    assert not (tmp_path / "o").exists() and not (tmp_path / ".o.search").exists()


def test_a_search_checks_its_inputs_once_before_any_trial(tmp_path):
    dev = _cls_file(tmp_path / "dev.jsonl", 10, 1)
    cfg = FinetuneConfig.build(task="cls", model=str(tmp_path / "nowhere"), train=dev, dev=dev,
                               out_dir=tmp_path / "o", search_trials=2)  # fmt: skip
    with pytest.raises(InputNotFoundError, match="nowhere"):
        run_finetune(cfg)
    assert not (tmp_path / ".o.search").exists()  # refused before a trial folder was made


# `finetune --head-epochs`: the head fitted alone on the frozen encoder's cached states (LP-FT), then fine-tuned.


def _setup(model_dir, tmp_path, task: str, auto):
    """An encoder that knows the task (fine-tuned here: a random tiny encoder's states hardly differ) under a new
    random head, and the task's encoded splits and dev metric."""
    if task == "cls":
        train, dev = _cls_file(tmp_path / "train.jsonl", 60, 0), _cls_file(tmp_path / "dev.jsonl", 30, 1)
        tuned = run_finetune(
            _cfg(tmp_path, model_dir, task, train, dev, lr=3e-3, epochs=20, patience=0, class_weights=True)
        )
    else:
        train, dev = _ner_file(tmp_path / "train.tsv", 30, 0), _ner_file(tmp_path / "dev.tsv", 10, 1)
        tuned = run_finetune(_cfg(tmp_path, model_dir, task, train, dev))
    config = _cfg(tmp_path, tuned, task, train, dev, head_epochs=30, head_lr=1e-2, head_patience=0, precision="fp32")
    tr, dv, _ = read_splits(config)
    names = _label_names(config, tr)
    label2id, id2label = {n: i for i, n in enumerate(names)}, dict(enumerate(names))
    torch.manual_seed(0)
    model = auto.from_pretrained(str(tuned), num_labels=len(names), id2label=id2label, label2id=label2id)
    for module in head_of(model, task)[0]:
        for part in module.modules():
            if hasattr(part, "reset_parameters"):
                part.reset_parameters()
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    dev_enc = encode_split(config, tok, dv, label2id).sorted_by_length()
    return config, model, encode_split(config, tok, tr, label2id), dev_enc, metric_fn(config, dv, dev_enc, id2label)


def _full_model_score(model, dev_enc, metric, task: str) -> dict:
    """The dev metric of the whole model run normally (eval mode, every feature through encoder and head)."""
    model.eval()
    out = []
    with torch.no_grad():
        for f in dev_enc.features:
            logits = model(**{k: torch.tensor([v]) for k, v in f.items() if k != "labels"}).logits[0]
            out.append(logits.numpy() if task == "cls" else logits.argmax(-1).numpy())
    if task == "ner":
        width = max(len(o) for o in out)
        out = [np.pad(o, (0, width - len(o))) for o in out]
    return metric(SimpleNamespace(predictions=np.stack(out)))


@pytest.mark.parametrize(("fixture", "task"), [("tiny_bert", "cls"), ("tiny_roberta", "cls"), ("tiny_bert", "ner")])
def test_only_the_head_learns_and_its_dev_score_is_the_whole_models(fixture, task, tmp_path, request):
    auto = AutoModelForSequenceClassification if task == "cls" else AutoModelForTokenClassification
    config, model, train_enc, dev_enc, metric = _setup(request.getfixturevalue(fixture), tmp_path, task, auto)
    key = "accuracy" if task == "cls" else "f1"
    before = {k: v.clone() for k, v in model.state_dict().items()}
    start = _full_model_score(model, dev_enc, metric, task)[key]
    report = fit_head(model, config, train_enc, dev_enc, metric, "fp32")
    head_names = {n for m in head_of(model, task)[0] for n, _ in m.named_parameters()}
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    encoder = {k for k in changed if k.startswith(model.base_model_prefix) and ".pooler." not in k}
    assert changed and not encoder, encoder  # the encoder is bitwise untouched
    assert len(changed) == len(head_names)
    # The score chosen on the cached states is the score of the whole model with that head, run normally.
    assert report[f"dev_{key}"] == pytest.approx(_full_model_score(model, dev_enc, metric, task)[key], abs=1e-4)
    assert report[f"dev_{key}"] == max(report["dev_curve"]) and len(report["dev_curve"]) == 30
    # The head alone learns what the encoder knows (30 dev examples: 0.87 once in a full-suite run on a loaded
    # machine, 0.9+ every time alone; the bar is set below that spread, far above the random head's start).
    assert start < 0.7 and report[f"dev_{key}"] >= 0.8, report["dev_curve"]
    assert report["states"] == (len(train_enc.features) if task == "cls" else 30 * 7)


def test_the_head_fit_stops_after_patience_epochs_without_a_better_dev_score(tiny_bert, tmp_path):
    config, model, train_enc, dev_enc, metric = _setup(tiny_bert, tmp_path, "cls", AutoModelForSequenceClassification)
    still = config.model_copy(update={"head_lr": 1e-12, "head_patience": 3})
    report = fit_head(model, still, train_enc, dev_enc, metric, "fp32")
    # A head that cannot move scores the same every epoch: the first is the best, and three more end the fit.
    assert (report["epochs_run"], report["best_epoch"], report["patience"]) == (4, 1, 3)
    assert len(report["dev_curve"]) == 4 and len(set(report["dev_curve"])) == 1


def test_finetune_records_the_head_fit_and_writes_an_ordinary_folder(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 60, 0), _cls_file(tmp_path / "dev.jsonl", 30, 1)
    config = _cfg(tmp_path, tiny_bert, "cls", train, dev, epochs=1, lr=1e-4, head_epochs=20, head_lr=1e-2,
                  patience=0)  # fmt: skip
    out = run_finetune(config)
    report = json.loads((out / "finetune_report.json").read_text())
    head = report["head_first"]
    assert head["epochs"] == 20 and 1 <= head["best_epoch"] <= head["epochs_run"] <= 20
    assert len(head["dev_curve"]) == head["epochs_run"] and head["patience"] == 10
    # It ran all 20 epochs, or stopped 10 after its best.
    assert head["epochs_run"] == 20 or head["epochs_run"] == head["best_epoch"] + 10
    # One epoch at a low rate barely moves the fitted head: the final dev score starts from the head's.
    assert report["dev"]["accuracy"] >= head["dev_accuracy"] - 0.1
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert type(model).__name__ == "BertForSequenceClassification"


def test_a_head_it_does_not_know_and_distillation_are_refused(tmp_path):
    config = DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64, num_labels=3)
    with pytest.raises(ConfigError, match=r"DistilBertForSequenceClassification.*--head-epochs at 0"):
        head_of(DistilBertForSequenceClassification(config), "cls")
    with pytest.raises(ConfigError, match="lmtailor finetune --head-epochs"):
        DistillConfig.build(task="cls", model="s", teacher=tmp_path, train=tmp_path / "t.jsonl",
                            out_dir=tmp_path / "o", head_epochs=5)  # fmt: skip


def test_the_head_fitted_model_is_kept_when_fine_tuning_never_passes_it(tiny_bert, tmp_path):
    train, dev = _cls_file(tmp_path / "train.jsonl", 60, 0), _cls_file(tmp_path / "dev.jsonl", 30, 1)
    tuned = run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, dev, lr=3e-3, epochs=20, patience=0,
                              class_weights=True, out_dir=tmp_path / "tuned"))  # fmt: skip
    # A rate that wrecks every weight in one epoch: the head fitted on the tuned encoder stays the best on dev.
    out = run_finetune(_cfg(tmp_path, tuned, "cls", train, dev, lr=5.0, warmup=0.0, epochs=1, head_epochs=30,
                            head_lr=1e-2, precision="fp32", out_dir=tmp_path / "kept"))  # fmt: skip
    report = json.loads((out / "finetune_report.json").read_text())
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    [wrecked] = [r["eval_accuracy"] for r in history if "eval_accuracy" in r]
    assert report["head_first"]["kept"] is True and wrecked < report["head_first"]["dev_accuracy"]
    assert report["dev"]["accuracy"] == pytest.approx(report["head_first"]["dev_accuracy"], abs=1e-4)
    # The usual case: a fine-tune that passes the head fit keeps its own best checkpoint.
    usual = run_finetune(_cfg(tmp_path, tiny_bert, "cls", train, dev, lr=3e-3, epochs=20, patience=0,
                              class_weights=True, head_epochs=1, head_lr=1e-5, out_dir=tmp_path / "usual"))  # fmt: skip
    usual_report = json.loads((usual / "finetune_report.json").read_text())
    assert usual_report["head_first"]["kept"] is False
    assert usual_report["dev"]["accuracy"] > usual_report["head_first"]["dev_accuracy"]
