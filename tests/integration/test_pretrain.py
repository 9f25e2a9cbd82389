"""`lmtailor pretrain` end to end on the tiny preset: learning, HF-loadable output, logs, exact resume after SIGKILL,
torchrun parity with one process, and the bad inputs that must fail before training."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from lmtailor.errors import ConfigError, EmptyInputError, OutputExistsError
from lmtailor.models.presets import Shape, build_mlm
from lmtailor.tokenizer import TokenizerTrainConfig, run_train
from lmtailor.train.pretrain import PretrainConfig, run_pretrain

RUNNER = Path(__file__).with_name("_pretrain_run.py")
SUBJECTS = ["the licensee", "the licensor", "either party", "the supplier", "the distributor"]
VERBS = ["shall indemnify", "may terminate", "shall pay", "shall not disclose", "must notify"]
OBJECTS = ["the other party", "all fees", "confidential information", "any claims", "written notice"]
TAILS = ["in case of force majeure.", "under this agreement.", "within thirty days.", "subject to indemnification."]


def _corpus(folder: Path, docs: int = 60, seed: int = 0) -> Path:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(docs):
        sents = [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}"
                 for _ in range(6)]  # fmt: skip
        (folder / f"doc{d:03d}.txt").write_text(" ".join(sents) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def domain(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pretrain")
    corpus = _corpus(root / "corpus")
    terms = root / "terms.txt"
    terms.write_text("force majeure\nindemnification\nconfidential information\n", encoding="utf-8")
    tok = run_train(TokenizerTrainConfig(inputs=[corpus], vocab_size=300, terms=[terms], out_dir=root / "tok",
                                         algorithm="wordpiece", show_progress=False))  # fmt: skip
    return corpus, tok


def _config(domain, out: Path, **kw) -> dict:
    corpus, tok = domain
    base = {"corpus": [str(corpus)], "preset": "tiny", "tokenizer": str(tok), "out_dir": str(out), "seq_len": 32,
            "batch_size": 8, "steps": 30, "lr": 2e-3, "logging_steps": 5, "save_every": 10, "show_progress": False,
            "eval_split": None, "shuffle_buffer": 16}  # fmt: skip
    return {**base, **kw}


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def _losses(folder: Path) -> list[float]:
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _tb_tags(run_dir: Path) -> set[str]:
    """Scalar tags in a TensorBoard event file, read with tensorboardX's protobuf definitions (TFRecord framing)."""
    from tensorboardX.proto import event_pb2

    tags: set[str] = set()
    for path in run_dir.rglob("events.out.tfevents.*"):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12 : pos + 12 + length])
            tags.update(v.tag for v in event.summary.value)
            pos += 12 + length + 4
    return tags


@pytest.mark.slow
def test_pretrain_from_scratch_learns_and_writes_a_loadable_model(domain, tmp_path: Path) -> None:
    out = run_pretrain(PretrainConfig(**_config(domain, tmp_path / "mlm", steps=60, profile=2, eval_split="train",
                                                eval_blocks=20)))  # fmt: skip
    losses = _losses(out)
    assert losses[-1] < losses[0] - 1.0, losses  # a repetitive corpus is learnt quickly
    report = json.loads((out / "pretrain_report.json").read_text())
    assert report["steps"] == 60 and report["tokens_seen"] == 60 * 8 * 32
    assert report["tokens_per_second"] > 0 and report["eval_train"]["perplexity"] < 300
    model = AutoModelForMaskedLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert type(model).__name__ == "BertForMaskedLM" and model.config.vocab_size == len(tok)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("tokens_per_second" in r and "memory_mb" in r for r in rows)
    assert {"train/loss", "train/learning_rate"} <= _tb_tags(out / "runs")
    assert "aten::" in (out / "profile.txt").read_text()
    assert (out / "protected_terms.txt").is_file()
    assert not list(tmp_path.glob(".mlm*"))  # checkpoints removed after success


def test_bf16_run_scores_its_held_out_split_after_training(domain, tmp_path: Path) -> None:
    """In bf16 the Trainer wraps the sparse-MLM forward in autocast on the instance; after the class is swapped back
    for saving, the held-out loss must still run (it raised TypeError after every mixed-precision run, CUDA AMP too)."""
    out = run_pretrain(PretrainConfig(**_config(domain, tmp_path / "bf16", steps=4, precision="bf16",
                                                eval_split="train", eval_blocks=8)))  # fmt: skip
    report = json.loads((out / "pretrain_report.json").read_text())
    assert report["precision"] == "bf16" and report["eval_train"]["tokens"] > 0
    assert math.isfinite(report["eval_train"]["loss"])
    assert type(AutoModelForMaskedLM.from_pretrained(out)).__name__ == "BertForMaskedLM"


