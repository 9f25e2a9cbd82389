"""Measuring one model in this process: load it in one runtime, time forward passes, read the peak memory.

`lmtailor.export.bench` runs this file as a script, `python -P measure.py --one SPEC.json --result OUT.json`, one
fresh process per model, so the peak RSS is that model's own and nothing one model allocated (or one runtime's
thread pool) is still around when the next is timed. It imports nothing from lmtailor (running it with `-m` would
import the `lmtailor.export` package and all it pulls in), and its imports are lazy: a process measuring an ONNX
model never imports torch, so its memory is onnxruntime's alone.

The inputs arrive already tokenised (an .npz of [rows, seq_len] int64 arrays written by the parent), so every
runtime of a model sees exactly the same token ids and tokenisation is not part of any timing.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

Batch = dict[str, np.ndarray]


def peak_rss_mb() -> float | None:
    """The most resident memory this process has had, in MB (None where the OS does not say).

    On Linux this is VmHWM of /proc/self/status, the high-water mark of this program's own address space:
    getrusage's ru_maxrss would also count the parent's memory at the fork before exec.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="utf-8")
        kib = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))
        return round(int(kib) * 1024 / 1e6, 1)
    except (OSError, StopIteration):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1e6 if sys.platform == "darwin" else 1e3), 1)  # bytes on macOS, KiB elsewhere


def current_rss_mb() -> float:
    import psutil

    return round(psutil.Process().memory_info().rss / 1e6, 1)


def _torch_weight_bytes(model) -> int:
    """Bytes of the weights as held in memory after conversion (bf16 halves them; int8 Linear packs them)."""
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    total = 0
    for module in model.modules():
        if isinstance(module, DynamicLinear):
            weight, bias = module._weight_bias()  # packed int8 weight, fp32 bias
            total += weight.numel() * weight.element_size() + (
                bias.numel() * bias.element_size() if bias is not None else 0
            )
        tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
        total += sum(t.numel() * t.element_size() for t in tensors)
    return total


def load_torch(path: Path, runtime: str, threads: int) -> tuple[Callable[[Batch], np.ndarray], dict]:
    """A forward function over numpy batches for an HF folder in fp32, bf16 or torch-int8, and what we know of it."""
    import torch
    import transformers
    from torch import nn

    torch.set_num_threads(threads)
    config = transformers.AutoConfig.from_pretrained(str(path))
    arch = (config.architectures or [""])[0]
    # The class the folder was saved from (e.g. BertForSequenceClassification), so the head is timed too.
    cls = getattr(transformers, arch, None) or transformers.AutoModel
    model = cls.from_pretrained(str(path)).eval()
    params = sum(p.numel() for p in model.parameters())
    if runtime == "bf16":
        model = model.to(torch.bfloat16)
    elif runtime == "torch-int8":
        model = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
    accepted = set(inspect.signature(model.forward).parameters)

    def forward(batch: Batch) -> np.ndarray:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in batch.items() if k in accepted})
        return out[0].float().numpy()

    info = {"params": params, "weights_mb_in_memory": round(_torch_weight_bytes(model) / 1e6, 3),
            "torch_threads": torch.get_num_threads()}  # fmt: skip
    return forward, info


def load_onnx(path: Path, threads: int) -> tuple[Callable[[Batch], np.ndarray], dict]:
    """A forward function over numpy batches for an ONNX file under onnxruntime (CPU, all graph optimisations)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = [(i.name, np.int32 if "int32" in i.type else np.int64) for i in session.get_inputs()]

    def forward(batch: Batch) -> np.ndarray:
        ids = batch["input_ids"]
        # An input the tokenizer did not give (token_type_ids of a one-segment text) is all zeros.
        feed = {name: batch.get(name, np.zeros_like(ids)).astype(dtype, copy=False) for name, dtype in inputs}
        return np.asarray(session.run(None, feed)[0], dtype=np.float32)

    return forward, {"onnx_inputs": [name for name, _ in inputs]}


def _time(forward: Callable[[Batch], np.ndarray], batch: Batch, warmup: int, repeat: int) -> list[float]:
    for _ in range(warmup):
        forward(batch)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        forward(batch)
        times.append(time.perf_counter() - t0)
    return times


def _stats(times: list[float]) -> dict:
    ms = np.asarray(times) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "mean_ms": round(float(ms.mean()), 3), "runs": len(times)}  # fmt: skip


def measure(spec: dict) -> dict:
    """Load the model `spec` names, time it on the inputs it points at, and return the numbers."""
    data = dict(np.load(spec["inputs"]))
    rss_before = current_rss_mb()
    t0 = time.perf_counter()
    if spec["kind"] == "onnx":
        forward, info = load_onnx(Path(spec["path"]), spec["threads"])
    else:
        forward, info = load_torch(Path(spec["path"]), spec["runtime"], spec["threads"])
    load_s = time.perf_counter() - t0
    rss_loaded = current_rss_mb()
    latency, sample = {}, None
    for bs in spec["batch_sizes"]:
        batch = {k: np.ascontiguousarray(v[:bs]) for k, v in data.items()}
        latency[str(bs)] = _stats(_time(forward, batch, spec["warmup"], spec["repeat"]))
        if sample is None:
            out = forward(batch)
            sample = {"shape": list(out.shape), "values": [round(float(x), 5) for x in out.reshape(-1)[:64]]}
    tb = spec["throughput_batch"]
    batch = {k: np.ascontiguousarray(v[:tb]) for k, v in data.items()}
    times = _time(forward, batch, min(spec["warmup"], 1), spec["throughput_repeat"])
    throughput = {"batch": tb, **_stats(times), "sequences_per_s": round(tb * len(times) / sum(times), 2)}
    return {**info, "load_seconds": round(load_s, 3), "latency": latency, "throughput": throughput,
            "rss_before_load_mb": rss_before, "rss_after_load_mb": rss_loaded, "peak_rss_mb": peak_rss_mb(),
            "output_sample": sample}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure one model (run by lmtailor.export.bench).")
    parser.add_argument("--one", type=Path, required=True, help="JSON spec of the model and the timing settings.")
    parser.add_argument("--result", type=Path, required=True, help="Where to write the result JSON.")
    args = parser.parse_args(argv)
    spec = json.loads(args.one.read_text(encoding="utf-8"))
    try:
        result = measure(spec)
        code = 0
    except Exception as exc:  # reported in the bench table as this model's failure, not the whole run's
        result, code = {"error": f"{type(exc).__name__}: {exc}"}, 1
    args.result.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return code


if __name__ == "__main__":
    sys.exit(main())
