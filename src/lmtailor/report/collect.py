"""Gathering what a report shows from lmtailor output folders: models, their metrics, benches, curves, tokenizers.

Everything is read from the self-describing folders the stages wrote (`lmtailor.json`, `eval_test.json`,
`metrics.jsonl`, `bench.json`, the tokenizer evaluation's `eval.json`), so a report can be made for any set of
folders, from one build or from hand-run commands alike.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtailor.errors import InputFormatError, InputNotFoundError
from lmtailor.outputs import MANIFEST, read_manifest

log = logging.getLogger(__name__)

MODEL_STAGES = ("model-import", "pretrain", "finetune", "distill", "vocab-trim", "vocab-extend", "vocab-transfer",
                "prune", "sparsify", "export", "quantize", "update", "fuse")  # fmt: skip


@dataclass
class Folder:
    name: str
    path: Path
    stage: str
    manifest: dict


@dataclass
class ModelRow:
    """One row of the ledger: a model some stage built."""

    name: str
    stage: str
    path: Path
    params: int | None = None
    size_mb: float | None = None
    metric_name: str | None = None
    metric: float | None = None
    p50_ms: float | None = None
    throughput: float | None = None
    runtime: str | None = None
    drop_points: float | None = None
    per_class: dict[str, float] = field(default_factory=dict)


def discover(inputs: list[Path]) -> list[Folder]:
    """Output folders in order: a build's (its build.json order), a folder itself, or the folders inside one."""
    found: list[Folder] = []
    for item in inputs:
        item = Path(item)
        if not item.exists():
            raise InputNotFoundError(f"{item} does not exist; pass a build's work folder or lmtailor output folders.")
        if (item / "build.json").is_file():
            state = json.loads((item / "build.json").read_text(encoding="utf-8"))
            candidates = [Path(v["out_dir"]) for v in state.values()]
        elif (item / MANIFEST).is_file():
            candidates = [item]
        else:
            candidates = sorted(p for p in item.iterdir() if (p / MANIFEST).is_file())
        for path in candidates:
            manifest = read_manifest(path)
            if manifest:
                found.append(Folder(path.name, path, str(manifest.get("stage", "")), manifest))
    if not found:
        raise InputFormatError(f"no lmtailor output folders in {', '.join(map(str, inputs))}; run a stage or a build.")
    return found


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def weights_size_mb(folder: Path) -> float | None:
    """Weights, ONNX graphs and a fused folder's baseline (`lmtailor fuse`): what a deployment carries."""
    files = [*folder.glob("*.safetensors"), *folder.glob("*.onnx"), *folder.glob("*.onnx.data"),
             *folder.glob("*.joblib")]  # fmt: skip
    return round(sum(f.stat().st_size for f in files) / 1e6, 2) if files else None  # MB as lmtailor bench reports


def count_params(folder: Path) -> int | None:
    """Parameters stored in a folder's safetensors or ONNX initialisers (quantised ones counted as elements)."""
    st = sorted(folder.glob("*.safetensors"))
    if st:
        from safetensors import safe_open

        total = 0
        for f in st:
            with safe_open(str(f), "np") as fh:
                for key in fh.keys():  # noqa: SIM118 - safe_open handles have keys(), not iteration
                    n = 1
                    for d in fh.get_slice(key).get_shape():
                        n *= d
                    total += n
        return total
    onnx_file = folder / "model.onnx"
    if onnx_file.is_file():
        import onnx

        graph = onnx.load(str(onnx_file), load_external_data=False).graph
        total = 0
        for init in graph.initializer:
            n = 1
            for d in init.dims:
                n *= d
            total += n if n > 1 else 0  # scales and zero points are not parameters
        return total
    return None


def task_metric(folder: Folder) -> tuple[str | None, float | None, dict[str, float]]:
    """(metric name, test value, per-class F1) of a model folder, from its own evaluation or its quantiser's."""
    ev = _json(folder.path / "eval_test.json")
    if ev:
        per = ev.get("per_class") or ev.get("per_type") or {}
        if "metric" in ev:  # the metric the model was chosen by (`lmtailor.tasks.target`)
            name, value = ev["metric"], ev.get("metric_value")
        else:  # evaluations written before the metric was a choice: accuracy, or NER's strict entity F1
            value = ev.get("accuracy" if "accuracy" in ev else "f1")
            name = "accuracy" if "accuracy" in ev else "entity_f1"
        return name, value, {k: v.get("f1") for k, v in per.items() if isinstance(v, dict)}
    q = folder.manifest.get("metrics", {}).get("eval")
    if isinstance(q, dict) and q.get("quantized") is not None:
        return {"f1": "entity_f1"}.get(q.get("metric"), q.get("metric")), q["quantized"], {}
    return None, None, {}


