"""The checks of `lmtailor pretrain` and `lmtailor plan` that need a CUDA GPU, in one short run (a few minutes).

    python bench/gpu_check.py --corpus CORPUS_DIR --tokenizer TOKENIZER_DIR --out RESULTS_DIR

1. plan: the planner's memory estimate against the peak CUDA memory (`torch.cuda.max_memory_allocated`) of three
   AdamW training steps of `BertForMaskedLM`, fp32 and bf16 autocast, with and without gradient checkpointing;
2. precision: `lmtailor pretrain` of `mini` on CUDA in fp32, bf16 and fp16 (loss scaling), same seed and data: the
   loss curves side by side and the tokens/s of each;
3. speed: tokens/s of `lmtailor pretrain` against a minimal hand-written bf16 loop (random ids, no data pipeline) on
   the same model, batch and sequence length;
4. profile: `--profile` on CUDA writes its table;
5. cpu-bf16: on this machine's CPU (CUDA hidden), `mini` in fp32 and bf16 when the CPU has AMX/AVX512-BF16.

Each section is independent: one that fails records its error and the others still run. Results go to
RESULTS_DIR/gpu_check.json, rewritten after every section.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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


def _cuda_step_peak(preset: str, seq: int, batch: int, precision: str, ckpt: bool, vocab: int = 8000) -> int:
    """Bytes allocated at the peak of three AdamW steps, from before the model exists."""
    torch.cuda.empty_cache()
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
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
    peak = torch.cuda.max_memory_allocated() - base
    del model, opt, ids, labels, loss
    return peak


def check_plan() -> list[dict]:
    rows = []
    for preset, seq, batch, precision, ckpt in PLAN_GRID:
        measured = _cuda_step_peak(preset, seq, batch, precision, ckpt)
        est = memory(PRESETS[preset], 8000, seq, batch, precision=precision, checkpointing=ckpt,
                     fused_attention=True)  # fmt: skip
        math_path = memory(PRESETS[preset], 8000, seq, batch, precision=precision, checkpointing=ckpt).total
        rows.append({"preset": preset, "seq_len": seq, "batch": batch, "precision": precision, "checkpointing": ckpt,
                     "measured_mib": round(measured / MiB, 1), "estimate_mib": round(est.total / MiB, 1),
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


def check_speed(corpus: Path, tok: Path, work: Path, steps: int) -> list[dict]:
    from transformers import AutoTokenizer

    t = AutoTokenizer.from_pretrained(str(tok))
    rows = []
    for preset, batch in (("mini", 32), ("mini", 256), ("litebert", 64)):
        hand = _hand_rate(preset, len(t), t.mask_token_id, steps, batch, 128)
        ours = _pretrain(corpus, tok, work / f"speed-{preset}-{batch}", "bf16", steps + 5, batch, preset=preset,
                         logging_steps=steps + 5)  # fmt: skip
        our_rate = (steps + 5) * batch * 128 / ours["train_runtime"]
        rows.append({"preset": preset, "batch": batch, "hand_loop": round(hand), "lmtailor": round(our_rate),
                     "ratio": round(our_rate / hand, 3)})  # fmt: skip
        print("speed", rows[-1], flush=True)
    return rows


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
    ap.add_argument("--sections", default="plan,precision,speed,profile,cpu-bf16")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device visible; these checks need one.")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"machine": _machine(), "command": " ".join(sys.argv)}
    print(results["machine"], flush=True)
    sections = {
        "plan": check_plan,
        "precision": lambda: check_precision(args.corpus, args.tokenizer, args.work, args.steps),
        "speed": lambda: check_speed(args.corpus, args.tokenizer, args.work, 100),
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
    main()
