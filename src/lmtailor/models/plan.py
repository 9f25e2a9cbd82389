"""`lmtailor plan`: what a BERT pretraining run costs on given hardware, before anyone spends a GPU-day on it.

Everything is computed from the model's shape, so it works for the presets, any HF BERT `config.json`, and shapes
that do not exist yet:

- parameters by module, exactly as `BertForMaskedLM` builds them (decoder tied to the word embeddings);
- FLOPs per token (a multiply-add is 2 FLOPs; training = forward + backward ≈ 3× forward, 4× with gradient
  checkpointing, which recomputes the forward);
- memory per device: weights, gradients, AdamW's two moments, the activations autograd keeps for the backward pass,
  the transient logits of the MLM head, the optimizer step's temporaries, and the runtime's own overhead (CUDA context);
- the largest micro-batch that fits, the accumulation steps for a target global batch, and the wall time for a
  corpus at a stated utilisation of the device's peak FLOPs.

The activation model was measured, not guessed: counting the bytes of every tensor autograd saves in
`BertForMaskedLM` (transformers 5, PyTorch 2.13, dropout on) gives, per token and layer, exactly
10·H + 2·I + 3·a·S fp32 elements (H hidden, I FFN width, a heads, S sequence length) when attention runs through
PyTorch's math path (CPU, or any device with dropout and no fused kernel): the three a·S terms are the softmax
output, the dropout mask and the dropped-out probabilities. Fused kernels (FlashAttention / memory-efficient SDPA on
CUDA, with or without dropout; PyTorch's flash kernel on CPU, which it uses only when the attention dropout is 0) keep
no S×S tensor, so the term is dropped there: on a 2-core EPYC, `mini` at 8 × 512 measured 1,343 MB with attention
dropout 0.1 and 940 MB with 0, against estimates of 1,362 and 960. Outside the layers: 6·H elements per token
(embeddings, MLM transform) and the V logits of every token that reaches the decoder. Under AMP the matmul inputs
are kept in 16 bits, LayerNorm and softmax outputs in 32, and autocast keeps a 16-bit copy of every weight for the
step.
`tests/unit/models/test_plan.py` checks the parameter count against built models (exact) and the memory estimate
against the measured peak RSS of CPU training steps (within 15%).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.models.presets import Shape, preset_shape

GiB = 1024**3


@dataclass(frozen=True)
class Hardware:
    """One device: memory, peak dense FLOPs (fp32 and 16-bit tensor-core), what the runtime itself takes."""

    name: str
    memory_gib: float
    fp32_tflops: float
    amp_tflops: float
    overhead_gib: float = 0.0  # CUDA context, cuBLAS workspaces, allocator slack
    fused_attention: bool = True  # SDPA flash / memory-efficient kernels (no S×S activations) even with dropout


# Peak dense throughput from the vendors' data sheets (16-bit: tensor cores with fp32 accumulation, no sparsity).
HARDWARE: dict[str, Hardware] = {
    "rtx3070": Hardware("NVIDIA RTX 3070 8 GB", 8.0, 20.3, 40.6, overhead_gib=0.6),
    "rtx3090": Hardware("NVIDIA RTX 3090 24 GB", 24.0, 35.6, 71.0, overhead_gib=0.6),
    "rtx4090": Hardware("NVIDIA RTX 4090 24 GB", 24.0, 82.6, 165.2, overhead_gib=0.6),
    "a100-40g": Hardware("NVIDIA A100 40 GB", 40.0, 19.5, 312.0, overhead_gib=0.8),
    "a100-80g": Hardware("NVIDIA A100 80 GB", 80.0, 19.5, 312.0, overhead_gib=0.8),
    "h100-80g": Hardware("NVIDIA H100 SXM 80 GB", 80.0, 67.0, 989.0, overhead_gib=0.8),
}


# What one CPU core feeds a pretraining run, in tokens/s (docs/benchmarks.md). On the fly: read, tokenise, find
# masking units and mask, measured at 1.08 M tokens/s for 8 DataLoader workers on the H200 machine's Xeon (and
# 0.08-0.35 M on one core of this EPYC, by tokenizer). From token shards (`lmtailor tokenize`): slice and mask a
# batch at once, 7.6 M on one core of this EPYC ("Token shards"); counted at 5 M to leave room for the transfer
# from DataLoader workers.
ON_THE_FLY_TOKENS_PER_CORE = 135_000
SHARD_TOKENS_PER_CORE = 5_000_000


def data_side(flops_per_token: float, hw: Hardware, devices: int, cpus: int, utilisation: float,
              precision: str) -> tuple[dict, list[str]]:  # fmt: skip
    """Whether `cpus` cores can feed `devices` GPUs: tokens/s wanted against what on-the-fly tokenisation and token
    shards give, with one core per GPU process kept for training."""
    peak = (hw.amp_tflops if precision == "amp" else hw.fp32_tflops) * 1e12
    need = devices * peak * utilisation / flops_per_token
    workers = max(1, cpus - devices)
    fly, shards = workers * ON_THE_FLY_TOKENS_PER_CORE, workers * SHARD_TOKENS_PER_CORE
    data = {"cpus": cpus, "data_workers": workers, "tokens_per_s_wanted": round(need),
            "on_the_fly_tokens_per_s": fly, "shards_tokens_per_s": shards,
            "on_the_fly_share_of_wanted": round(min(1.0, fly / need), 3)}  # fmt: skip
    notes = []
    if fly < need:
        notes.append(
            f"on-the-fly tokenisation on {cpus} CPUs ({workers} data workers) feeds about {fly / 1e6:.2f} M tokens/s "
            f"and the {devices} GPU(s) want {need / 1e6:.2f} M: they would wait {1 - fly / need:.0%} of the time. "
            f"Write token shards once (`lmtailor tokenize CORPUS --tokenizer TOK --workers {cpus}`) and pretrain on "
            f"them: about {shards / 1e6:.1f} M tokens/s."
        )
    if shards < need:
        notes.append(f"even token shards ({shards / 1e6:.1f} M tokens/s) would not keep up: add CPUs.")
    return data, notes


def cpu_hardware(seconds: float = 0.5) -> Hardware:
    """This machine's CPU: its RAM, and its fp32 matmul rate measured now (no data sheet knows a shared VM)."""
    import time

    import psutil
    import torch

    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    torch.mm(a, b)
    runs, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        runs += 1
    tflops = runs * 2 * 1024**3 / (time.perf_counter() - t0) / 1e12
    mem = psutil.virtual_memory().total / GiB
    # AMP on a CPU without AMX/AVX512-BF16 is emulated and slower than fp32 (docs/benchmarks.md): no gain assumed.
    # Its flash kernel has no dropout: with attention dropout the math path runs (see make_plan's attention_dropout).
    return Hardware(f"CPU ({torch.get_num_threads()} threads)", round(mem, 1), round(tflops, 3), round(tflops, 3),
                    overhead_gib=0.0, fused_attention=False)  # fmt: skip