def bench_rows(folders: list[Folder]) -> dict[str, dict]:
    """Latency and throughput by resolved model path, from every bench folder (the last bench wins)."""
    out: dict[str, dict] = {}
    for f in folders:
        if f.stage != "bench":
            continue
        data = _json(f.path / "bench.json") or {}
        for m in data.get("models", []):
            path = str(m.get("entry") or m["path"]).split("@")[0]
            path = str(Path(path).resolve())
            if path.endswith(".onnx"):
                path = str(Path(path).parent)
            latency = m.get("latency", {})
            p50 = (latency.get("1") or next(iter(latency.values()), {})).get("p50_ms") if latency else None
            native = m.get("runtime") in (None, "fp32", "onnx-fp32", "onnx-int8", "onnx-int4")
            key = path if native else f"{path}@{m['runtime']}"  # @bf16 / @torch-int8 runs of the same folder
            out[key] = {"p50_ms": p50, "throughput": m.get("throughput", {}).get("sequences_per_s"),
                         "runtime": m.get("runtime"), "params": m.get("params"), "size_mb": m.get("size_mb"),
                         "baseline": data["models"][0]["path"]}  # fmt: skip
    return out


def model_rows(folders: list[Folder]) -> list[ModelRow]:
    benches = bench_rows(folders)
    rows: list[ModelRow] = []
    by_path: dict[str, ModelRow] = {}
    for f in folders:
        if f.stage.startswith("baseline"):
            rows.append(baseline_row([f]))
            continue
        if not f.stage.startswith(MODEL_STAGES):
            continue
        name, value, per = task_metric(f)
        row = ModelRow(f.name, f.stage, f.path, count_params(f.path), weights_size_mb(f.path), name, value,
                       per_class=per)  # fmt: skip
        if row.metric is None and f.stage == "export":  # an export is parity-checked: it scores what its source did
            source = by_path.get(str(Path(f.manifest.get("inputs", {}).get("model", {}).get("path", "")).resolve()))
            if source is not None:
                row.metric_name, row.metric = source.metric_name, source.metric
        b = benches.get(str(f.path.resolve()))
        if b:
            row.p50_ms, row.throughput, row.runtime = b["p50_ms"], b["throughput"], b["runtime"]
        if f.stage == "fuse":
            _fused_row(row, f, benches)
        rows.append(row)
        by_path[str(f.path.resolve())] = row
    return rows


def _fused_row(row: ModelRow, f: Folder, benches: dict[str, dict]) -> None:
    """A model fused with its n-gram baseline (`lmtailor fuse`): both count in its parameters, and its throughput
    is the benched model's with the baseline's time per text (measured by the fuse stage) added, and so is its p50
    at batch 1: bench times token batches and cannot run the baseline, which reads text."""
    metrics = f.manifest.get("metrics", {})
    if row.params is not None and metrics.get("baseline_parameters"):
        row.params += int(metrics["baseline_parameters"])
    source = str(Path(f.manifest.get("inputs", {}).get("model", {}).get("path", "")).resolve())
    bench = benches.get(source) or {}
    per_text_ms = (metrics.get("test") or metrics.get("dev") or {}).get("baseline_ms_per_example")
    one_ms = metrics.get("baseline", {}).get("p50_ms_batch1")
    row.runtime = "model + n-gram baseline"
    if bench.get("throughput") and per_text_ms is not None:
        row.throughput = round(1 / (1 / bench["throughput"] + per_text_ms / 1e3), 1)
        row.runtime = f"{bench.get('runtime')} + n-gram baseline"
    if bench.get("p50_ms") is not None and one_ms is not None:  # batch 1: the model's median plus the baseline's
        row.p50_ms = round(bench["p50_ms"] + one_ms, 2)


