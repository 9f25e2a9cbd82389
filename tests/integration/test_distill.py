"""`lmtailor distill` on tiny models: the student measurably moves towards the teacher, with the same or another
vocabulary, for classification and NER; hidden/attention matching; bad input fails before anything is written."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    TrainingArguments,
)

from lmtailor.compress.prune import PruneConfig, run_prune
from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.tasks.inference import TaskSpec
from lmtailor.train.distill import (
    PROJECTIONS_FILE,
    DistillConfig,
    DistillTrainer,
    TeacherCollator,
    kd_loss,
    layer_map,
    load_projections,
    run_distill,
)
from lmtailor.train.finetune import FinetuneConfig, run_finetune

CLAUSES = {
    "indemnity": "The licensee shall indemnify the licensor against all claims.",
    "law": "This agreement is governed by the laws of the State of New York.",
    "termination": "Either party may terminate this agreement upon written notice.",
}
COMMON = dict(show_progress=False, batch_size=8, max_length=32, stride=4, logging_steps=5, patience=0)


def _cls_file(path: Path, n: int, seed: int) -> Path:
    rng = random.Random(seed)
    pool = sorted({w for text in CLAUSES.values() for w in text.split()})
    rows = []
    for _ in range(n):
        label = rng.choice(sorted(CLAUSES))
        rows.append({"text": f"{CLAUSES[label]} {rng.choice(pool)} {rng.choice(pool)}", "label": label})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, clause_classifier_factory) -> tuple[Path, Path]:
    """A tiny 4-layer classifier fine-tuned on the clause task, and its train file."""
    root = tmp_path_factory.mktemp("distill")
    train = _cls_file(root / "train.jsonl", 60, 0)
    start = clause_classifier_factory(root / "start")
    cfg = FinetuneConfig.build(task="cls", model=str(start), train=train, out_dir=root / "teacher", epochs=8, lr=3e-3,
                               **COMMON)  # fmt: skip
    return run_finetune(cfg), train


def _kl_to_teacher(student: Path, teacher: Path, texts: list[str]) -> float:
    """Mean KL(teacher ‖ student) at T=1 on `texts`, each model reading them with its own tokenizer."""
    probs = []
    for folder in (teacher, student):
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), num_labels=3).eval()
        torch.manual_seed(0)
        with torch.no_grad():
            logits = model(**tok(texts, padding=True, truncation=True, max_length=32, return_tensors="pt")).logits
        probs.append(torch.log_softmax(logits, -1))
    t, s = probs
    return float((t.exp() * (t - s)).sum(-1).mean())


def _distill(tmp_path: Path, teacher: Path, student: Path, train: Path, name: str = "student", **kw) -> Path:
    values = dict(task="cls", teacher=teacher, model=str(student), train=train, out_dir=tmp_path / name, epochs=8,
                  lr=3e-3, alpha=0.0, temperature=2.0, **COMMON)  # fmt: skip
    return run_distill(DistillConfig.build(**{**values, **kw}))


def test_kd_loss_known_answers():
    z = torch.tensor([[1.0, 2.0, 3.0]])
    assert kd_loss(z, z, 2.0).item() == pytest.approx(0.0, abs=1e-7)
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 2 * np.log(3.0)]])  # teacher at T=2: (1/4, 3/4)
    expected = 4 * (0.25 * np.log(0.25 / 0.5) + 0.75 * np.log(0.75 / 0.5))  # T² · KL(teacher ‖ uniform)
    assert kd_loss(s, t, 2.0).item() == pytest.approx(expected, rel=1e-5)
    mask = torch.tensor([False])
    assert kd_loss(s, t, 2.0, mask).item() == 0.0


def test_cls_state_term_known_answer(tmp_path):
    """The loss is α·CE + (1-α)·KD + φ·MSE(proj(student's final [CLS] state), teacher's state), in training only."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=16, num_labels=3, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)  # fmt: skip
    student, projection = BertForSequenceClassification(config), torch.nn.Linear(16, 24)
    cfg = DistillConfig.build(task="cls", teacher=tmp_path, model="m", train=tmp_path / "t.jsonl", out_dir=tmp_path,
                              alpha=0.3, temperature=2.0, feature_weight=0.7)  # fmt: skip
    args = TrainingArguments(output_dir=str(tmp_path / "ckpt"), report_to=[], use_cpu=True)
    trainer = DistillTrainer(model=student, args=args, distill=cfg, feature_projection=projection)
    inputs = {
        "input_ids": torch.randint(5, 50, (2, 6)),
        "attention_mask": torch.ones(2, 6, dtype=torch.long),
        "labels": torch.tensor([0, 2]),
        "teacher_logits": torch.randn(2, 3),
        "teacher_state": torch.randn(2, 24),
    }
    student.train()
    loss = trainer.compute_loss(student, inputs)
    with torch.no_grad():
        out = student(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], output_hidden_states=True)
        expected = (0.3 * F.cross_entropy(out.logits, inputs["labels"])
                    + 0.7 * kd_loss(out.logits, inputs["teacher_logits"], 2.0)
                    + 0.7 * F.mse_loss(projection(out.hidden_states[-1][:, 0]), inputs["teacher_state"]))  # fmt: skip
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    student.eval()  # outside training, no [CLS] term
    no_hint = expected - 0.7 * F.mse_loss(projection(out.hidden_states[-1][:, 0]), inputs["teacher_state"])
    assert trainer.compute_loss(student, inputs).item() == pytest.approx(no_hint.item(), rel=1e-5)
    collated = TeacherCollator(lambda rows: {"n": len(rows)})(
        [{"teacher_logits": np.zeros(3, np.float32), "teacher_state": np.ones(24, np.float32)} for _ in range(2)]
    )
    assert collated["teacher_state"].shape == (2, 24) and collated["teacher_logits"].shape == (2, 3)