def hardware(name: str, memory_gib: float | None = None, tflops: float | None = None) -> Hardware:
    """A built-in device by name (`cpu` is measured here), or a custom one from memory and TFLOPS."""
    if name == "custom":
        if not memory_gib or not tflops:
            raise ConfigError("hardware 'custom' needs --memory-gib and --tflops (peak dense 16-bit TFLOPS).")
        return Hardware("custom", memory_gib, tflops / 2, tflops)
    if name == "cpu":
        hw = cpu_hardware()
    elif name in HARDWARE:
        hw = HARDWARE[name]
    else:
        raise ConfigError(f"unknown hardware {name!r}; choose one of cpu, custom, {', '.join(HARDWARE)}.")
    if memory_gib:
        hw = Hardware(**{**asdict(hw), "memory_gib": memory_gib})
    return hw


def parameters(shape: Shape, vocab: int, type_vocab: int = 2) -> dict[str, int]:
    """Parameters of `BertForMaskedLM` by module (no pooler; decoder weight tied to the word embeddings)."""
    h, i = shape.hidden, shape.intermediate
    embeddings = (vocab + shape.max_positions + type_vocab) * h + 2 * h
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    mlm_head = h * h + h + 2 * h + vocab  # transform dense + LayerNorm + decoder bias
    counts = {"embeddings": embeddings, "encoder": shape.layers * layer, "mlm_head": mlm_head}
    counts["total"] = sum(counts.values())
    return counts


def flops_per_token(shape: Shape, vocab: int, seq_len: int, head_tokens: float = 1.0) -> dict[str, float]:
    """Forward and training FLOPs per input token; `head_tokens` = share of tokens that reach the decoder."""
    h, i = shape.hidden, shape.intermediate
    layer = 2 * (4 * h * h + 2 * h * i) + 4 * seq_len * h  # projections + FFN + QKᵀ and AV
    head = head_tokens * 2 * (h * h + h * vocab)
    forward = shape.layers * layer + head
    return {"forward": forward, "train": 3 * forward, "train_checkpointed": 3 * forward + shape.layers * layer}


