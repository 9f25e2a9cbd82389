"""Pieces of the fine-tuning stage with known answers: class weights, label lists, checkpoint location."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lmtailor.tasks.align import IGNORE, Encoded
from lmtailor.train.finetune import FinetuneConfig, _class_weights, _label_names, checkpoint_dir


def test_balanced_class_weights_ignore_unlabelled_positions():
    # Labels 0,0,0,1 (and ignored positions): n / (C * count) = 4 / (2 * 3), 4 / (2 * 1).
    enc = Encoded(features=[{"labels": [IGNORE, 0, 0, IGNORE]}, {"labels": [0, 1]}])
    assert torch.allclose(_class_weights(enc, 2), torch.tensor([4 / 6, 2.0]))
    # A class with no example gets the weight of a class seen once instead of dividing by zero.
    assert _class_weights(Encoded(features=[{"labels": 0}, {"labels": 0}]), 2).tolist() == pytest.approx([0.5, 1.0])


def test_ner_label_list_and_checkpoint_dir(tmp_path: Path):
    cfg = FinetuneConfig.build(task="ner", model="m", train=tmp_path / "t.tsv", out_dir=tmp_path / "out")
    data = type("D", (), {"labels": ["chem", "dis"]})()
    assert _label_names(cfg, data) == ["O", "B-chem", "I-chem", "B-dis", "I-dis"]
    assert checkpoint_dir(cfg) == tmp_path / ".out.checkpoints"


def test_only_the_main_process_empties_the_checkpoint_folder(tmp_path: Path):
    # Under torchrun every rank runs the stage; a replica that emptied the folder while rank 0 wrote run.json in
    # it lost that file (seen in test_shards' torchrun test). Replicas now wait and touch nothing.
    import contextlib
    from types import SimpleNamespace

    from lmtailor.train.task_training import prepare_checkpoints

    ckpt, written = tmp_path / ".out.checkpoints", []
    ckpt.mkdir()
    (ckpt / "old.json").write_text("{}")
    for rank in (1, 0):
        args = SimpleNamespace(process_index=rank, main_process_first=lambda **_: contextlib.nullcontext())
        prepare_checkpoints(ckpt, args, resume=False, then=lambda r=rank: written.append(r))
        assert (ckpt / "old.json").exists() == (rank == 1)
    assert written == [0] and ckpt.is_dir()
    (ckpt / "checkpoint-5").mkdir()
    prepare_checkpoints(ckpt, SimpleNamespace(process_index=0, main_process_first=lambda **_: contextlib.nullcontext()),
                        resume=True)  # fmt: skip
    assert (ckpt / "checkpoint-5").is_dir()  # resuming keeps what is there


def test_label_smoothing_goes_to_the_trainer_unless_the_weighted_loss_applies_it(tmp_path: Path):
    from lmtailor.train.task_training import training_args

    cfg = FinetuneConfig.build(task="cls", model="m", train=tmp_path / "t.jsonl", out_dir=tmp_path / "o",
                               label_smoothing=0.1)  # fmt: skip
    assert training_args(cfg, tmp_path / "ck", "fp32", False, "eval_accuracy").label_smoothing_factor == 0.1
    cfg.class_weights = True
    assert training_args(cfg, tmp_path / "ck", "fp32", False, "eval_accuracy").label_smoothing_factor == 0.0
    with pytest.raises(Exception, match="label_smoothing"):
        FinetuneConfig.build(task="cls", model="m", train=tmp_path / "t.jsonl", out_dir=tmp_path / "o",
                             label_smoothing=1.0)  # fmt: skip
