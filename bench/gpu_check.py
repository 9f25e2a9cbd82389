"""The checks of `lmtailor pretrain` and `lmtailor plan` that need a CUDA GPU, in one short run (a few minutes).

    python bench/gpu_check.py --corpus CORPUS_DIR --tokenizer TOKENIZER_DIR --out RESULTS_DIR

1. plan: the planner's memory estimate against the peak CUDA memory (`max_memory_allocated` and `_reserved`) of three
   AdamW training steps of `BertForMaskedLM`, fp32 and bf16 autocast, with and without gradient checkpointing;
2. precision: `lmtailor pretrain` of `mini` on CUDA in fp32, bf16 and fp16 (loss scaling), same seed and data: the
   loss curves side by side and the tokens/s of each;
3. speed: steady-state tokens/s of `lmtailor pretrain` against a minimal hand-written bf16 loop (random ids, no data
   pipeline) on the same model, batch and sequence length;
4. stream: tokens/s of the masked block stream alone with 0, 4 and 8 DataLoader workers; threads (not in the
   default sections): `mini` at batch 256 with the training process's CPU threads at all cores, the rest, and 1;
5. legal-en (not in the default sections): `mini` pretrained on the GPU for a few minutes on the CUAD contracts, then
   fine-tuned on the CUAD clauses, next to the model of 45 CPU-minutes fine-tuned the same way;
   subclone (not in the default sections): `mini` subcloned from MiniLM, continued at two learning rates for the
   45-CPU-minute run's 2,063 steps, each fine-tuned on the CUAD clauses, next to the subclone fine-tuned untrained;
6. profile: `--profile` on CUDA writes its table;
7. cpu-bf16: on this machine's CPU (CUDA hidden), `mini` in fp32 and bf16 when the CPU has AMX/AVX512-BF16.

Each section is independent: one that fails records its error and the others still run. Results go to
RESULTS_DIR/gpu_check.json, rewritten after every section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import BertForMaskedLM

from lmtailor.models.plan import memory
from lmtailor.models.presets import PRESETS, bert_config
from lmtailor.train.precision import cpu_has_native_bf16

MiB = 2**20


def _machine() -> dict:
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").split()
    flags = [f for f in ("amx_bf16", "avx512_bf16") if f in cpuinfo]
    return {"gpu": gpu, "torch": torch.__version__, "cuda": torch.version.cuda, "cpu": platform.processor(),
            "cpu_count": os.cpu_count(), "cpu_bf16_flags": flags,
            "date": time.strftime("%Y-%m-%d %H:%M UTC")}  # fmt: skip


# --- 1. planner vs measured CUDA memory ------------------------------------------------------------------------

PLAN_GRID = [  # preset, seq_len, micro-batch, precision, checkpointing
    ("mini", 128, 64, "fp32", False),
    ("mini", 128, 64, "amp", False),
    ("litebert", 128, 32, "fp32", False),
    ("litebert", 128, 32, "amp", False),
    ("litebert", 512, 16, "fp32", False),
    ("litebert", 512, 16, "amp", False),
    ("litebert", 512, 16, "amp", True),
    ("small", 512, 32, "amp", False),
]


def _cuda_step_peak(
    preset: str, seq: int, batch: int, precision: str, ckpt: bool, vocab: int = 8000
) -> tuple[int, int]:
    """Bytes allocated, and reserved by the caching allocator, at the peak of three AdamW steps, from before the
    model exists (the reserved figure is what a device's memory must hold)."""
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    base, reserved = torch.cuda.memory_allocated(), torch.cuda.memory_reserved()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(0)
    model = BertForMaskedLM(bert_config(PRESETS[preset], vocab)).cuda().train()
    if ckpt:
        model.gradient_checkpointing_enable()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(5, vocab, (batch, seq), device="cuda")
    labels = torch.full_like(ids, -100)
    labels[:, ::7] = ids[:, ::7]
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "amp"):
            loss = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base, torch.cuda.max_memory_reserved() - reserved
    del model, opt, ids, labels, loss
    return peak