@dataclass
class Memory:
    """Bytes per device for one training step at a given micro-batch."""

    weights: float
    gradients: float
    optimizer: float
    optimizer_step: float
    activations: float
    logits: float
    overhead: float

    @property
    def total(self) -> float:
        return sum(asdict(self).values())


def memory(
    shape: Shape, vocab: int, seq_len: int, micro_batch: int, precision: Literal["fp32", "amp"] = "fp32",
    checkpointing: bool = False, fused_attention: bool = False, head_tokens: float = 1.0, overhead_gib: float = 0.0,
) -> Memory:  # fmt: skip
    """Peak memory of one AdamW training step (the start of the backward pass, when every activation is alive)."""
    n = parameters(shape, vocab)["total"]
    h, i, a, s = shape.hidden, shape.intermediate, shape.heads, seq_len
    tokens = micro_batch * seq_len
    attn = 0 if fused_attention else 3 * a * s  # fp32 elements per token: softmax out, dropout mask, dropped probs
    if precision == "fp32":
        layer_bytes = 4 * (10 * h + 2 * i + attn)
        outside = 4 * 6 * h
        weight_bytes = 4 * n
    else:  # AMP: 16-bit matmul inputs, fp32 LayerNorm outputs and softmax, fp32 master weights + 16-bit copies
        layer_bytes = 2 * (10 * h + 2 * i) + 4 * 2 * h + 4 * attn
        outside = 2 * 6 * h + 4 * 2 * h
        weight_bytes = 4 * n + 2 * n
    if checkpointing:  # each layer keeps its input; one layer's activations live again during its recompute
        per_token = shape.layers * (2 if precision == "amp" else 4) * h + layer_bytes + outside
    else:
        per_token = shape.layers * layer_bytes + outside
    # fp32 logits of the decoded tokens: the model's output, the log-softmax the loss saves, and both gradients.
    logits = 4 * 4 * vocab * head_tokens * tokens
    # The optimizer step's temporaries (foreach AdamW's denominators on CUDA; allocator slack of the same order was
    # measured on CPU) are one more fp32 copy of the parameters.
    return Memory(weight_bytes, 4 * n, 8 * n, 4 * n, per_token * tokens, logits, overhead_gib * GiB)


@dataclass
class Plan:
    """Everything `lmtailor plan` reports, JSON-serialisable via `asdict`."""

    shape: dict
    vocab: int
    seq_len: int
    hardware: dict
    devices: int
    parameters: dict
    flops_per_token: dict
    precision: str
    checkpointing: bool
    attention_dropout: float
    fused_attention: bool
    memory_gib_at_micro_batch: dict
    max_micro_batch: int
    micro_batch: int
    global_batch: int
    grad_accum: int
    effective_global_batch: int
    corpus_tokens: float | None = None
    data: dict | None = None  # the data side: tokens/s wanted against what the CPUs feed (`data_side`)
    epochs: float = 1.0
    utilisation: float = 0.35
    steps: int | None = None
    hours: float | None = None
    notes: list[str] = field(default_factory=list)


