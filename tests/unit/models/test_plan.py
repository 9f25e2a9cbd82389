"""The planner against built models (parameter counts, exact) and measured CPU training steps (peak memory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from transformers import BertForMaskedLM

from lmtailor.errors import ConfigError
from lmtailor.models.plan import (
    HARDWARE,
    Hardware,
    cpu_hardware,
    flops_per_token,
    make_plan,
    memory,
    parameters,
    plan_for,
)
from lmtailor.models.presets import PRESETS, Shape, bert_config

MEASURE = Path(__file__).with_name("_measure_step.py")


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_count_is_exact_for_every_preset(name: str) -> None:
    shape = PRESETS[name]
    model = BertForMaskedLM(bert_config(shape, 8000))
    counts = parameters(shape, 8000)
    assert counts["total"] == sum(p.numel() for p in model.parameters())  # tied decoder counted once
    assert counts["embeddings"] == sum(p.numel() for p in model.bert.embeddings.parameters())
    assert counts["encoder"] == sum(p.numel() for p in model.bert.encoder.parameters())


def test_product_plan_example_is_49_7m_not_505m() -> None:
    """The product plan's LiteBERT: 6 layers, hidden 768, vocabulary 8,000 (its table claims 505M)."""
    total = parameters(PRESETS["litebert"], 8000)["total"]
    assert total == 49_667_648
    assert round(total / 1e6, 1) == 49.7


def test_flops_known_answer() -> None:
    shape = Shape(layers=1, hidden=4, heads=1, intermediate=8, max_positions=16)
    f = flops_per_token(shape, vocab=10, seq_len=16)
    # layer: 2 * (4*16 + 2*4*8) = 256, attention 4*16*4 = 256; head 2 * (16 + 40) = 112
    assert f["forward"] == 256 + 256 + 112
    assert f["train"] == 3 * f["forward"]
    assert f["train_checkpointed"] == f["train"] + 512


def test_micro_batch_and_accumulation() -> None:
    plan = make_plan(PRESETS["litebert"], 8000, HARDWARE["rtx3070"], devices=3, global_batch=1024, precision="amp")
    assert plan.max_micro_batch > 0
    fits = memory(PRESETS["litebert"], 8000, 128, plan.max_micro_batch, precision="amp", head_tokens=0.15,
                  overhead_gib=0.6, fused_attention=True)  # fmt: skip
    over = memory(PRESETS["litebert"], 8000, 128, plan.max_micro_batch + 1, precision="amp", head_tokens=0.15,
                  overhead_gib=0.6, fused_attention=True)  # fmt: skip
    assert fits.total <= 8 * 1024**3 < over.total
    assert plan.micro_batch <= plan.max_micro_batch
    assert plan.micro_batch * plan.grad_accum * 3 >= 1024
    assert plan.effective_global_batch == plan.micro_batch * plan.grad_accum * 3


def test_checkpointing_and_amp_lower_memory() -> None:
    shape = PRESETS["small"]
    base = memory(shape, 8000, 512, 16).activations
    assert memory(shape, 8000, 512, 16, checkpointing=True).activations < base / 3
    assert memory(shape, 8000, 512, 16, precision="amp").activations < base


def test_attention_dropout_decides_the_cpu_attention_path() -> None:
    """PyTorch's CPU flash kernel has no dropout: only a run without attention dropout escapes the S×S tensors."""
    cpu = Hardware("cpu", 4.0, 1.0, 1.0, fused_attention=False)
    math_path = make_plan(PRESETS["mini"], 8000, cpu, seq_len=512, global_batch=64, precision="fp32")
    fused = make_plan(PRESETS["mini"], 8000, cpu, seq_len=512, global_batch=64, precision="fp32",
                      attention_dropout=0.0)  # fmt: skip
    assert (math_path.fused_attention, fused.fused_attention) == (False, True)
    assert fused.max_micro_batch > math_path.max_micro_batch
    # 3 fp32 S×S maps per head and layer: 3 · 4 heads · 512 · 4 bytes · 4 layers per token, 8 × 512 tokens.
    per_micro_batch = (
        memory(PRESETS["mini"], 8000, 512, 8).total - memory(PRESETS["mini"], 8000, 512, 8, fused_attention=True).total
    )
    assert per_micro_batch == 3 * 4 * 512 * 4 * 4 * 8 * 512
    gpu = make_plan(PRESETS["mini"], 8000, HARDWARE["rtx3070"], seq_len=512, attention_dropout=0.1)
    assert gpu.fused_attention  # CUDA's kernels take dropout
    with pytest.raises(ConfigError, match="attention dropout"):
        make_plan(PRESETS["mini"], 8000, cpu, attention_dropout=1.0)


def test_wall_time_scales_with_corpus_and_devices() -> None:
    hw = Hardware("test", 80, 10, 100)
    one = make_plan(PRESETS["mini"], 8000, hw, devices=1, corpus_tokens=1e9)
    four = make_plan(PRESETS["mini"], 8000, hw, devices=4, corpus_tokens=1e9)
    twice = make_plan(PRESETS["mini"], 8000, hw, devices=1, corpus_tokens=2e9)
    assert four.hours == pytest.approx(one.hours / 4, rel=0.02)
    assert twice.hours == pytest.approx(2 * one.hours, rel=0.02)
    expected = 1e9 * one.flops_per_token["train"] / (100e12 * 0.35) / 3600
    assert one.hours == pytest.approx(expected, rel=0.01)


