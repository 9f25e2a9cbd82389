"""`lmtailor bench`: speed, size and memory of several models side by side, each measured in its own process.

An entry is an HF model folder (PyTorch), an ONNX file, or a folder holding one. A PyTorch folder may carry a runtime
suffix: `PATH@fp32` (default), `PATH@bf16` (weights cast to bfloat16) or `PATH@torch-int8` (dynamic int8
quantisation of every nn.Linear at load); `PATH@onnx` picks the .onnx file of a folder that holds both kinds.

Every model sees the same shape: a realistic text (or `text`) tokenised with the model's own tokenizer, padded and
truncated to exactly `seq_len`. Latency is timed at each of `batch_sizes` (p50/p95 over `repeat` runs), throughput at
`throughput_batch`. Each model runs in a fresh subprocess (`measure.py`), so its peak RSS is its own.
The first entry is the baseline of the ratios. `pick_fastest` also measures every PyTorch folder given without a
suffix as fp32, bf16 and torch-int8, and the report names the fastest entry at the throughput batch.

Writes bench.json (machine, versions, settings, one record per entry) and bench.md (the table).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError
from lmtailor.export.bench_report import add_ratios, fastest, markdown
from lmtailor.export.config import BenchConfig
from lmtailor.hardware import CPU_FLAGS, cpu_flags, cpu_has_native_bf16, cpu_model, usable_physical_cores
from lmtailor.models.folder import weight_files
from lmtailor.outputs import stage_output, write_json

log = logging.getLogger(__name__)

TORCH_RUNTIMES = ("fp32", "bf16", "torch-int8")
SUFFIXES = (*TORCH_RUNTIMES, "onnx")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
DEFAULT_TEXT = (
    "The licensee shall indemnify and hold harmless the licensor against all claims, damages and costs arising "
    "from any breach of this agreement. Patients with type 2 diabetes were randomised to receive metformin or "
    "placebo for twelve weeks, and the primary outcome was the change in HbA1c from baseline. The court held that "
    "the contract was void for uncertainty, since the parties had not agreed on the price or the delivery date. "
    "Adverse events were reported in 14% of the treatment group and 9% of the control group (p = 0.03)."
)


@dataclass
class Entry:
    """One model as it will be measured."""

    given: str
    path: Path  # the HF folder, or the .onnx file
    kind: str  # "torch" | "onnx"
    runtime: str  # fp32 | bf16 | torch-int8 | onnx-fp32 | onnx-fp16 | onnx-int8 | onnx-int4
    home: Path  # the folder with the tokenizer (and config.json)
    explicit: bool = False  # a runtime suffix was given

    @property
    def label(self) -> str:
        # An ONNX file or a folder named just "model" says little on its own: its parent's name goes with it.
        named = self.kind == "torch" and self.path.name != "model"
        return self.path.name if named else f"{self.path.parent.name}/{self.path.name}"


def _onnx_in(folder: Path, given: str) -> Path | None:
    files = sorted(folder.glob("*.onnx"))
    if len(files) > 1 and not (folder / "model.onnx").is_file():
        raise InputFormatError(
            f"{given}: {folder} holds several .onnx files ({', '.join(f.name for f in files)}); name the file."
        )
    return (folder / "model.onnx") if (folder / "model.onnx").is_file() else (files[0] if files else None)


def onnx_runtime(path: Path) -> str:
    """onnx-int4 / onnx-int8 / onnx-fp16 / onnx-fp32, from the graph's operators and weight types."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    ops = {node.op_type for node in graph.node}
    if "MatMulNBits" in ops:
        return "onnx-int4"
    if ops & {"MatMulInteger", "DynamicQuantizeLinear", "QLinearMatMul", "QGemm", "QAttention"}:
        return "onnx-int8"
    types = {init.data_type for init in graph.initializer}
    return "onnx-fp16" if onnx.TensorProto.FLOAT16 in types and onnx.TensorProto.FLOAT not in types else "onnx-fp32"