def check_plan() -> list[dict]:
    rows = []
    for preset, seq, batch, precision, ckpt in PLAN_GRID:
        measured, reserved = _cuda_step_peak(preset, seq, batch, precision, ckpt)
        est = memory(PRESETS[preset], 8000, seq, batch, precision=precision, checkpointing=ckpt,
                     fused_attention=True)  # fmt: skip
        math_path = memory(PRESETS[preset], 8000, seq, batch, precision=precision, checkpointing=ckpt).total
        rows.append({"preset": preset, "seq_len": seq, "batch": batch, "precision": precision, "checkpointing": ckpt,
                     "measured_mib": round(measured / MiB, 1),
                     "reserved_mib": round(reserved / MiB, 1), "estimate_mib": round(est.total / MiB, 1),
                     "ratio": round(est.total / measured, 3), "estimate_math_attention_mib": round(math_path / MiB, 1),
                     "estimate_parts_mib": {k: round(v / MiB, 1) for k, v in asdict(est).items()}})  # fmt: skip
        print("plan", rows[-1], flush=True)
    return rows


# --- 2. precision: lmtailor pretrain fp32 / bf16 / fp16 ----------------------------------------------------------


def _pretrain(corpus: Path, tok: Path, out: Path, precision: str, steps: int, batch: int = 32, **kw) -> dict:
    from lmtailor.train.pretrain import PretrainConfig, run_pretrain

    folder = run_pretrain(PretrainConfig.build(corpus=[corpus], preset=kw.pop("preset", "mini"), tokenizer=tok,
                                               out_dir=out, steps=steps, batch_size=batch, seq_len=128,
                                               precision=precision, eval_split=None, overwrite=True,
                                               show_progress=False, save_every=100_000, **kw))  # fmt: skip
    report = json.loads((folder / "pretrain_report.json").read_text())
    history = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    report["curve"] = [(r["step"], round(r["loss"], 4)) for r in history if "loss" in r and "step" in r]
    report["train_runtime"] = next((r["train_runtime"] for r in history if "train_runtime" in r), None)
    return report