def max_micro_batch(shape: Shape, vocab: int, seq_len: int, hw: Hardware, **kw) -> int:
    """The largest micro-batch whose step fits in the device's memory (0 when not even one sequence fits)."""
    kw.setdefault("fused_attention", hw.fused_attention)

    def fits(b: int) -> bool:
        return memory(shape, vocab, seq_len, b, overhead_gib=hw.overhead_gib, **kw).total <= hw.memory_gib * GiB

    if not fits(1):
        return 0
    lo, hi = 1, 2
    while fits(hi) and hi < 1 << 20:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def make_plan(
    shape: Shape, vocab: int, hw: Hardware, devices: int = 1, seq_len: int = 128, global_batch: int = 256,
    precision: Literal["fp32", "amp"] = "amp", checkpointing: bool = False, corpus_tokens: float | None = None,
    epochs: float = 1.0, utilisation: float = 0.35, mlm_probability: float = 0.15, sparse_head: bool = True,
    attention_dropout: float = 0.1, cpus: int | None = None,
) -> Plan:  # fmt: skip
    """Size a pretraining run: memory, micro-batch, accumulation and time (lmtailor pretrain decodes only the
    masked tokens, `sparse_head`; plain HF `BertForMaskedLM` decodes every token). `attention_dropout` is the run's
    (`lmtailor pretrain --attention-dropout`): at 0 even a CPU runs a fused attention kernel."""
    if seq_len > shape.max_positions:
        raise ConfigError(f"seq_len {seq_len} exceeds the model's {shape.max_positions} positions; lower it.")
    if devices < 1 or global_batch < 1:
        raise ConfigError("devices and global batch must be at least 1.")
    if not 0 <= attention_dropout < 1:
        raise ConfigError(f"attention dropout {attention_dropout} must be in [0, 1).")
    head = mlm_probability if sparse_head else 1.0
    fused = hw.fused_attention or attention_dropout == 0
    kw = {"precision": precision, "checkpointing": checkpointing, "head_tokens": head, "fused_attention": fused}
    best = max_micro_batch(shape, vocab, seq_len, hw, **kw)
    notes: list[str] = []
    if best == 0:
        notes.append(
            "not even one sequence fits: use gradient checkpointing, AMP, a shorter sequence or a smaller model."
        )
        micro = accum = 0
    else:
        per_step = devices * best
        accum = math.ceil(global_batch / per_step)
        micro = math.ceil(global_batch / (devices * accum))  # as even as possible, never above what fits
    mem = memory(shape, vocab, seq_len, max(micro, 1), overhead_gib=hw.overhead_gib, **kw)
    flops = flops_per_token(shape, vocab, seq_len, head)
    plan = Plan(
        shape=asdict(shape), vocab=vocab, seq_len=seq_len, hardware=asdict(hw), devices=devices,
        parameters=parameters(shape, vocab), flops_per_token=flops, precision=precision, checkpointing=checkpointing,
        attention_dropout=attention_dropout, fused_attention=fused,
        memory_gib_at_micro_batch={k: round(v / GiB, 3) for k, v in {**asdict(mem), "total": mem.total}.items()},
        max_micro_batch=best, micro_batch=micro, global_batch=global_batch, grad_accum=accum,
        effective_global_batch=micro * accum * devices, epochs=epochs, utilisation=utilisation, notes=notes,
    )  # fmt: skip
    if cpus and hw.name != "cpu":
        plan.data, data_notes = data_side(flops["train_checkpointed" if checkpointing else "train"], hw, devices,
                                          cpus, utilisation, precision)  # fmt: skip
        plan.notes.extend(data_notes)
    if corpus_tokens and best:
        tokens = corpus_tokens * epochs
        plan.corpus_tokens = corpus_tokens
        plan.steps = math.ceil(tokens / (plan.effective_global_batch * seq_len))
        peak = (hw.amp_tflops if precision == "amp" else hw.fp32_tflops) * 1e12
        per_token = flops["train_checkpointed" if checkpointing else "train"]
        plan.hours = round(tokens * per_token / (devices * peak * utilisation) / 3600, 4)
    return plan


def shape_of(preset: str | None = None, model: Path | None = None) -> tuple[Shape, int | None]:
    """(shape, vocabulary size or None) from a preset name or an HF model folder's config.json."""
    if (preset is None) == (model is None):
        raise ConfigError("give exactly one of --preset and --model.")
    if preset is not None:
        return preset_shape(preset), None
    cfg_file = Path(model) / "config.json"
    if not cfg_file.is_file():
        raise InputNotFoundError(f"{model} has no config.json; pass an HF model folder or a --preset.")
    cfg = json.loads(cfg_file.read_text(encoding="utf-8"))
    try:
        shape = Shape(cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"],
                      cfg["intermediate_size"], cfg.get("max_position_embeddings", 512))  # fmt: skip
    except KeyError as exc:
        raise InputFormatError(
            f"{cfg_file} is not a BERT-like config (no {exc.args[0]}); plan sizes BERT encoders."
        ) from None
    return shape, cfg.get("vocab_size")


def plan_for(preset: str | None = None, model: Path | None = None, vocab: int | None = None,
             hardware_name: str = "rtx3070", memory_gib: float | None = None, tflops: float | None = None,
             **kw) -> Plan:  # fmt: skip
    """`make_plan` from CLI-style arguments."""
    shape, model_vocab = shape_of(preset, model)
    vocab = vocab or model_vocab
    if not vocab:
        raise ConfigError(
            "a preset has no vocabulary of its own: pass --vocab (e.g. 8000 for a core domain vocabulary)."
        )
    if kw.get("precision") not in ("amp", "fp32"):
        raise ConfigError(f"precision {kw.get('precision')!r}: use amp or fp32.")
    return make_plan(shape, vocab, hardware(hardware_name, memory_gib, tflops), **kw)