def parse_entry(given: str) -> Entry:
    """Check one `models` entry (path exists, has weights or .onnx, known suffix) without loading anything."""
    base, sep, suffix = given.rpartition("@")
    if not sep or Path(given).exists() or "/" in suffix:
        base, suffix = given, ""
    if suffix and suffix not in SUFFIXES:
        raise ConfigError(f"models entry {given!r}: unknown runtime @{suffix}; use one of @{', @'.join(SUFFIXES)}.")
    path = Path(base).expanduser()
    if not path.exists():
        raise InputNotFoundError(f"models entry {given!r}: {path} does not exist; check the path.")
    spec_file = path / "task.json"
    if path.is_dir() and spec_file.is_file() and json.loads(spec_file.read_text(encoding="utf-8")).get("fusion"):
        raise ConfigError(
            f"models entry {given!r}: {path} is a model fused with its n-gram baseline (`lmtailor fuse`); bench "
            "times token batches, and the baseline reads text: bench the model it was fused from, and read the "
            "pair's end-to-end examples/s in its eval_test.json (throughput)."
        )
    if path.is_file():
        if path.suffix != ".onnx":
            raise InputFormatError(f"models entry {given!r}: a file must be an .onnx model; pass an HF folder instead.")
        onnx_file = path
    else:
        onnx_file = _onnx_in(path, given)
        has_weights = bool(weight_files(path))
        if not has_weights and onnx_file is None:
            raise InputFormatError(
                f"models entry {given!r}: {path} has no model weights (*.safetensors, pytorch_model*.bin) and no "
                ".onnx file; pass a saved HF model folder or an ONNX export."
            )
        # A folder holding both kinds is measured as ONNX unless a PyTorch runtime is asked for.
        if has_weights and suffix != "onnx" and (onnx_file is None or suffix in TORCH_RUNTIMES):
            return Entry(given, path, "torch", suffix or "fp32", path, bool(suffix))
        if onnx_file is None:
            raise InputFormatError(f"models entry {given!r}: @onnx, but {path} has no .onnx file.")
    if suffix in TORCH_RUNTIMES:
        raise ConfigError(f"models entry {given!r}: @{suffix} applies to PyTorch folders; {onnx_file} is ONNX.")
    try:
        runtime = onnx_runtime(onnx_file)
    except Exception as exc:  # onnx raises its own DecodeError and friends
        raise InputFormatError(f"models entry {given!r}: {onnx_file} is not a readable ONNX model ({exc}).") from None
    return Entry(given, onnx_file, "onnx", runtime, onnx_file.parent, bool(suffix))


def resolve_entries(config: BenchConfig) -> list[Entry]:
    """Every entry checked up front (so a typo fails before minutes of measuring), expanded for pick_fastest."""
    entries = []
    for given in config.models:
        entry = parse_entry(given)
        if config.pick_fastest and entry.kind == "torch" and not entry.explicit:
            entries += [Entry(f"{given}@{rt}", entry.path, "torch", rt, entry.home, True) for rt in TORCH_RUNTIMES]
        else:
            entries.append(entry)
    for entry in entries:
        if not any((entry.home / f).is_file() for f in TOKENIZER_FILES):
            raise InputFormatError(
                f"models entry {entry.given!r}: no tokenizer in {entry.home}; keep the tokenizer files beside the "
                "model (an `lmtailor export` folder has them)."
            )
        cfg = entry.home / "config.json"
        limit = json.loads(cfg.read_text(encoding="utf-8")).get("max_position_embeddings") if cfg.is_file() else None
        if limit is not None and config.seq_len > limit:
            raise ConfigError(f"seq_len = {config.seq_len} is more than {entry.given} takes ({limit} positions).")
    return entries


def machine_facts() -> dict:
    """CPU model, cores, memory, the SIMD flags that decide bf16/int8 speed, load, date and library versions."""
    import importlib.metadata as md

    import psutil

    from lmtailor import __version__

    flags = cpu_flags()
    versions = {"python": platform.python_version(), "lmtailor": __version__}
    for name in ("torch", "transformers", "onnx", "onnxruntime", "numpy"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(), "physical_cores": psutil.cpu_count(logical=False), "logical_cores": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1e9, 1), "native_bf16": cpu_has_native_bf16(),
        "cpu_flags": [f for f in CPU_FLAGS if f in flags], "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "versions": versions,
    }  # fmt: skip