def check_precision(corpus: Path, tok: Path, work: Path, steps: int) -> dict:
    runs = {p: _pretrain(corpus, tok, work / f"prec-{p}", p, steps, logging_steps=25, lr=1e-3)
            for p in ("fp32", "bf16", "fp16")}  # fmt: skip
    base = dict(runs["fp32"]["curve"])
    out = {"steps": steps, "runs": runs}
    for p in ("bf16", "fp16"):
        diffs = [abs(loss - base[s]) for s, loss in runs[p]["curve"] if s in base]
        tail = diffs[len(diffs) // 2 :]
        rate = runs[p]["tokens_per_second"] / runs["fp32"]["tokens_per_second"]
        out[f"{p}_vs_fp32"] = {"max_abs_diff_second_half": round(max(tail), 4) if tail else None,
                               "final_loss_diff": round(runs[p]["final_loss"] - runs["fp32"]["final_loss"], 4),
                               "speedup": round(rate, 3)}  # fmt: skip
    print("precision", {k: v for k, v in out.items() if k != "runs"}, flush=True)
    return out


# --- 3. speed: lmtailor pretrain vs a hand-written loop ----------------------------------------------------------


def _hand_rate(preset: str, vocab: int, mask_id: int, steps: int, batch: int, seq: int) -> float:
    torch.manual_seed(0)
    model = BertForMaskedLM(bert_config(PRESETS[preset], vocab)).cuda().train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    ids = torch.randint(5, vocab, (batch, seq), device="cuda")

    def step() -> None:
        x = ids.clone()
        labels = torch.full_like(x, -100)
        m = torch.rand(x.shape, device="cuda") < 0.15
        labels[m] = x[m]
        x[m] = mask_id
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch * seq / (time.perf_counter() - t0)


def _steady_rate(report_dir: Path) -> float:
    """Median tokens/s over the logged intervals after the first (which holds start-up: workers, CUDA kernels)."""
    history = [json.loads(line) for line in (report_dir / "metrics.jsonl").read_text().splitlines()]
    rates = [r["tokens_per_second"] for r in history if "tokens_per_second" in r]
    return statistics.median(rates[1:] or rates)


def check_speed(corpus: Path, tok: Path, work: Path, steps: int) -> list[dict]:
    """Steady-state tokens/s of `lmtailor pretrain` (the median over 25-step intervals, start-up excluded) against
    the hand loop; `mini` at batch 32 also with the data stream in the training process (0 workers)."""
    from transformers import AutoTokenizer

    from lmtailor.train.pretrain import PretrainConfig, data_workers

    t = AutoTokenizer.from_pretrained(str(tok))
    auto = data_workers(PretrainConfig.build(corpus=[corpus], preset="mini", tokenizer=tok, out_dir=work / "unused"))
    rows = []
    for preset, batch, workers in (("mini", 32, 0), ("mini", 32, None), ("mini", 256, None), ("litebert", 64, None)):
        hand = _hand_rate(preset, len(t), t.mask_token_id, 100, batch, 128)
        out = work / f"speed-{preset}-{batch}-{workers}"
        _pretrain(corpus, tok, out, "bf16", steps, batch, preset=preset, logging_steps=25, data_workers=workers)
        ours = _steady_rate(out)
        rows.append({"preset": preset, "batch": batch, "data_workers": auto if workers is None else workers,
                     "hand_loop": round(hand), "lmtailor": round(ours), "ratio": round(ours / hand, 3)})  # fmt: skip
        print("speed", rows[-1], flush=True)
    return rows


def check_shards(corpus: Path, tok: Path, work: Path, steps: int = 200) -> dict:
    """Issue 27: `mini` at batch 256 reading token shards (written here on every CPU) against the hand loop, and
    against the same run tokenising on the fly; the bar is >= 0.8 of the hand loop."""
    import os

    from transformers import AutoTokenizer

    from lmtailor.shards.config import TokenizeConfig
    from lmtailor.shards.write import run_tokenize

    t = AutoTokenizer.from_pretrained(str(tok))
    t0 = time.perf_counter()
    cfg = TokenizeConfig.build(corpus=[corpus], tokenizer=tok, out_dir=work / "shards", workers=os.cpu_count() or 1,
                               overwrite=True, show_progress=False)  # fmt: skip
    shards = run_tokenize(cfg)
    written = time.perf_counter() - t0
    hand = _hand_rate("mini", len(t), t.mask_token_id, 100, 256, 128)
    out = {"shards_seconds": round(written, 1), "hand_loop": round(hand)}
    for name, source in (("shards", shards), ("on_the_fly", corpus)):
        run = work / f"shards-{name}"
        _pretrain(source, tok, run, "bf16", steps, 256, preset="mini", logging_steps=25)
        out[name] = round(_steady_rate(run))
        out[f"{name}_ratio"] = round(out[name] / hand, 3)
    print("shards", out, flush=True)
    return out


def check_threads(corpus: Path, tok: Path, work: Path, steps: int = 200) -> list[dict]:
    """`mini` at batch 256 with 8 data workers, with the training process's torch CPU threads at the default (one
    per core), at the cores the workers leave, and at 1: do its idle OpenMP threads take CPU from the workers?"""
    default = torch.get_num_threads()
    rows = []
    for threads in (default, max(1, (os.cpu_count() or 1) - 8), 1):
        torch.set_num_threads(threads)
        out = work / f"threads-{threads}"
        try:
            _pretrain(corpus, tok, out, "bf16", steps, 256, preset="mini", logging_steps=25, data_workers=8)
        finally:
            torch.set_num_threads(default)
        rows.append({"main_threads": threads, "lmtailor": round(_steady_rate(out))})
        print("threads", rows[-1], flush=True)
    return rows


def check_stream(corpus: Path, tok: Path, work: Path, batches: int = 200) -> list[dict]:
    """Tokens/s of the masked block stream alone (batch 32 x 128, no model) with 0, 4 and 8 DataLoader workers: the
    most any run can train on this machine's CPUs."""
    from transformers import AutoTokenizer

    from lmtailor.train.pretrain import PretrainConfig, make_stream

    cfg = PretrainConfig.build(corpus=[corpus], preset="mini", tokenizer=tok, out_dir=work / "unused",
                               eval_split=None, show_progress=False)  # fmt: skip
    rows = []
    for workers in (0, 4, 8):
        stream = make_stream(cfg, AutoTokenizer.from_pretrained(str(tok)), "train", None, tok)
        it = iter(torch.utils.data.DataLoader(stream, batch_size=32, num_workers=workers))
        for _ in range(5 + 2 * workers):  # the shuffle buffers fill, the workers start
            next(it)
        t0 = time.perf_counter()
        for _ in range(batches):
            next(it)
        rows.append(
            {"data_workers": workers, "tokens_per_second": round(batches * 32 * 128 / (time.perf_counter() - t0))}
        )
        print("stream", rows[-1], flush=True)
        del it
    return rows


def _finetune_clauses(model: Path, clauses: Path, out: Path) -> tuple[Path, float]:
    """`model` fine-tuned on the CUAD clauses (8 epochs, lr 3e-4, batch 16, max_length 256, patience 3); seconds."""
    from lmtailor.train.finetune import FinetuneConfig, run_finetune

    t0 = time.perf_counter()
    folder = run_finetune(FinetuneConfig.build(task="cls", model=str(model), train=clauses / "train.jsonl",
                                               dev=clauses / "dev.jsonl", test=clauses / "test.jsonl", epochs=8,
                                               lr=3e-4, batch_size=16, max_length=256, patience=3, out_dir=out,
                                               overwrite=True, show_progress=False))  # fmt: skip
    return folder, round(time.perf_counter() - t0, 1)


def check_legal_en(corpus: Path, tok: Path, work: Path, clauses: Path, held_out: Path, baseline: Path | None,
                   minutes: float, keep: Path | None = None, batch: int = 128,
                   probe_steps: int = 60) -> dict:  # fmt: skip
    """Is the English legal target a matter of pretraining compute? `mini` pretrained on the GPU for `minutes` (the
    CPU run's settings: lr 1e-3, 5% warmup, linear decay to 0 at the step the probe's rate reaches in that time, 15%
    whole-term masking, dropout 0.1; batch 128 instead of 32), then fine-tuned on the CUAD clauses; `baseline` (the
    model of 45 CPU-minutes) fine-tuned the same way, in the same run. Held-out MLM loss on `held_out` for both. The
    GPU-pretrained model is copied to `keep` (e.g. the results folder), so it can be distilled on a CPU later."""
    from pretrain_bench import _held_out

    _pretrain(corpus, tok, work / "legal-probe", "bf16", probe_steps, batch, logging_steps=probe_steps // 3, lr=1e-3)
    rate = _steady_rate(work / "legal-probe")
    steps = max(10, int(minutes * 60 * rate / (batch * 128) * 0.95))
    mlm = work / "legal-mlm"
    pre = _pretrain(corpus, tok, mlm, "bf16", steps, batch, logging_steps=200, lr=1e-3, warmup=0.05,
                    max_minutes=minutes * 1.1)  # fmt: skip
    if keep is not None:
        shutil.copytree(mlm, keep / "legal-en-mlm", dirs_exist_ok=True, ignore=shutil.ignore_patterns("runs"))
    out: dict = {"probe_tokens_per_second": round(rate), "batch": batch,
                 "pretrain": {k: v for k, v in pre.items() if k != "curve"}, "curve": pre["curve"][::5]}  # fmt: skip
    for name, model in (("gpu", mlm), ("cpu_45min", baseline)):
        if model is None:
            continue
        folder, seconds = _finetune_clauses(model, clauses, work / f"legal-cls-{name}")
        report = json.loads((folder / "finetune_report.json").read_text())
        out[name] = {"held_out_mlm": _held_out(model, held_out), "finetune": report, "finetune_seconds": seconds}
        print("legal-en", name, out[name], flush=True)
    return out


def check_subclone(corpus: Path, tok: Path, work: Path, clauses: Path, held_out: Path, init: Path,
                   steps: int = 2063, batch: int = 32, lrs: str = "init,1e-3,3e-4") -> dict:  # fmt: skip
    """Which learning rate for `mini` subcloned from MiniLM, at the 45-CPU-minute run's token budget (its 2,063 steps
    of 32 × 128, 5% warmup, linear decay)? `init` is the subclone saved before training; each arm continues it, then
    is fine-tuned on the CUAD clauses like `legal-en` (no distillation: the teacher stays on the CPU machine)."""
    from pretrain_bench import _held_out

    out: dict = {"steps": steps, "batch": batch}
    arms = {"init" if lr == "init" else f"lr{lr}": None if lr == "init" else float(lr) for lr in lrs.split(",")}
    for name, lr in arms.items():
        model = init
        if lr is not None:
            model = work / f"sub-{name}"
            pre = _pretrain(corpus, tok, model, "bf16", steps, batch, preset=None, model=str(init), lr=lr,
                            warmup=0.05, logging_steps=100)  # fmt: skip
            out[f"pretrain_{name}"] = {k: v for k, v in pre.items() if k != "curve"} | {"curve": pre["curve"][::2]}
        folder, seconds = _finetune_clauses(model, clauses, work / f"sub-cls-{name}")
        report = json.loads((folder / "finetune_report.json").read_text())
        rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        out[name] = {"held_out_mlm": _held_out(model, held_out), "dev": report.get("dev"), "test": report.get("test"),
                     "dev_by_epoch": [r["eval_accuracy"] for r in rows if "eval_accuracy" in r],
                     "finetune_seconds": seconds}  # fmt: skip
        print("subclone", name, out[name], flush=True)
    return out


# --- 4. profile on CUDA ------------------------------------------------------------------------------------------


def check_profile(corpus: Path, tok: Path, work: Path) -> dict:
    _pretrain(corpus, tok, work / "profile", "bf16", 20, profile=5, logging_steps=10)
    table = (work / "profile" / "profile.txt").read_text()
    print("profile", table[:1500], flush=True)
    return {"lines": len(table.splitlines()), "head": table[:3000]}


# --- 5. bf16 on this machine's CPU -------------------------------------------------------------------------------

CPU_ONE = r"""
import json, sys
sys.path.insert(0, sys.argv[5])
from gpu_check import _pretrain
from pathlib import Path
r = _pretrain(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], 60, logging_steps=10, lr=1e-3)
print(json.dumps({k: r[k] for k in ("tokens_per_second", "final_loss", "curve", "precision")}))
"""


def check_cpu_bf16(corpus: Path, tok: Path, work: Path) -> dict:
    if not cpu_has_native_bf16():
        return {"skipped": "this CPU lists neither amx_bf16 nor avx512_bf16"}
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    runs = {}
    for p in ("fp32", "bf16"):
        cmd = [
            sys.executable,
            "-c",
            CPU_ONE,
            str(corpus),
            str(tok),
            str(work / f"cpu-{p}"),
            p,
            str(Path(__file__).parent),
        ]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=400)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-3000:])
        runs[p] = json.loads(proc.stdout.strip().splitlines()[-1])
    out = {"runs": runs, "speedup": round(runs["bf16"]["tokens_per_second"] / runs["fp32"]["tokens_per_second"], 3)}
    print("cpu-bf16", out, flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/gpu-check"))
    ap.add_argument("--steps", type=int, default=300, help="steps of each precision run")
    ap.add_argument("--clauses", type=Path, help="legal-en: the CUAD clauses folder (train/dev/test.jsonl)")
    ap.add_argument("--held-out", type=Path, help="legal-en: a corpus stage folder of contracts/dev")
    ap.add_argument("--baseline", type=Path, help="legal-en: the 45-CPU-minute `mini` to fine-tune alongside")
    ap.add_argument("--minutes", type=float, default=4.0, help="legal-en: GPU pretraining minutes")
    ap.add_argument("--init", type=Path, help="subclone: `mini` subcloned from MiniLM, saved before training")
    ap.add_argument("--subclone-steps", type=int, default=2063, help="subclone: pretraining steps of each arm")
    ap.add_argument("--subclone-batch", type=int, default=32, help="subclone: pretraining batch")
    ap.add_argument("--subclone-lrs", default="init,1e-3,3e-4", help="subclone: arms (`init`: not pretrained)")
    ap.add_argument("--sections", default="plan,precision,speed,stream,profile,cpu-bf16")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible; these checks need one.")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": _machine(), "command": " ".join(sys.argv)}
    print(results["machine"], flush=True)
    sections = {
        "plan": check_plan,
        "precision": lambda: check_precision(args.corpus, args.tokenizer, args.work, args.steps),
        "speed": lambda: check_speed(args.corpus, args.tokenizer, args.work, 200),
        "stream": lambda: check_stream(args.corpus, args.tokenizer, args.work),
        "shards": lambda: check_shards(args.corpus, args.tokenizer, args.work),
        "threads": lambda: check_threads(args.corpus, args.tokenizer, args.work),
        "legal-en": lambda: check_legal_en(
            args.corpus, args.tokenizer, args.work, args.clauses, args.held_out, args.baseline, args.minutes, args.out
        ),
        "subclone": lambda: check_subclone(
            args.corpus,
            args.tokenizer,
            args.work,
            args.clauses,
            args.held_out,
            args.init,
            args.subclone_steps,
            args.subclone_batch,
            args.subclone_lrs,
        ),
        "profile": lambda: check_profile(args.corpus, args.tokenizer, args.work),
        "cpu-bf16": lambda: check_cpu_bf16(args.corpus, args.tokenizer, args.work),
    }
    for name in args.sections.split(","):
        t0 = time.perf_counter()
        try:
            results[name] = sections[name]()
        except Exception:  # one failing check must not hide the others' results
            results[name] = {"error": traceback.format_exc()[-4000:]}
            print(f"{name} FAILED\n{results[name]['error']}", flush=True)
        results.setdefault("seconds", {})[name] = round(time.perf_counter() - t0, 1)
        (args.out / "gpu_check.json").write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # no bar per model load and save in the logs, as in the CLI
    main()