def test_nothing_fits_is_said(tmp_path: Path) -> None:
    plan = make_plan(PRESETS["litebert"], 8000, Hardware("small", 0.5, 1, 1))
    assert plan.max_micro_batch == 0 and plan.notes


def test_plan_reads_model_folders_and_refuses_bad_input(tmp_path: Path) -> None:
    bert_config(PRESETS["mini"], 5000).save_pretrained(tmp_path)
    plan = plan_for(model=tmp_path, hardware_name="a100-80g", precision="amp")
    assert plan.vocab == 5000 and plan.parameters["total"] == parameters(PRESETS["mini"], 5000)["total"]
    with pytest.raises(ConfigError, match="--vocab"):
        plan_for(preset="mini", precision="amp")
    with pytest.raises(ConfigError, match="unknown hardware"):
        plan_for(preset="mini", vocab=8000, hardware_name="tpu", precision="amp")
    with pytest.raises(ConfigError, match="positions"):
        plan_for(preset="mini", vocab=8000, seq_len=1024, precision="amp")
    assert json.dumps(asdict(plan))  # serialisable for --json


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shape", "batch", "seq", "attention_dropout"),
    [(PRESETS["mini"], 32, 128, 0.1), (PRESETS["tiny"], 16, 512, 0.1), (PRESETS["mini"], 8, 512, 0.0)],
    ids=["mini-b32-s128", "tiny-b16-s512", "mini-b8-s512-fused"],  # logits-heavy, attention-heavy, fused attention
)
def test_memory_estimate_within_15_percent_of_measured_peak(
    shape: Shape, batch: int, seq: int, attention_dropout: float
) -> None:
    """Peak RSS growth of real fp32 AdamW steps on this CPU (a subprocess, so nothing else is counted).

    glibc's default malloc keeps freed blocks of up to 32 MB in its heap once its mmap threshold has adapted, so
    the peak RSS carried 150-350 MB of slack that varied from run to run (mini-b32-s128 holding its output:
    1,196-1,259 MB against 1,041 MB of tensors; dropping it: 1,103-1,262 against 910). A fixed mmap threshold gives
    every large tensor back when it is freed: the peak is then the tensors' own and repeats to 0.1 MB (1,040.5 and
    1,366.8 MB here), which is what the planner estimates."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset and read the peak RSS")
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(
        [sys.executable, str(MEASURE), json.dumps(asdict(shape)), "8000", str(batch), str(seq), "3",
         str(attention_dropout)],
        capture_output=True, text=True, check=True, timeout=300, env=env,
    )  # fmt: skip
    measured = json.loads(out.stdout.strip().splitlines()[-1])["peak_growth"]
    # Plain HF loss: every position decoded. Without attention dropout PyTorch runs its flash kernel on CPU too, and
    # that case is the one a math-path estimate misses: 1,362 MB against 940 measured for mini-b8-s512.
    cpu = cpu_hardware(0.01)
    fused = make_plan(shape, 8000, cpu, seq_len=seq, global_batch=batch, precision="fp32",
                      attention_dropout=attention_dropout).fused_attention  # fmt: skip
    assert fused == (attention_dropout == 0)
    estimate = memory(shape, 8000, seq, batch, fused_attention=fused).total
    assert abs(estimate - measured) / measured <= 0.15, (estimate / 2**20, measured / 2**20)


def test_data_side_says_when_on_the_fly_tokenisation_starves_the_gpus() -> None:
    from lmtailor.models.plan import ON_THE_FLY_TOKENS_PER_CORE, SHARD_TOKENS_PER_CORE, hardware, shape_of

    shape, _ = shape_of("mini")
    fed = make_plan(shape, 8000, hardware("rtx3070"), devices=3, cpus=32)  # the product plan's reference setup
    assert fed.data["data_workers"] == 29
    assert fed.data["on_the_fly_tokens_per_s"] == 29 * ON_THE_FLY_TOKENS_PER_CORE
    assert fed.data["on_the_fly_share_of_wanted"] == 1.0 and not any("tokenize" in n for n in fed.notes)
    starved = make_plan(shape, 8000, hardware("h100-80g"), devices=1, cpus=4)
    want = starved.data["tokens_per_s_wanted"]
    assert want == round(989e12 * 0.35 / starved.flops_per_token["train"])  # what the wall time assumes
    assert starved.data["on_the_fly_share_of_wanted"] == round(3 * ON_THE_FLY_TOKENS_PER_CORE / want, 3)
    assert any("lmtailor tokenize" in n and "would wait" in n for n in starved.notes)
    assert any("even token shards" in n for n in starved.notes) == (want > 3 * SHARD_TOKENS_PER_CORE)
    assert make_plan(shape, 8000, hardware("rtx3070")).data is None  # no CPU count given: no data side