def test_layer_map_is_uniform_and_ends_at_the_last_layer():
    assert layer_map(3, 6) == [2, 4, 6]
    assert layer_map(2, 4) == [2, 4]
    assert layer_map(4, 4) == [1, 2, 3, 4]


def test_collator_pads_token_level_teacher_logits():
    from tokenizers import Tokenizer, models
    from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerFast

    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[PAD]": 0, "a": 1}, "[PAD]")),
                                  pad_token="[PAD]")  # fmt: skip
    one = {"input_ids": [1], "attention_mask": [1], "labels": [1], "teacher_logits": np.ones((1, 2), np.float32)}
    feats = [{"input_ids": [1, 1, 1], "attention_mask": [1, 1, 1], "labels": [0, 1, 0],
              "teacher_logits": np.ones((3, 2), np.float32)}, one]  # fmt: skip
    batch = TeacherCollator(DataCollatorForTokenClassification(tok))(feats)
    assert batch["teacher_logits"].shape == (2, 3, 2)
    assert batch["teacher_logits"][1, 1:].abs().sum() == 0 and batch["teacher_logits"][1, 0].sum() == 2
    assert "teacher_logits" in feats[0]  # the dataset's own dicts are left as they were


def test_pruned_student_moves_towards_the_teacher(tmp_path, teacher):
    teacher_dir, train = teacher
    student = run_prune(PruneConfig.build(model=teacher_dir, out_dir=tmp_path / "pruned", keep_layers=[0],
                                          show_progress=False))  # fmt: skip
    texts = [json.loads(line)["text"] for line in train.read_text().splitlines()]
    before = _kl_to_teacher(student, teacher_dir, texts)
    out = _distill(tmp_path, teacher_dir, student, train)
    after = _kl_to_teacher(out, teacher_dir, texts)
    assert after < 0.5 * before, (before, after)
    manifest = json.loads((out / "lmtailor.json").read_text())
    assert manifest["stage"] == "distill-cls" and "teacher" in manifest["inputs"]
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert model.config.num_hidden_layers == 1
    assert json.loads((out / "task.json").read_text())["task"] == "cls"


def test_student_with_another_vocabulary_and_unlabelled_text(tmp_path, teacher, tiny_roberta):
    teacher_dir, train = teacher
    extra = tmp_path / "extra.txt"
    extra.write_text("\n\n".join(f"{c} notice" for c in CLAUSES.values()) + "\n", encoding="utf-8")
    texts = [json.loads(line)["text"] for line in train.read_text().splitlines()]
    before = _kl_to_teacher(tiny_roberta, teacher_dir, texts)  # a fresh head over the teacher's labels
    out = _distill(tmp_path, teacher_dir, tiny_roberta, train, unlabelled=[extra], epochs=10)
    model = AutoModelForSequenceClassification.from_pretrained(str(out))
    assert model.config.id2label == AutoModelForSequenceClassification.from_pretrained(str(teacher_dir)).config.id2label
    after = _kl_to_teacher(out, teacher_dir, texts)
    assert after < 0.5 * before, (before, after)
    assert json.loads((out / "lmtailor.json").read_text())["inputs"]["unlabelled_0"]["path"] == str(extra.resolve())