def baseline_row(folders: list[Folder]) -> ModelRow | None:
    """The classical baseline of the build (`lmtailor baseline`), the last one if several, as a ledger row."""
    found = [f for f in folders if f.stage.startswith("baseline")]
    if not found:
        return None
    f = found[-1]
    name, value, per = task_metric(f)
    metrics = f.manifest.get("metrics", {})
    size = metrics.get("size_bytes")
    return ModelRow(f.name, f.stage, f.path, metrics.get("parameters"),
                    None if size is None else round(size / 1e6, 2), name, value,
                    throughput=(metrics.get("test") or {}).get("examples_per_second"),
                    runtime=str(metrics.get("model", "classical")), per_class=per)  # fmt: skip


def pick_teacher(rows: list[ModelRow], teacher: Path | None) -> ModelRow | None:
    """The reference model: the one given, else the first fine-tuned model with a test metric."""
    if teacher is not None:
        match = [r for r in rows if r.path.resolve() == Path(teacher).resolve()]
        if match:
            return match[0]
        folder = Folder(Path(teacher).name, Path(teacher), "finetune", read_manifest(Path(teacher)))
        name, value, per = task_metric(folder)
        return ModelRow(folder.name, "teacher", folder.path, count_params(folder.path), weights_size_mb(folder.path),
                        name, value, per_class=per)  # fmt: skip
    return next((r for r in rows if r.stage.startswith("finetune") and r.metric is not None), None)


def curves(folders: list[Folder]) -> dict[str, list[tuple[float, float]]]:
    """Training loss by step for every training stage (MLM pretraining, fine-tuning, distillation)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for f in folders:
        if not f.stage.startswith(("pretrain", "finetune", "distill")):
            continue
        path = f.path / "metrics.jsonl"
        if not path.is_file():
            continue
        points = []
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if "loss" in rec and "step" in rec:
                points.append((float(rec["step"]), float(rec["loss"])))
        if points:
            out[f"{f.name} ({f.stage})"] = points
    return out


def searches(folders: list[Folder]) -> list[dict]:
    """The searches on dev of fine-tuning and distillation stages (`search.json`): every trial and the choice."""
    out = []
    for f in folders:
        data = _json(f.path / "search.json")
        if data:
            out.append({"name": f.name, **data})
    return out


def tokenizer_evals(folders: list[Folder]) -> list[dict]:
    """The tokenizer evaluations: metrics of the domain tokenizer and its reference, examples, the tokenizers."""
    out = []
    for f in folders:
        if f.stage != "tokenizer-eval":
            continue
        data = _json(f.path / "eval.json")
        if data:
            out.append({"name": f.name, **data})
    return out


def coverage_key(result: dict) -> tuple[str, str]:
    """The coverage measure of a tokenizer evaluation: of Chinese characters for Chinese text (jieba words would
    score a character vocabulary near 0), of whole words otherwise; as (key in the results, what it measures)."""
    if (result.get("han_chars") or 0) > (result.get("words") or 0):
        return "han_char_coverage", "Chinese characters with their own token"
    return "whole_word_coverage", "whole words that are one token"


def serving(folders: list[Folder]) -> list[dict]:
    """What each `serve` stage prepared: the command that starts the server, its address and its models."""
    out = []
    for f in folders:
        if f.stage != "serve":
            continue
        m = f.manifest.get("metrics", {})
        out.append({"path": str(f.path), "command": m.get("command"), "url": m.get("url"),
                    "models": m.get("models", {}), "script": str(f.path / "serve.sh")})  # fmt: skip
    return out


def updates(folders: list[Folder]) -> list[dict]:
    """Each `update`'s verdict and regression figures (its update_report.json), for the report's Updates section."""
    out = []
    for f in folders:
        if f.stage != "update":
            continue
        r = _json(f.path / "update_report.json") or {}
        out.append(
            {
                "name": f.name,
                "path": str(f.path),
                "passed": r.get("passed"),
                "failed_checks": r.get("failed_checks", []),
                "previous": r.get("model"),
                "tolerance_points": r.get("tolerance_points"),
                "scores": r.get("scores", {}),
                "terms_added": (r.get("terms") or {}).get("added"),
                "term_integrity": (r.get("terms") or {}).get("integrity"),
                "term_examples": list((r.get("terms") or {}).get("examples", {}))[:10],
                "mlm_loss": r.get("mlm_loss", {}),
                "minutes": round(r.get("seconds", {}).get("total", 0) / 60, 1),
            }
        )
    return out