def _subprocess(config: dict, path: Path) -> subprocess.Popen:
    """Run pretrain in its own process with one thread, so that every run sums in the same order."""
    path.write_text(json.dumps(config))
    return subprocess.Popen([sys.executable, str(RUNNER), str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip


@pytest.mark.slow
def test_resume_after_sigkill_ends_with_the_same_weights(domain, tmp_path: Path) -> None:
    """A run killed with SIGKILL after its step-10 checkpoint and resumed equals an uninterrupted run, bit for bit."""
    whole = _subprocess(_config(domain, tmp_path / "whole", steps=40), tmp_path / "whole.json")
    assert whole.wait(timeout=300) == 0, whole.stderr.read()[-2000:]
    proc = _subprocess(_config(domain, tmp_path / "killed", steps=40), tmp_path / "killed.json")
    marker = tmp_path / ".killed.checkpoints" / "checkpoint-10"
    deadline = time.time() + 240
    while not list(marker.glob("rng_state*.pth")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed").exists(), "the run finished before it could be killed"
    resumed = _subprocess(_config(domain, tmp_path / "killed", steps=40, resume=True), tmp_path / "resumed.json")
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()[-2000:]
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process_with_the_same_global_batch(domain, tmp_path: Path) -> None:
    """DDP (gloo) 2 × batch 4 against 1 × batch 8, dropout off: the same blocks, masks and loss at every step."""
    single = run_pretrain(PretrainConfig(**_config(domain, tmp_path / "one", steps=12, logging_steps=1, dropout=0.0)))
    cfg = tmp_path / "ddp.json"
    cfg.write_text(json.dumps(_config(domain, tmp_path / "ddp", steps=12, logging_steps=1, dropout=0.0, batch_size=4)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(RUNNER), str(cfg)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _losses(single), _losses(tmp_path / "ddp")
    assert len(one) == len(two) == 12
    assert max(abs(x - y) / x for x, y in zip(one, two, strict=True)) < 1e-4, (one, two)
    report = json.loads((tmp_path / "ddp" / "pretrain_report.json").read_text())
    assert report["world_size"] == 2 and report["tokens_seen"] == 12 * 8 * 32


def test_continued_pretraining_of_an_existing_bert(tiny_bert: Path, domain, tmp_path: Path) -> None:
    corpus, _ = domain
    out = run_pretrain(PretrainConfig(corpus=[corpus], model=str(tiny_bert), out_dir=tmp_path / "cont", seq_len=32,
                                      batch_size=4, steps=3, save_every=100, show_progress=False, eval_split=None,
                                      gradient_checkpointing=True))  # fmt: skip
    before, after = _weights(tiny_bert), _weights(out)
    key = "bert.embeddings.word_embeddings.weight"
    assert before[key].shape == after[key].shape and not torch.equal(before[key], after[key])
    assert json.loads((out / "pretrain_report.json").read_text())["new_mlm_head_tensors"] == 0  # it had its head


@pytest.mark.parametrize("headless", [False, True], ids=["mlm", "encoder-only"])
def test_subclone_of_a_larger_bert_pretrains_and_reports_what_it_kept(domain, tmp_path: Path, headless: bool) -> None:
    """--preset with --model: the preset's size, initialised from the model's most active weights, then trained.
    A source saved without its MLM head (a sentence encoder, like MiniLM) gets a new one, and the report says so."""
    corpus, tok = domain
    tokenizer = AutoTokenizer.from_pretrained(str(tok))
    torch.manual_seed(0)
    big = build_mlm(Shape(layers=3, hidden=128, heads=4, intermediate=512), tokenizer)  # heads of 32
    (big.bert if headless else big).save_pretrained(str(tmp_path / "big"))
    tokenizer.save_pretrained(str(tmp_path / "big"))
    out = run_pretrain(PretrainConfig(corpus=[corpus], preset="tiny", model=str(tmp_path / "big"),
                                      out_dir=tmp_path / "sub", seq_len=32, batch_size=8, steps=4, save_every=100,
                                      calibration_blocks=16, show_progress=False, eval_split=None))  # fmt: skip
    report = json.loads((out / "pretrain_report.json").read_text())
    sub = report["subclone"]
    assert sub["source"] == str(tmp_path / "big") and sub["layers"] == [0, 2]  # tiny: 2 of 3 layers
    assert report["new_mlm_head_tensors"] == (6 if headless else 0)  # dense, LayerNorm (2 each), decoder + bias
    assert sub["shape"]["hidden"] == 64 and sub["shape"]["heads"] == 2 and sub["calibration_tokens"] > 0
    model = AutoModelForMaskedLM.from_pretrained(str(out))
    c = model.config
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.intermediate_size) == (2, 64, 2, 256)
    assert report["parameters"] == sum(p.numel() for p in build_mlm("tiny", tokenizer).parameters())


def test_bad_inputs_fail_before_training(tiny_bert: Path, domain, tmp_path: Path) -> None:
    corpus, tok = domain
    # A tokenizer with more tokens than the model embeds.
    with pytest.raises(ConfigError, match="embeds only"):
        run_pretrain(PretrainConfig(corpus=[corpus], model=str(tiny_bert), tokenizer=tok, out_dir=tmp_path / "a",
                                    show_progress=False))  # fmt: skip
    # A sequence longer than the position table (tiny_bert has 64 positions).
    with pytest.raises(ConfigError, match="positions"):
        run_pretrain(PretrainConfig(corpus=[corpus], model=str(tiny_bert), seq_len=128, out_dir=tmp_path / "b",
                                    show_progress=False))  # fmt: skip
    # An empty corpus, and one shorter than a block.
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(EmptyInputError):
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "c", corpus=[str(empty)])))
    short = tmp_path / "short.txt"
    short.write_text("The licensee shall pay.", encoding="utf-8")
    with pytest.raises(EmptyInputError, match="fewer than 32 tokens"):
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "d", corpus=[str(short)])))
    # Neither preset nor model; a preset without a tokenizer; a subclone larger than its source.
    with pytest.raises(ConfigError, match="or both"):
        run_pretrain(PretrainConfig(corpus=[corpus], out_dir=tmp_path / "e"))
    with pytest.raises(ConfigError, match="needs --tokenizer"):
        run_pretrain(PretrainConfig(corpus=[corpus], preset="tiny", out_dir=tmp_path / "f"))
    with pytest.raises(ConfigError, match="smaller than its source"):  # tiny_bert: hidden 32 < tiny's 64
        run_pretrain(PretrainConfig(corpus=[corpus], preset="tiny", model=str(tiny_bert), seq_len=32,
                                    out_dir=tmp_path / "f", show_progress=False))  # fmt: skip
    # An existing output is not overwritten.
    (tmp_path / "g").mkdir()
    with pytest.raises(OutputExistsError):
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "g")))
    assert not [p for p in tmp_path.iterdir() if p.name in set("abcdef")]  # nothing written


