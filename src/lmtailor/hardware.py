"""Facts about the machine a stage runs on: the CPU's model and SIMD features, and the cores this process may use.

Read from /proc/cpuinfo and the process's CPU affinity, so nothing here imports torch: `bench` records these facts
next to its measurements, and `train` picks its precision and data workers from them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The flags that decide bf16 and int8 speed on x86 (what `bench` reports of a machine).
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
# Either one means the CPU computes bf16 matmuls natively; elsewhere PyTorch emulates them, slower than fp32.
CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo() -> list[str]:
    """The lines of /proc/cpuinfo; none where it cannot be read (e.g. macOS)."""
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else what `platform` knows)."""
    info = _cpuinfo()
    return next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), platform.processor())


def cpu_flags() -> list[str]:
    """Every feature flag /proc/cpuinfo lists for the first CPU ([] where it cannot be read)."""
    return next((line.split(":", 1)[1].split() for line in _cpuinfo() if line.startswith("flags")), [])


def cpu_has_native_bf16() -> bool:
    """Whether /proc/cpuinfo lists AMX-BF16 or AVX512-BF16 (False where it cannot be read, e.g. macOS)."""
    flags = cpu_flags()
    return any(f in flags for f in CPU_BF16_FLAGS)


def usable_cpus() -> int:
    """Logical CPUs this process may run on (its affinity mask where the OS has one, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def usable_physical_cores() -> int:
    """Physical cores this process may use (hyper-threads rarely help dense matmuls)."""
    import psutil

    usable = usable_cpus()
    return max(1, min(psutil.cpu_count(logical=False) or usable, usable))
