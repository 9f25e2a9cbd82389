"""Choosing the numeric precision of a training or inference run from the hardware, and refusing impossible ones.

`auto` picks bf16 on CUDA devices that support it (fp16 with loss scaling on older ones) and, on CPUs, bf16 only
where the CPU computes it natively (Intel AMX or AVX512-BF16): elsewhere PyTorch emulates bf16 matmuls and they are
slower than fp32 (measured on this project's AMD EPYC machine: see docs/benchmarks.md, "precision"). What the CPU
computes natively is a hardware fact (`lmtailor.hardware`); it is re-exported here for older imports.
"""

from __future__ import annotations

import torch

from lmtailor.errors import ConfigError
from lmtailor.hardware import cpu_has_native_bf16

__all__ = ["cpu_has_native_bf16", "resolve_precision"]


def resolve_precision(requested: str) -> str:
    """fp32 | bf16 | fp16 for this machine; a ConfigError for a precision it cannot train in."""
    cuda = torch.cuda.is_available()
    if requested == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if requested == "fp16" and not cuda:
        raise ConfigError("precision fp16 needs a CUDA GPU (no fp16 training on CPU); use bf16 or fp32 on CPU.")
    if requested == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise ConfigError("this GPU has no bf16 support; use --precision fp16 (or auto).")
    return requested