def make_inputs(home: Path, seq_len: int, rows: int, text: str) -> dict[str, np.ndarray]:
    """[rows, seq_len] int64 arrays from the model's own tokenizer; row i starts at a different sentence."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(home))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    sentences = [s.strip() + "." for s in text.replace("\n", " ").split(". ") if s.strip()] or [text]
    base = " ".join(sentences)
    while len(tok(base, add_special_tokens=False)["input_ids"]) < seq_len:
        base += " " + " ".join(sentences)
    texts = [" ".join(sentences[i % len(sentences) :]) + " " + base for i in range(rows)]
    enc = tok(texts, padding="max_length", truncation=True, max_length=seq_len, return_tensors="np")
    return {k: v.astype(np.int64) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def measure_in_subprocess(entry: Entry, settings: dict, inputs: Path, work: Path, index: int) -> dict:
    """Run `measure.py` on one entry in a fresh Python process and return its result."""
    spec_path, result_path = work / f"spec-{index}.json", work / f"result-{index}.json"
    spec = {**settings, "path": str(entry.path), "kind": entry.kind, "runtime": entry.runtime, "inputs": str(inputs)}
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    threads = str(settings["threads"])
    env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false",
           "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_OFFLINE": "1"}  # fmt: skip
    # Run as a script, not `-m lmtailor.export.measure`: that would first import the lmtailor.export package (ONNX
    # export, torch) into every child's memory. -P keeps this folder (with its onnx.py) off sys.path.
    script = Path(__file__).with_name("measure.py")
    cmd = [sys.executable, "-P", str(script), "--one", str(spec_path), "--result", str(result_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result_path.is_file():
        return json.loads(result_path.read_text(encoding="utf-8"))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return {"error": f"measuring process exited with {proc.returncode}: {' | '.join(tail)}"}


def disk_record(entry: Entry) -> dict:
    """Size on disk of the model's weight files (not tokenizer or config); for ONNX also its parameter count (the
    elements of its non-integer initializers; an int8 graph's scales and zero points count too)."""
    if entry.kind == "torch":
        files = weight_files(entry.path)
        return {"weight_files": sorted(f.name for f in files),
                "size_mb": round(sum(f.stat().st_size for f in files) / 1e6, 3)}  # fmt: skip
    import onnx

    graph = onnx.load(str(entry.path), load_external_data=False).graph
    files = {entry.path}
    params = 0
    shape_types = {onnx.TensorProto.INT64, onnx.TensorProto.INT32}  # shape constants, not weights
    for init in graph.initializer:
        if init.data_type not in shape_types:
            params += int(np.prod(init.dims)) if init.dims else 1
        location = next((kv.value for kv in init.external_data if kv.key == "location"), None)
        if location:
            files.add(entry.path.parent / location)
    return {"weight_files": sorted(f.name for f in files), "params": params,
            "size_mb": round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 3)}  # fmt: skip


def run_bench(config: BenchConfig) -> Path:
    """Measure every entry in its own process and write bench.json and bench.md; return the output folder."""
    from lmtailor.display import progress_over

    entries = resolve_entries(config)
    if config.text is not None and not Path(config.text).is_file():
        raise InputNotFoundError(f"text file {config.text} does not exist; pass a UTF-8 text file or leave it out.")
    text = Path(config.text).read_text(encoding="utf-8") if config.text is not None else DEFAULT_TEXT
    threads = config.threads or usable_physical_cores()
    settings = {"threads": threads, **config.model_dump(include={"batch_sizes", "throughput_batch", "warmup", "repeat",
                                                                 "throughput_repeat"})}  # fmt: skip
    bench = {"machine": machine_facts(), "seq_len": config.seq_len, **settings,
             "threads_source": "config" if config.threads else "default: usable physical cores"}  # fmt: skip
    rows = max(*config.batch_sizes, config.throughput_batch)
    with stage_output(config) as out, tempfile.TemporaryDirectory(prefix="lmtailor-bench-") as tmp:
        work, inputs = Path(tmp), {}
        results = []
        with progress_over(len(entries), "benchmarking", config.show_progress) as advance:
            for i, entry in enumerate(entries):
                if entry.home not in inputs:  # one tokenisation per tokenizer folder, shared by its runtimes
                    inputs[entry.home] = work / f"inputs-{len(inputs)}.npz"
                    np.savez(inputs[entry.home], **make_inputs(entry.home, config.seq_len, rows, text))
                log.info("measuring %s (%s, %d threads)", entry.given, entry.runtime, threads)
                advance(0, measuring=f"{entry.label} ({entry.runtime})")
                measured = measure_in_subprocess(entry, settings, inputs[entry.home], work, i)
                if "error" in measured:
                    log.warning("%s failed: %s", entry.given, measured["error"])
                disk = disk_record(entry)
                results.append({"entry": entry.given, "model": entry.label, "path": str(entry.path),
                                "kind": entry.kind, "runtime": entry.runtime, **disk, **measured})  # fmt: skip
                advance()
        for i, entry in enumerate({e.path: e for e in entries}.values()):
            out.add_input(entry.label if entry.label not in out.inputs else f"{entry.label}#{i}", entry.path)
        add_ratios(results)
        bench["models"] = results
        bench["fastest"] = fastest(results)
        write_json(out.dir / "bench.json", bench)
        (out.dir / "bench.md").write_text(markdown(bench), encoding="utf-8")
        out.metrics.update({"models": len(results), "fastest": bench["fastest"], "threads": threads})
    return Path(config.out_dir)


def auto_runtime(folder: Path, out_dir: Path, onnx: Path | None = None, **options: object) -> dict:
    """Measure a PyTorch folder as fp32, bf16 and torch-int8 (and `onnx`, an export of it) and return the fastest
    at the throughput batch: {"entry", "runtime", "sequences_per_s"}. The full benchmark is written to `out_dir`."""
    models = [str(folder)] + ([str(onnx)] if onnx is not None else [])
    config = BenchConfig(models=models, pick_fastest=True, out_dir=out_dir, **options)
    bench = json.loads((run_bench(config) / "bench.json").read_text(encoding="utf-8"))
    log.info("fastest runtime for %s: %s", folder, bench["fastest"])
    return bench["fastest"]
