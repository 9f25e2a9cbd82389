"""`lmtailor tokenize` and pretraining from token shards: the same blocks as the on-the-fly stream, the same shards
whatever the worker count, the same global batches whatever the ranks and DataLoader workers, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.data_loader import IterableDatasetShard
from torch.utils.data import DataLoader
from transformers import AutoModelForMaskedLM, AutoTokenizer

from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.shards.config import TokenizeConfig
from lmtailor.shards.read import ShardCorpus, ShardIndexStream
from lmtailor.shards.write import run_tokenize
from lmtailor.tokenizer import TokenizerTrainConfig, run_train
from lmtailor.train.pretrain import PretrainConfig, make_stream, run_pretrain

SUBJECTS = ["the licensee", "the licensor", "either party", "the supplier", "der Lieferant"]
VERBS = ["shall indemnify", "may terminate", "shall pay", "shall not disclose", "must notify"]
OBJECTS = ["the other party", "all fees", "confidential information", "any claims", "written notice"]
TAILS = ["in case of force majeure.", "under this agreement.", "within thirty days.", "不可抗力除外。"]


@pytest.fixture(scope="module")
def domain(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shards")
    rng = random.Random(0)
    corpus = root / "corpus"
    corpus.mkdir()
    for d in range(40):
        sents = [f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(TAILS)}"
                 for _ in range(6)]  # fmt: skip
        (corpus / f"doc{d:03d}.txt").write_text(" ".join(sents) + "\n", encoding="utf-8")
    terms = root / "terms.txt"
    terms.write_text("force majeure\nconfidential information\n不可抗力\n", encoding="utf-8")
    tok = run_train(TokenizerTrainConfig(inputs=[corpus], vocab_size=300, terms=[terms], out_dir=root / "tok",
                                         algorithm="wordpiece", show_progress=False))  # fmt: skip
    return corpus, tok


def _tokenize(domain, out: Path, **kw) -> Path:
    corpus, tok = domain
    return run_tokenize(TokenizeConfig(corpus=[corpus], tokenizer=tok, out_dir=out, show_progress=False, **kw))


def _pretrain(domain, corpus, out: Path, **kw) -> PretrainConfig:
    _, tok = domain
    values = {"corpus": [str(corpus)], "preset": "tiny", "tokenizer": str(tok), "out_dir": str(out), "seq_len": 32,
              "batch_size": 4, "steps": 6, "lr": 2e-3, "logging_steps": 1, "save_every": 100, "show_progress": False,
              "eval_split": None, "dropout": 0.0}  # fmt: skip
    return PretrainConfig(**{**values, **kw})


def test_shards_hold_the_on_the_fly_blocks_and_do_not_depend_on_workers(domain, tmp_path):
    one = _tokenize(domain, tmp_path / "one")
    two = _tokenize(domain, tmp_path / "two", workers=2)
    files = sorted(p.name for p in one.iterdir() if p.suffix == ".npy")
    assert files == ["train-00000.ids.npy", "train-00000.units.npy"]
    assert all((one / f).read_bytes() == (two / f).read_bytes() for f in files)  # 1 and 2 workers: same bytes
    meta = json.loads((one / "shards.json").read_text())
    assert meta["masking"]["terms"] == 3 and meta["dtype"] == "uint16" and list(meta["splits"]) == ["train"]

    tok = AutoTokenizer.from_pretrained(str(domain[1]))
    cfg = _pretrain(domain, domain[0], tmp_path / "x")
    fly = list(make_stream(cfg, tok, "train", 1, domain[1]).blocks())
    shard = list(ShardCorpus(one, "train", tok, 32).blocks())
    assert len(fly) == len(shard) > 20
    for (a, ua), (b, ub) in zip(fly, shard, strict=True):
        assert np.array_equal(a, b)
        assert np.array_equal(ua >= 0, ub >= 0)  # the same tokens in units …
        assert np.array_equal(np.unique(ua, return_inverse=True)[1], np.unique(ub, return_inverse=True)[1])  # … alike

    small = _tokenize(domain, tmp_path / "small", shard_tokens=1024)  # several shards; blocks never cross one
    meta = json.loads((small / "shards.json").read_text())["splits"]["train"]
    assert len(meta["shards"]) > 1
    assert ShardCorpus(small, "train", tok, 32).n_blocks == sum(s["tokens"] // 30 for s in meta["shards"])


def _positions(dataset, batch: int, workers: int, n: int) -> list[list[int]]:
    loader = DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=lambda items: items)
    out = []
    for b in loader:
        out.append([it["position"] for it in b])
        if len(out) == n:
            break
    return out


def test_each_rank_and_worker_reads_its_own_slice_of_the_same_global_batches():
    """One process with batch 8 against two ranks with batch 4 (accelerate's shard of a stream), each with 0 or 2
    DataLoader workers: the same blocks at every step, and no block read twice."""
    stream = ShardIndexStream(n_blocks=37, seed=0, global_batch=8)  # passes run into each other: 37 is not 8k
    single = _positions(stream, 8, 0, 12)
    assert single == [list(range(8 * k, 8 * k + 8)) for k in range(12)]
    assert _positions(stream, 8, 2, 12) == single
    for workers in (0, 2):
        ranks = [_positions(IterableDatasetShard(stream, batch_size=4, num_processes=2, process_index=r), 4,
                            workers, 12) for r in range(2)]  # fmt: skip
        assert [a + b for a, b in zip(*ranks, strict=True)] == single
    one_pass = list(ShardIndexStream(n_blocks=37, seed=3, global_batch=8, passes=1))
    assert sorted(it["block"] for it in one_pass) == list(range(37))  # a pass is a permutation of every block


def test_pretrain_from_shards_trains_evaluates_and_resumes(domain, tmp_path):
    shards = _tokenize(domain, tmp_path / "shards")
    whole = run_pretrain(_pretrain(domain, shards, tmp_path / "whole", steps=8, eval_split="train", eval_blocks=8))
    report = json.loads((whole / "pretrain_report.json").read_text())
    assert report["steps"] == 8 and report["eval_train"]["tokens"] > 0
    assert type(AutoModelForMaskedLM.from_pretrained(whole)).__name__ == "BertForMaskedLM"
    # Resume from the step-4 checkpoint of a run cut there: the same weights as the uninterrupted run.
    part = run_pretrain(_pretrain(domain, shards, tmp_path / "part", steps=8, save_every=4, keep_checkpoints=True))
    ckpt = tmp_path / ".part.checkpoints"
    for later in ckpt.glob("checkpoint-8"):
        import shutil

        shutil.rmtree(later)
    resumed = run_pretrain(_pretrain(domain, shards, tmp_path / "part", steps=8, save_every=4, resume=True,
                                     overwrite=True))  # fmt: skip
    from safetensors.torch import load_file

    a, b = load_file(str(whole / "model.safetensors")), load_file(str(resumed / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed run differs"
    assert part == resumed


def test_bad_shards_are_refused_with_the_fix(domain, tmp_path):
    shards = _tokenize(domain, tmp_path / "shards")
    corpus, tok = domain
    other = run_train(TokenizerTrainConfig(inputs=[corpus], vocab_size=320, out_dir=tmp_path / "other-tok",
                                           algorithm="wordpiece", show_progress=False))  # fmt: skip
    with pytest.raises(ConfigError, match="another tokenizer"):
        run_pretrain(_pretrain(domain, shards, tmp_path / "a", tokenizer=str(other)))
    with pytest.raises(ConfigError, match="one token-shard folder"):
        run_pretrain(PretrainConfig(**{**_pretrain(domain, shards, tmp_path / "a").model_dump(),
                                       "corpus": [shards, corpus]}))  # fmt: skip
    with pytest.raises(ConfigError, match="terms"):
        run_pretrain(_pretrain(domain, shards, tmp_path / "a", terms=[str(tok / "protected_terms.txt")]))
    ids = shards / "train-00000.ids.npy"
    ids.write_bytes(ids.read_bytes()[:-100])  # a partial copy
    with pytest.raises(InputFormatError, match="truncated"):
        run_pretrain(_pretrain(domain, shards, tmp_path / "a"))
    assert not (tmp_path / "a").exists()


@pytest.mark.slow
def test_torchrun_ranks_read_their_own_blocks_and_match_one_process(domain, tmp_path):
    """DDP (gloo) 2 × batch 4 from shards, each rank reading its own blocks (no batch dispatch), against 1 × batch 8:
    the same loss at every step, within float summation order (1e-4 relative)."""
    import os
    import socket
    import subprocess
    import sys

    shards = _tokenize(domain, tmp_path / "shards")
    single = run_pretrain(_pretrain(domain, shards, tmp_path / "one", steps=10, batch_size=8))
    cfg = tmp_path / "ddp.json"
    cfg.write_text(_pretrain(domain, shards, tmp_path / "ddp", steps=10, batch_size=4).model_dump_json())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    runner = Path(__file__).with_name("_pretrain_run.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           str(runner), str(cfg)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]

    def losses(folder: Path) -> list[float]:
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        return [r["loss"] for r in rows if "loss" in r]

    one, two = losses(single), losses(tmp_path / "ddp")
    assert len(one) == len(two) == 10
    assert max(abs(x - y) / x for x, y in zip(one, two, strict=True)) < 1e-4, (one, two)
    assert json.loads((tmp_path / "ddp" / "pretrain_report.json").read_text())["world_size"] == 2
