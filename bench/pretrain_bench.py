"""Benchmarks of `lmtailor pretrain` (issue 6); results in bench/results/pretrain_*.json, cited by docs/benchmarks.md.

    .venv/bin/python bench/pretrain_bench.py --task legal-en --teacher /tmp/finetune-ls/cuad [--minutes 45]
        corpus (CUAD contracts) → mined terms → 8k WordPiece domain tokenizer → `mini` pretrained for --minutes
        → distilled from the fine-tuned MiniLM teacher on the CUAD clauses → test accuracy, parameters of both.
        [--dropout 0] [--mask 0.25] [--mlm-out mini-mlm-m25: its folder in --work] [--distill-epochs 12]
        [--unlabelled 8000: contract paragraphs the teacher labels for the student]
        [--reuse-mlm: distil the model already pretrained in --work] [--tag _v2: results file suffix]
        [--patience 0: distil every epoch, no early stopping] [--distill-seed 1: another seed of the distillation]
        [--subclone-from MODEL: start `mini` as a subclone of MODEL (e.g. MiniLM) moved onto the domain tokenizer]
        [--hidden-weight 1: also match the teacher's hidden states; the teacher must use the domain tokenizer]
        [--feature-weight 1: also match the teacher's final [CLS] state, through a learned projection]
    .venv/bin/python bench/pretrain_bench.py --task levers [--minutes 8]
        the pretraining levers (dropout 0, 25% masking, batch 16) against the 45-minute run's setting, each `mini`
        pretrained for the same --minutes, scored by the held-out MLM loss on contracts/dev.
    .venv/bin/python bench/pretrain_bench.py --task speed
        tokens/s of `lmtailor pretrain` against a minimal hand-written PyTorch MLM loop (same model, batch, sequence
        length, masking rate), each in its own process, alternated, in one run.
    .venv/bin/python bench/pretrain_bench.py --task precision
        fp32 against bf16 tokens/s and losses of `lmtailor pretrain` (the `mini` subclone of MiniLM), alternated.
    .venv/bin/python bench/pretrain_bench.py --task attention-dropout
        tokens/s of the same, at 128 and 512 tokens, with BERT's attention dropout (0.1) and with none, alternated.
    .venv/bin/python bench/pretrain_bench.py --task memory
        peak RSS of `lmtailor pretrain` (fixed steps) on a corpus and on the same corpus grown 10×.
    .venv/bin/python bench/pretrain_bench.py --task data [--baseline-src /tmp/old/src]
        tokens/s of the masked block stream alone (what feeds a GPU) with 0 and 2 DataLoader workers, and of an
        older checkout's single-process stream in the same run.
    .venv/bin/python bench/pretrain_bench.py --task held-out --model M1 --model M2 --corpus CORPUS [--split dev]
        the MLM loss of each model on the first 300 blocks of a corpus split (15% whole-term masking, unshuffled).

Work folders live under --work (default /tmp/pretrain-bench); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "bench" / "results"


def _machine() -> dict:
    import os

    import torch

    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average": os.getloadavg()}  # fmt: skip


def _save(name: str, result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2, ensure_ascii=False))


# --- English legal: domain tokenizer + mini pretraining + distillation ------------------------------------------


def _domain_tokenizer(work: Path, vocab: int) -> tuple[Path, Path, Path]:
    from lmtailor.corpus import CorpusConfig
    from lmtailor.corpus import run as run_corpus
    from lmtailor.terms import MergeConfig, MineConfig, run_merge, run_mine
    from lmtailor.tokenizer import TokenizerTrainConfig, run_train

    cuad = DATA / "en-legal" / "cuad" / "contracts"
    corpus = work / "corpus"
    if not corpus.exists():  # train → train; dev → dev (the held-out MLM loss)
        run_corpus(CorpusConfig.build(inputs=[cuad / "train"], out_dir=corpus, split_ratios=[1.0, 0.0, 0.0],
                                      show_progress=False))  # fmt: skip
    dev = work / "corpus-dev"
    if not dev.exists():
        run_corpus(CorpusConfig.build(inputs=[cuad / "dev"], out_dir=dev, split_ratios=[1.0, 0.0, 0.0],
                                      show_progress=False))  # fmt: skip
    terms = work / "terms"
    if not terms.exists():
        mined = run_mine(MineConfig.build(inputs=[corpus], out_dir=work / "mined", show_progress=False))
        run_merge(MergeConfig.build(inputs=[mined / "terms.tsv"], out_dir=terms, max_terms=300, show_progress=False))
    tok = work / f"tok{vocab}"
    if not tok.exists():
        run_train(TokenizerTrainConfig.build(inputs=[corpus], out_dir=tok, vocab_size=vocab, algorithm="wordpiece",
                                             terms=[terms / "terms.tsv"], show_progress=False))  # fmt: skip
    return corpus, dev, tok


def bench_legal_en(
    work: Path,
    teacher: Path,
    minutes: float,
    vocab: int,
    dropout: float | None = None,
    distill_epochs: float = 6,
    unlabelled: int = 0,
    reuse_mlm: bool = False,
    mask: float = 0.15,
    mlm_out: str = "mini-mlm",
    subclone_from: Path | None = None,
    patience: int = 2,
    distill_seed: int = 0,
    hidden_weight: float = 0.0,
    tag: str = "",
    feature_weight: float = 0.0,
) -> dict:
    """`dropout`: of the pretraining (None: the preset's 0.1); `mask`: its masking rate; `mlm_out`: the folder in
    `work` it writes (or reuses); `unlabelled`: contract paragraphs from the pretraining
    corpus whose teacher predictions the student also learns (0: the labelled clauses only); `reuse_mlm`: distil the
    model an earlier run pretrained in `work` instead of pretraining again; `subclone_from`: a larger BERT (MiniLM)
    moved onto the domain tokenizer (`vocab transfer`), whose subclone `mini` starts from instead of random weights.
    The transfer and the subcloning count in the time budget (`pretrain_seconds_total`). `distill_seed`: of the
    distillation (the unlabelled sample, the data order and the new classifier head). `hidden_weight`: of the
    hidden-state matching, for a teacher on the student's tokenizer (MiniLM moved onto it and fine-tuned);
    `feature_weight`: of the [CLS]-state matching, for any teacher. `tag`: the
    student is written to `{mlm_out}-distilled{tag}`."""
    from lmtailor.train.distill import DistillConfig, run_distill
    from lmtailor.vocab import TransferConfig, run_transfer

    corpus, dev, tok = _domain_tokenizer(work, vocab)
    mlm = work / mlm_out
    total = None
    if not (reuse_mlm and (mlm / "pretrain_report.json").exists()):
        t0 = time.perf_counter()
        init = None
        if subclone_from is not None:
            moved = work / f"transfer-tok{vocab}"
            init = run_transfer(TransferConfig.build(model=str(subclone_from), tokenizer=tok, out_dir=moved,
                                                     overwrite=True, show_progress=False))  # fmt: skip
        _pretrain_legal_en(work, corpus, tok, minutes, dropout, mlm_out, mask=mask, init=init)
        total = round(time.perf_counter() - t0, 1)
    mlm_report = json.loads((mlm / "pretrain_report.json").read_text())
    held_out = _held_out(mlm, dev)
    clauses = DATA / "en-legal" / "cuad" / "clauses"
    student = work / f"{mlm_out}-distilled{tag}"
    extra = {"unlabelled": [corpus], "max_unlabelled": unlabelled} if unlabelled else {}
    run_distill(DistillConfig.build(task="cls", train=clauses / "train.jsonl", dev=clauses / "dev.jsonl",
                                    test=clauses / "test.jsonl", teacher=str(teacher), model=str(mlm), out_dir=student,
                                    epochs=distill_epochs, lr=3e-4, batch_size=16, max_length=256, alpha=0.3,
                                    temperature=2.0, patience=patience, seed=distill_seed, overwrite=True,
                                    hidden_weight=hidden_weight, feature_weight=feature_weight, show_progress=False,
                                    **extra))  # fmt: skip
    report = json.loads((student / "finetune_report.json").read_text())
    teacher_report = json.loads((teacher / "finetune_report.json").read_text())
    return {
        "machine": _machine(), "minutes": minutes, "vocab": vocab, "pretrain_dropout": dropout, "mlm_probability": mask,
        "distill_epochs": distill_epochs, "patience": patience, "unlabelled": unlabelled, "distill_seed": distill_seed,
        "hidden_weight": hidden_weight, "feature_weight": feature_weight, "teacher_path": str(teacher),
        "subclone_from": str(subclone_from or ""), "pretrain_seconds_total": total, "pretrain": mlm_report,
        "held_out_dev_mlm": held_out,
        "student": {"dev": report.get("dev"), "test": report.get("test"), "train_seconds": report["train_seconds"],
                    "parameters": _params(student)},
        "teacher": {"test": teacher_report.get("test"), "parameters": _params(teacher)},
    }  # fmt: skip


def _probe_rate(work: Path, corpus: Path, tok: Path, init: Path | None = None) -> float:
    """Tokens/s of a 30-step `mini` run, so that a schedule's `steps` can end at a time budget."""
    from lmtailor.train.pretrain import PretrainConfig, run_pretrain

    model = str(init) if init else None
    probe = run_pretrain(PretrainConfig.build(corpus=[corpus], preset="mini", model=model, tokenizer=tok,
                                              out_dir=work / "probe",
                                              steps=30, batch_size=32, seq_len=128, eval_split=None, overwrite=True,
                                              show_progress=False, logging_steps=10))  # fmt: skip
    return json.loads((probe / "pretrain_report.json").read_text())["tokens_per_second"]


def _pretrain_legal_en(work: Path, corpus: Path, tok: Path, minutes: float, dropout: float | None,
                       out: str = "mini-mlm", batch: int = 32, mask: float = 0.15,
                       rate: float | None = None, init: Path | None = None) -> Path:  # fmt: skip
    """`mini` pretrained for `minutes` (from scratch, or subcloned from `init`); linear decay reaches 0 at the step
    the measured rate reaches in that time."""
    from lmtailor.train.pretrain import PretrainConfig, run_pretrain

    rate = rate or _probe_rate(work, corpus, tok, init)
    steps = int(minutes * 60 * rate / (batch * 128) * 0.97)
    model = str(init) if init else None
    return run_pretrain(PretrainConfig.build(corpus=[corpus], preset="mini", model=model, tokenizer=tok,
                                             out_dir=work / out,
                                             steps=steps, batch_size=batch, seq_len=128, lr=1e-3, warmup=0.05,
                                             max_minutes=minutes, dropout=dropout, mlm_probability=mask,
                                             eval_split=None, overwrite=True, show_progress=False, logging_steps=50,
                                             save_every=1000))  # fmt: skip


LEVERS = {  # name: (dropout, batch, masking rate); "base" is the 45-minute run's setting
    "base": (None, 32, 0.15),
    "dropout0": (0.0, 32, 0.15),
    "dropout0_mask25": (0.0, 32, 0.25),
    "dropout0_batch16": (0.0, 16, 0.15),
}


def bench_levers(work: Path, minutes: float, vocab: int) -> dict:
    """The pretraining levers at a short, equal time budget, each scored by the held-out MLM loss on contracts/dev
    (the same 15% whole-term masking for all, whatever rate the arm trained with)."""
    corpus, dev, tok = _domain_tokenizer(work, vocab)
    rate = _probe_rate(work, corpus, tok)
    arms = {}
    for name, (dropout, batch, mask) in LEVERS.items():
        out = _pretrain_legal_en(work, corpus, tok, minutes, dropout, f"lever-{name}", batch, mask, rate)
        report = json.loads((out / "pretrain_report.json").read_text())
        arms[name] = {"dropout": dropout, "batch": batch, "mlm_probability": mask, "steps": report["steps"],
                      "tokens_seen": report["tokens_seen"], "train_loss": report["train_loss"],
                      "held_out_dev_mlm": _held_out(out, dev)}  # fmt: skip
        print(name, arms[name], flush=True)
    return {"machine": _machine(), "minutes": minutes, "vocab": vocab, "probe_tokens_per_second": rate, "arms": arms}


def _held_out(model: Path, dev_corpus: Path, split: str = "train") -> dict | None:
    """MLM loss of `model` on the first 300 blocks of a corpus split, unshuffled, 15% whole-term masking."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from lmtailor.train.pretrain import PretrainConfig, make_stream, mlm_eval_loss

    cfg = PretrainConfig.build(corpus=[dev_corpus], model=str(model), out_dir=model.parent / "unused")
    tok = AutoTokenizer.from_pretrained(model)
    stream = make_stream(cfg, tok, split, 1, model)
    stream.shuffle_buffer = 1
    return mlm_eval_loss(AutoModelForMaskedLM.from_pretrained(model), stream, 300)


def _params(folder: Path) -> int:
    from safetensors.torch import load_file

    return sum(t.numel() for t in load_file(str(folder / "model.safetensors")).values())


# --- speed: lmtailor pretrain vs a minimal hand-written loop -------------------------------------------------------

HAND_LOOP = r"""
import json, sys, time, torch
from transformers import AutoTokenizer, BertForMaskedLM
from lmtailor.models.presets import PRESETS, bert_config
tok_dir, steps, batch, seq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
tok = AutoTokenizer.from_pretrained(tok_dir)
torch.manual_seed(0)
model = BertForMaskedLM(bert_config(PRESETS["mini"], len(tok), tok.pad_token_id)).train()
opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
ids = torch.randint(5, len(tok), (batch, seq))
def step():
    x = ids.clone()
    labels = torch.full_like(x, -100)
    m = torch.rand(x.shape) < 0.15
    labels[m] = x[m]
    x[m] = tok.mask_token_id
    loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
for _ in range(3): step()
t0 = time.perf_counter()
for _ in range(steps): step()
print(json.dumps({"tokens_per_second": steps * batch * seq / (time.perf_counter() - t0)}))
"""


def _lmtailor_rate(corpus: Path, tok: Path, work: Path, steps: int, batch: int) -> float:
    from lmtailor.train.pretrain import PretrainConfig, run_pretrain

    out = run_pretrain(PretrainConfig.build(corpus=[corpus], preset="mini", tokenizer=tok, out_dir=work / "speed",
                                            steps=steps + 3, batch_size=batch, seq_len=128, eval_split=None,
                                            overwrite=True, show_progress=False, logging_steps=steps + 3,
                                            save_every=10_000))  # fmt: skip
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    runtime = next(r["train_runtime"] for r in history if "train_runtime" in r)
    # train_runtime covers every step (the stream, masking and the Trainer's bookkeeping included).
    return (steps + 3) * batch * 128 / runtime


def bench_speed(work: Path, rounds: int = 3, steps: int = 40, batch: int = 32) -> dict:
    _, _, tok = _domain_tokenizer(work, 8000)
    script = work / "hand_loop.py"
    script.write_text(HAND_LOOP, encoding="utf-8")
    rows = []
    for _ in range(rounds):
        hand = subprocess.run([sys.executable, str(script), str(tok), str(steps), str(batch), "128"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        hand_rate = json.loads(hand.stdout.strip().splitlines()[-1])["tokens_per_second"]
        ours = subprocess.run([sys.executable, __file__, "--task", "speed-one", "--work", str(work),
                               "--steps", str(steps), "--batch", str(batch)], capture_output=True, text=True,
                              check=True)  # fmt: skip
        our_rate = json.loads(ours.stdout.strip().splitlines()[-1])["tokens_per_second"]
        rows.append({"hand_loop": round(hand_rate, 1), "lmtailor": round(our_rate, 1),
                     "ratio": round(our_rate / hand_rate, 3)})  # fmt: skip
    return {"machine": _machine(), "steps": steps, "batch": batch, "seq_len": 128, "rounds": rows,
            "median_ratio": sorted(r["ratio"] for r in rows)[len(rows) // 2]}  # fmt: skip


# --- memory: peak RSS against corpus size ------------------------------------------------------------------------

MEM_ONE = r"""
import json, sys
from lmtailor.train.pretrain import PretrainConfig, run_pretrain
run_pretrain(PretrainConfig.build(corpus=[sys.argv[1]], preset="mini", tokenizer=sys.argv[2], out_dir=sys.argv[3],
             steps=60, batch_size=32, seq_len=128, eval_split=None, overwrite=True, show_progress=False,
             shuffle_buffer=1000, save_every=10_000))
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        print(json.dumps({"peak_rss_mb": int(line.split()[1]) / 1024}))
"""


def _moved_minilm(work: Path, vocab: int) -> tuple[Path, Path, Path]:
    """(corpus, tokenizer, MiniLM moved onto it): what the subclone arms start from."""
    from lmtailor.tokenizer.hf import default_reference
    from lmtailor.vocab import TransferConfig, run_transfer

    corpus, _, tok = _domain_tokenizer(work, vocab)
    moved = work / f"transfer-tok{vocab}"
    if not moved.exists():
        run_transfer(TransferConfig.build(model=str(default_reference()), tokenizer=tok, out_dir=moved,
                                          show_progress=False))  # fmt: skip
    return corpus, tok, moved


def _subclone_arm(work: Path, vocab: int, name: str, steps: int, **kw) -> dict:
    """`lmtailor pretrain` of the `mini` subclone of MiniLM for `steps` steps: its tokens/s and logged losses."""
    from lmtailor.train.pretrain import PretrainConfig, run_pretrain

    corpus, tok, moved = _moved_minilm(work, vocab)
    settings = {"batch_size": 32, "seq_len": 128, **kw}
    out = run_pretrain(PretrainConfig.build(corpus=[corpus], preset="mini", model=str(moved), tokenizer=tok,
                                            out_dir=work / name, steps=steps, eval_split=None, overwrite=True,
                                            show_progress=False, logging_steps=10, **settings))  # fmt: skip
    report = json.loads((out / "pretrain_report.json").read_text())
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    return {"tokens_per_second": report["tokens_per_second"], "losses": losses}


def _mean_rate(rows: list[dict]) -> float:
    return sum(r["tokens_per_second"] for r in rows) / len(rows)


def bench_precision(work: Path, vocab: int, steps: int = 60, rounds: int = 2) -> dict:
    """fp32 against bf16 `lmtailor pretrain` of the subclone of MiniLM (batch 32 × 128), alternated `rounds` times:
    tokens/s and the logged losses of each run."""
    runs: dict = {"fp32": [], "bf16": []}
    for _ in range(rounds):
        for precision, rows in runs.items():
            rows.append(_subclone_arm(work, vocab, f"precision-{precision}", steps, precision=precision))
    return {
        "machine": _machine(),
        "steps": steps,
        "runs": runs,
        "bf16_over_fp32": round(_mean_rate(runs["bf16"]) / _mean_rate(runs["fp32"]), 2),
    }


def bench_attention_dropout(work: Path, vocab: int, steps: int = 40, rounds: int = 2) -> dict:
    """Attention dropout 0.1 (BERT's) against 0 (`--attention-dropout 0`), at 128 tokens (batch 32) and 512 (batch
    8, the same tokens per step), `precision=auto`: tokens/s of `lmtailor pretrain` of the subclone, alternated."""
    shapes = {128: 32, 512: 8}
    runs: dict = {f"{seq}/{rate}": [] for seq in shapes for rate in (0.1, 0.0)}
    for _ in range(rounds):
        for seq, batch in shapes.items():
            for rate in (0.1, 0.0):
                runs[f"{seq}/{rate}"].append(_subclone_arm(work, vocab, f"attn-dropout-{seq}", steps, seq_len=seq,
                                                           batch_size=batch, attention_dropout=rate))  # fmt: skip
    return {
        "machine": _machine(),
        "steps": steps,
        "runs": runs,
        "speedup_of_0": {
            seq: round(_mean_rate(runs[f"{seq}/0.0"]) / _mean_rate(runs[f"{seq}/0.1"]), 2) for seq in shapes
        },
    }


def bench_memory(work: Path) -> dict:
    cuad = DATA / "en-legal" / "cuad" / "contracts" / "train"
    _, _, tok = _domain_tokenizer(work, 8000)
    small, big = work / "mem-1x", work / "mem-10x"
    for folder, copies in ((small, 1), (big, 10)):
        if not folder.exists():
            folder.mkdir(parents=True)
            for c in range(copies):
                for f in sorted(cuad.glob("*.txt")):
                    shutil.copy(f, folder / f"{c:02d}-{f.name}")
    script = work / "mem_one.py"
    script.write_text(MEM_ONE, encoding="utf-8")
    rows = {}
    for name, folder in (("1x", small), ("10x", big)):
        size = sum(f.stat().st_size for f in folder.iterdir())
        proc = subprocess.run([sys.executable, str(script), str(folder), str(tok), str(work / f"mem-out-{name}")],
                              capture_output=True, text=True, check=True)  # fmt: skip
        rows[name] = {"corpus_mb": round(size / 2**20, 1), **json.loads(proc.stdout.strip().splitlines()[-1])}
    rows["ratio"] = round(rows["10x"]["peak_rss_mb"] / rows["1x"]["peak_rss_mb"], 3)
    return {"machine": _machine(), "steps": 60, "batch": 32, "seq_len": 128, **rows}


# --- data: the stream alone, the data side of a GPU run --------------------------------------------------------

DATA_ONE = r"""
import json, sys, time, torch
from pathlib import Path
from transformers import AutoTokenizer
from lmtailor.train.pretrain import PretrainConfig, make_stream
corpus, tok_dir, workers, batches = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cfg = PretrainConfig.build(corpus=[corpus], preset="mini", tokenizer=tok_dir, out_dir=sys.argv[5], eval_split=None,
                           show_progress=False)
stream = make_stream(cfg, AutoTokenizer.from_pretrained(str(tok_dir)), "train", None, tok_dir)
it = iter(torch.utils.data.DataLoader(stream, batch_size=32, num_workers=workers))
for _ in range(5):  # the shuffle buffers fill, the workers start
    next(it)
t0 = time.perf_counter()
for _ in range(batches):
    next(it)
print(json.dumps({"tokens_per_second": batches * 32 * cfg.seq_len / (time.perf_counter() - t0)}))
"""


def bench_data(work: Path, baseline_src: Path | None, batches: int = 300, rounds: int = 2) -> dict:
    """Tokens/s of the masked block stream alone (batch 32 x 128, no model) through a DataLoader with 0 and 2
    workers; with `baseline_src` (an older checkout's src/), that code's single-process stream in the same run."""
    corpus, _, tok = _domain_tokenizer(work, 8000)
    script = work / "data_one.py"
    script.write_text(DATA_ONE, encoding="utf-8")
    arms = [("this code, 0 workers", None, 0), ("this code, 2 workers", None, 2)]
    if baseline_src:
        arms.insert(0, ("baseline, 0 workers", baseline_src, 0))
    rows: dict[str, list[float]] = {name: [] for name, _, _ in arms}
    for _ in range(rounds):
        for name, src, workers in arms:
            env = {**os.environ, **({"PYTHONPATH": str(src)} if src else {})}
            cmd = [sys.executable, str(script), str(corpus), str(tok), str(workers), str(batches), str(work / "unused")]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            rows[name].append(round(json.loads(proc.stdout.strip().splitlines()[-1])["tokens_per_second"]))
    return {"machine": _machine(), "batches": batches, "batch": 32, "seq_len": 128, "tokens_per_second": rows,
            "baseline_src": str(baseline_src) if baseline_src else None}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--task",
        required=True,
        choices=[
            "legal-en",
            "levers",
            "speed",
            "speed-one",
            "precision",
            "attention-dropout",
            "memory",
            "data",
            "held-out",
        ],
    )
    ap.add_argument("--work", type=Path, default=Path("/tmp/pretrain-bench"))
    ap.add_argument("--teacher", type=Path, default=Path("/tmp/finetune-ls/cuad"))
    ap.add_argument("--minutes", type=float, default=45.0)
    ap.add_argument("--vocab", type=int, default=8000)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--dropout", type=float, default=None, help="legal-en: pretraining dropout (default: 0.1)")
    ap.add_argument("--mask", type=float, default=0.15, help="legal-en: pretraining masking rate")
    ap.add_argument("--mlm-out", default="mini-mlm", help="legal-en: folder in --work of the pretrained model")
    ap.add_argument("--distill-epochs", type=float, default=6)
    ap.add_argument("--unlabelled", type=int, default=0, help="legal-en: contract paragraphs added to distillation")
    ap.add_argument("--reuse-mlm", action="store_true", help="legal-en: distil the model pretrained in --work")
    ap.add_argument("--subclone-from", type=Path, default=None, help="legal-en: a larger BERT to subclone `mini` from")
    ap.add_argument("--patience", type=int, default=2, help="legal-en: distillation early stopping (0: never)")
    ap.add_argument("--distill-seed", type=int, default=0, help="legal-en: seed of the distillation")
    ap.add_argument("--hidden-weight", type=float, default=0.0, help="legal-en: hidden-state matching weight")
    ap.add_argument("--feature-weight", type=float, default=0.0, help="legal-en: [CLS]-state matching weight")
    ap.add_argument("--tag", default="", help="suffix of the results file name")
    ap.add_argument("--baseline-src", type=Path, default=None, help="data: an older checkout's src/ to compare")
    ap.add_argument("--model", type=Path, action="append", default=[], help="held-out: a model folder (repeatable)")
    ap.add_argument("--corpus", type=Path, help="held-out: a corpus stage folder")
    ap.add_argument("--split", default="dev", help="held-out: the corpus split scored")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.task == "legal-en":
        result = bench_legal_en(args.work, args.teacher, args.minutes, args.vocab, args.dropout, args.distill_epochs,
                                args.unlabelled, args.reuse_mlm, args.mask, args.mlm_out,
                                args.subclone_from, args.patience, args.distill_seed, args.hidden_weight,
                                args.tag, args.feature_weight)  # fmt: skip
        _save(f"pretrain_legal_en{args.tag}.json", result)
    elif args.task == "levers":
        _save("pretrain_levers.json", bench_levers(args.work, args.minutes, args.vocab))
    elif args.task == "speed":
        _save("pretrain_speed.json", bench_speed(args.work, steps=args.steps, batch=args.batch))
    elif args.task == "precision":
        _save("pretrain_precision.json", bench_precision(args.work, args.vocab))
    elif args.task == "attention-dropout":
        _save("pretrain_attention_dropout.json", bench_attention_dropout(args.work, args.vocab))
    elif args.task == "speed-one":
        _, _, tok = _domain_tokenizer(args.work, 8000)
        rate = _lmtailor_rate(args.work / "corpus", tok, args.work, args.steps, args.batch)
        print(json.dumps({"tokens_per_second": rate}))
    elif args.task == "held-out":
        rows = {str(m): _held_out(m, args.corpus, args.split) for m in args.model}
        print(json.dumps(rows, indent=1))
        _save(f"pretrain_held_out{args.tag}.json", {"machine": _machine(), "corpus": str(args.corpus),
                                                    "split": args.split, "models": rows})  # fmt: skip
    elif args.task == "data":
        _save("pretrain_data.json", bench_data(args.work, args.baseline_src))
    else:
        _save("pretrain_memory.json", bench_memory(args.work))


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no bar per model load and save in the logs, as in the CLI
    main()