def test_resume_with_other_settings_is_refused(domain, tmp_path: Path) -> None:
    ckpt = tmp_path / ".r.checkpoints"
    run_pretrain(PretrainConfig(**_config(domain, tmp_path / "r", steps=10, save_every=5, keep_checkpoints=True)))
    assert (ckpt / "run.json").is_file()
    with pytest.raises(ConfigError, match="lr"):
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "r", steps=10, lr=1e-4, resume=True,
                                              overwrite=True)))  # fmt: skip
    assert (ckpt / "run.json").is_file()  # the old checkpoints are kept for a correct resume
    with pytest.raises(ConfigError, match="attention_dropout"):  # a setting older runs did not record still counts
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "r", steps=10, attention_dropout=0.0, resume=True,
                                              overwrite=True)))  # fmt: skip


def test_data_workers_feed_the_trainer_deterministically_and_must_match_on_resume(domain, tmp_path: Path) -> None:
    """Two DataLoader workers (what a GPU run gets by default): the same weights twice, and a resume that would
    change the workers, and with them the data order, is refused."""
    kw = {"steps": 10, "save_every": 5, "data_workers": 2}
    a = run_pretrain(PretrainConfig(**_config(domain, tmp_path / "a", **kw)))
    b = run_pretrain(PretrainConfig(**_config(domain, tmp_path / "b", keep_checkpoints=True, **kw)))
    assert json.loads((a / "pretrain_report.json").read_text())["data_workers"] == 2
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ConfigError, match="data_workers"):
        run_pretrain(PretrainConfig(**_config(domain, tmp_path / "b", **{**kw, "data_workers": 0}, resume=True,
                                              overwrite=True)))  # fmt: skip


def test_cli_pretrain_and_plan(domain, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from lmtailor.cli import app

    corpus, tok = domain
    runner = CliRunner()
    result = runner.invoke(app, ["pretrain", str(corpus), "--preset", "tiny", "--tokenizer", str(tok), "--out",
                                 str(tmp_path / "cli"), "--steps", "4", "--seq-len", "32", "--batch-size", "4",
                                 "--attention-dropout", "0", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "cli" / "pretrain_report.json").read_text())["steps"] == 4
    saved = json.loads((tmp_path / "cli" / "config.json").read_text())  # the rates it was trained with
    assert saved["attention_probs_dropout_prob"] == 0.0 and saved["hidden_dropout_prob"] == 0.1
    result = runner.invoke(app, ["plan", "--preset", "litebert", "--vocab", "8000", "--hardware", "rtx3070",
                                 "--devices", "3", "--json", str(tmp_path / "plan.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "49,667,648" in result.output
    assert json.loads((tmp_path / "plan.json").read_text())["parameters"]["total"] == 49_667_648
    result = runner.invoke(app, ["plan", "--preset", "mini", "--vocab", "8000", "--hardware", "cpu", "--seq-len", "512",
                                 "--attention-dropout", "0", "--json", str(tmp_path / "cpu.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "fused" in result.output and json.loads((tmp_path / "cpu.json").read_text())["fused_attention"] is True
    result = runner.invoke(app, ["plan", "--preset", "mini"])
    assert result.exit_code == 2 and "--vocab" in result.output