def _narrow_student(tmp_path: Path, teacher_dir: Path) -> Path:
    """A 2-layer, 16-wide BERT classifier on the teacher's tokenizer (the teacher is 32 wide: projections needed)."""
    tcfg = AutoModelForSequenceClassification.from_pretrained(str(teacher_dir)).config
    narrow = BertConfig(vocab_size=tcfg.vocab_size, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=3, id2label=tcfg.id2label,
                        label2id=tcfg.label2id)  # fmt: skip
    student = tmp_path / "narrow"
    torch.manual_seed(0)
    BertForSequenceClassification(narrow).save_pretrained(str(student))
    AutoTokenizer.from_pretrained(str(teacher_dir)).save_pretrained(str(student))
    TaskSpec(task="cls", max_length=32, stride=4).save(student)
    return student


def test_hidden_and_attention_matching_with_a_narrower_student(tmp_path, teacher):
    teacher_dir, train = teacher
    student = _narrow_student(tmp_path, teacher_dir)
    texts = [json.loads(line)["text"] for line in train.read_text().splitlines()]
    before = _kl_to_teacher(student, teacher_dir, texts)
    out = _distill(tmp_path, teacher_dir, student, train, hidden_weight=1.0, attention_weight=1.0, alpha=0.5)
    after = _kl_to_teacher(out, teacher_dir, texts)
    assert after < before, (before, after)
    log = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(np.isfinite(r["loss"]) for r in log if "loss" in r)


def _cls_states(folder: Path, texts: list[str]) -> np.ndarray:
    """[n, H] final-layer states at the first token, the model reading `texts` with its own tokenizer."""
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModelForSequenceClassification.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        out = model(**tok(texts, padding=True, return_tensors="pt"), output_hidden_states=True)
    return out.hidden_states[-1][:, 0].numpy()


def _within_class(x: np.ndarray, labels: list[str]) -> np.ndarray:
    """x less the mean of its label's rows: the variation a label (and so a logit) does not explain."""
    out = x.copy()
    for label in set(labels):
        rows = [i for i, lab in enumerate(labels) if lab == label]
        out[rows] -= x[rows].mean(0)
    return out


def _explained(x: np.ndarray, y: np.ndarray, fit_on: int) -> float:
    """Held-out R² of the least-squares linear map (with bias) from x to y, fitted on the first `fit_on` rows."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.linalg.lstsq(x1[:fit_on], y[:fit_on], rcond=None)[0]
    rest, pred = y[fit_on:], x1[fit_on:] @ w
    return 1.0 - ((rest - pred) ** 2).sum() / ((rest - rest.mean(0)) ** 2).sum()


def test_cls_state_matching_across_tokenizers(tmp_path, teacher, tiny_roberta):
    teacher_dir, train = teacher
    rows = [json.loads(line) for line in _cls_file(tmp_path / "probe.jsonl", 300, 1).read_text().splitlines()]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    target = _within_class(_cls_states(teacher_dir, texts), labels)
    plain = _distill(tmp_path, teacher_dir, tiny_roberta, train, name="plain", alpha=0.5, epochs=20)
    hinted = _distill(
        tmp_path, teacher_dir, tiny_roberta, train, name="hinted", alpha=0.5, epochs=20, feature_weight=10.0
    )
    # The student reads with its own (RoBERTa) tokenizer. Logits carry the 3 classes; the matched [CLS] state also
    # carries how the teacher's representation varies inside a class, which the plain student's does not predict.
    r2_plain, r2_hinted = (
        _explained(_within_class(_cls_states(d, texts), labels), target, 200) for d in (plain, hinted)
    )
    assert r2_hinted > r2_plain, (r2_plain, r2_hinted)  # 0.07-0.69 apart in 7 runs (the tiny tokenizer varies)
    assert json.loads((hinted / "lmtailor.json").read_text())["config"]["feature_weight"] == 10.0
    reloaded = AutoModelForSequenceClassification.from_pretrained(str(hinted))  # the projection is not saved with it
    assert not any("projection" in k for k in reloaded.state_dict())


def test_cls_state_projection_is_checkpointed_and_resumed(tmp_path, teacher, caplog):
    teacher_dir, train = teacher
    student = _narrow_student(tmp_path, teacher_dir)
    cfg = dict(name="resumed", alpha=0.5, feature_weight=1.0, dev=train, epochs=2, keep_checkpoints=True)
    out = _distill(tmp_path, teacher_dir, student, train, **cfg)
    ckpt = tmp_path / ".resumed.checkpoints"
    saved = sorted(ckpt.glob(f"checkpoint-*/{PROJECTIONS_FILE}"), key=lambda p: int(p.parent.name.split("-")[1]))
    assert saved, sorted(p.name for p in ckpt.iterdir())
    torch.manual_seed(123)
    fresh = torch.nn.ModuleDict({"feature": torch.nn.Linear(16, 32)})
    assert load_projections(fresh, ckpt)
    last = torch.load(saved[-1], weights_only=True)
    assert torch.equal(fresh["feature"].weight, last["feature.weight"])
    steps = json.loads((out / "finetune_report.json").read_text())["steps"]
    with caplog.at_level("INFO", logger="lmtailor.train.distill"):
        _distill(tmp_path, teacher_dir, student, train, **{**cfg, "epochs": 3, "resume": True, "overwrite": True})
    assert "projections continue" in caplog.text
    assert json.loads((out / "finetune_report.json").read_text())["steps"] == steps * 3 // 2
    assert not load_projections(fresh, tmp_path / "nowhere")


def test_torchrun_distillation_with_cls_state_matching(tmp_path, teacher):
    """Two processes (gloo): the projection sits outside the DDP model, so its gradients are averaged by hand."""
    import os
    import socket
    import subprocess
    import sys

    teacher_dir, train = teacher
    student = _narrow_student(tmp_path, teacher_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "lmtailor.cli", "distill", "cls", str(train), "--teacher", str(teacher_dir), "--student",
           str(student), "--out", str(tmp_path / "ddp"), "--epochs", "2", "--batch-size", "8", "--lr", "3e-3",
           "--max-length", "32", "--stride", "4", "--patience", "0", "--feature-weight", "1",
           "--no-progress"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "ddp" / "finetune_report.json").read_text())
    assert report["steps"] == 8  # 60 examples, 8 per process, 2 processes: 4 steps an epoch
    # Each process logs how far its projection ended from the others': without the averaging they drift apart.
    spreads = [float(x) for x in re.findall(r"largest difference\s+(\S+)", proc.stdout + proc.stderr)]
    assert spreads == [0.0, 0.0], spreads
    assert json.loads((tmp_path / "ddp" / "lmtailor.json").read_text())["config"]["feature_weight"] == 1.0


def _ner_file(path: Path, n: int = 40) -> Path:
    rng = random.Random(0)
    lines = []
    for _ in range(n):
        left, right = rng.choice(["the", "a", "this"]), rng.choice(["claims", "notice", "laws"])
        lines += [f"{left}\tO", "licensee\tB-Party", "shall\tO", "indemnify\tO", "the\tO", "licensor\tB-Party",
                  f"{right}\tO", ""]  # fmt: skip
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_ner_distillation_into_a_pruned_student(tmp_path, tiny_bert):
    train = _ner_file(tmp_path / "train.tsv")
    cfg = FinetuneConfig.build(task="ner", model=str(tiny_bert), train=train, dev=train, out_dir=tmp_path / "teacher",
                               epochs=6, lr=1e-2, **COMMON)  # fmt: skip
    teacher_dir = run_finetune(cfg)
    student = run_prune(PruneConfig.build(model=teacher_dir, out_dir=tmp_path / "pruned", keep_layers=[1],
                                          show_progress=False))  # fmt: skip
    out = _distill(tmp_path, teacher_dir, student, train, task="ner", dev=train, test=train, lr=1e-2)
    report = json.loads((out / "finetune_report.json").read_text())
    teacher_f1 = json.loads((teacher_dir / "finetune_report.json").read_text())["dev"]["f1"]
    assert report["dev"]["f1"] >= min(teacher_f1, 0.9) - 0.05, (report["dev"], teacher_f1)
    assert json.loads((out / "lmtailor.json").read_text())["stage"] == "distill-ner"


def test_student_with_other_labels_is_refused(tmp_path, teacher, tiny_classifier):
    teacher_dir, train = teacher
    with pytest.raises(ConfigError, match="predicts labels"):
        _distill(tmp_path, teacher_dir, tiny_classifier, train)
    assert not (tmp_path / "student").exists()


def test_hidden_matching_needs_the_same_tokenizer(tmp_path, teacher, tiny_roberta):
    teacher_dir, train = teacher
    with pytest.raises(ConfigError, match="share the teacher's tokenizer"):
        _distill(tmp_path, teacher_dir, tiny_roberta, train, hidden_weight=1.0)
    assert not (tmp_path / "student").exists()


def test_cls_state_matching_is_for_classification(tmp_path, tiny_bert):
    train = _ner_file(tmp_path / "train.tsv")
    cfg = FinetuneConfig.build(task="ner", model=str(tiny_bert), train=train, out_dir=tmp_path / "teacher", epochs=1,
                               **COMMON)  # fmt: skip
    teacher_dir = run_finetune(cfg)
    with pytest.raises(ConfigError, match="feature_weight"):
        _distill(tmp_path, teacher_dir, tiny_bert, train, task="ner", feature_weight=1.0)
    assert not (tmp_path / "student").exists()


def test_labels_the_teacher_does_not_know(tmp_path, teacher, tiny_roberta):
    teacher_dir, _ = teacher
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "a clause", "label": "warranty"}) + "\n", encoding="utf-8")
    with pytest.raises(InputFormatError, match="warranty"):
        _distill(tmp_path, teacher_dir, tiny_roberta, bad)


def test_teacher_of_another_task(tmp_path, teacher, tiny_roberta):
    teacher_dir, _ = teacher
    with pytest.raises(ConfigError, match="cls model"):
        _distill(tmp_path, teacher_dir, tiny_roberta, _ner_file(tmp_path / "x.tsv", 3), task="ner")


def test_a_student_of_the_teacher_fused_with_the_baseline(tmp_path, teacher):
    from lmtailor.baseline.config import BaselineConfig
    from lmtailor.baseline.stage import run_baseline

    teacher_dir, train = teacher
    dev = _cls_file(tmp_path / "dev.jsonl", 30, 1)
    baseline = run_baseline(BaselineConfig.build(task="cls", train=train, dev=dev, out_dir=tmp_path / "bl",
                                                 c_grid=[1.0], show_progress=False))  # fmt: skip
    student = run_prune(PruneConfig.build(model=teacher_dir, out_dir=tmp_path / "pruned", keep_layers=[0],
                                          show_progress=False))  # fmt: skip
    out = _distill(tmp_path, teacher_dir, student, train, dev=dev, baseline=baseline, epochs=2)
    fusion = json.loads((out / "finetune_report.json").read_text())["teacher_fusion"]
    # The grid holds weight 1 (the teacher alone) and 0 (the baseline alone): the choice is at least as good as both.
    assert fusion["dev_fused"] >= max(fusion["dev_model"], fusion["dev_baseline"])
    assert 0 <= fusion["weight"] <= 1 and fusion["temperature"] in (1.0, 2.0, 4.0, 8.0, 16.0)
    assert fusion["train_folds"] == 5 and 0 <= fusion["train_baseline_out_of_fold"] <= 1  # margins it was not fit on
    assert json.loads((out / "lmtailor.json").read_text())["inputs"]["baseline"]["path"] == str(baseline.resolve())
    # A baseline fitted on other labels is refused before the teacher's pass; NER and a missing dev split too.
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps({"text": f"text {i}", "label": f"x{i % 2}"}) + "\n" for i in range(8)))
    wrong = run_baseline(BaselineConfig.build(task="cls", train=other, dev=other, out_dir=tmp_path / "bl2",
                                              c_grid=[1.0], show_progress=False))  # fmt: skip
    with pytest.raises(InputFormatError, match=r"bl2: its labels differ"):
        _distill(tmp_path, teacher_dir, student, train, name="s2", dev=dev, baseline=wrong)
    assert not (tmp_path / "s2").exists()
    with pytest.raises(ConfigError, match="chosen on dev"):
        _distill(tmp_path, teacher_dir, student, train, name="s3", baseline=baseline)
    with pytest.raises(ConfigError, match="only a classification baseline"):
        _distill(tmp_path, teacher_dir, student, train, name="s4", task="ner", dev=dev, baseline=baseline)
