"""`lmtailor fuse`: a classifier and its n-gram baseline shipped as one folder, the weight of each chosen on dev.

The neural model and the TF-IDF + linear SVM baseline err on different texts; on CAIL2018 the int8 student (0.891)
and the baseline (0.906) together score 0.921 on test (docs/benchmarks.md, issue 22). The output folder is the
model's own folder (weights or ONNX graph, config, tokenizer: it still loads with `AutoModelForSequenceClassification`
or ONNX Runtime alone) plus the baseline's pipeline as `baseline.joblib`, and its task.json says how the two are
fused (`lmtailor.models.fused`). `evaluate`, `predict`, `serve` and the report treat it like any model; stages that
change the network (prune, quantize, export, distill) refuse it and name the model to give them instead.

The weight w and the baseline's temperature t are chosen on dev by the model's metric (ties go to the model), then
the written folder itself is loaded and scored on dev and test, so the numbers are those of what ships.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import joblib
import numpy as np

from lmtailor.baseline.config import FuseConfig
from lmtailor.baseline.fusion import baseline_margins, choose_fusion, label_order, load_baseline
from lmtailor.errors import InputFormatError
from lmtailor.models.folder import METADATA_PATTERNS, ONNX_FILE, weight_files
from lmtailor.models.fused import FUSION_FILE, pack_int8, unpack_int8
from lmtailor.models.task_folder import load_task_model
from lmtailor.outputs import check_out_dir, read_manifest, stage_output
from lmtailor.tasks.evaluate import evaluate_split
from lmtailor.tasks.inference import predict_cls

log = logging.getLogger(__name__)


def model_files(folder: Path) -> list[Path]:
    """What makes up the model of a task folder: its weights or ONNX graph (with external data), config, task
    spec and tokenizer; not its training reports."""
    names = {f.name for pattern in METADATA_PATTERNS for f in folder.glob(pattern) if f.is_file()}
    names |= {f.name for f in weight_files(folder)}
    names |= {f.name for f in folder.glob(f"{ONNX_FILE}*") if f.is_file()}  # model.onnx, model.onnx.data
    return [folder / n for n in sorted(names)]


def run_fuse(config: FuseConfig) -> Path:
    check_out_dir(config)
    model, tokenizer, spec = load_task_model(config.model)  # a fused folder is refused: fuse the model it holds
    if spec.task != "cls":
        raise InputFormatError(
            f"{config.model} is an {spec.task} model; only classifiers can be fused with the n-gram baseline."
        )
    names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    full = load_baseline(config.baseline)
    label_order(full, names, str(config.baseline))  # before any scoring: other labels fail now
    packed = pack_int8(full) if config.baseline_precision == "int8" else None
    pipeline = unpack_int8(packed) if packed is not None else full  # the weights are chosen with what ships
    dev = config.read_for_model("cls", config.dev, model.config.label2id, config.model)
    test = config.read_for_model("cls", config.test, model.config.label2id, config.model) if config.test else None
    metric = config.metric or spec.metric
    texts = [ex.text for ex in dev.examples]
    probs, _ = predict_cls(model, tokenizer, spec, texts, config.batch_size)
    margins = baseline_margins(pipeline, texts, names, str(config.baseline))
    stored = {"precision": config.baseline_precision}
    if packed is not None:  # the int8 baseline against the fitted one on dev, as `quantize` reports a model
        exact = baseline_margins(full, texts, names)
        stored.update(dev_agreement=round(float((exact.argmax(1) == margins.argmax(1)).mean()), 4),
                      dev_max_margin_change=round(float(np.abs(exact - margins).max()), 4))  # fmt: skip
    logp = np.log(np.clip(np.asarray(probs), 1e-12, None))
    chosen = choose_fusion(logp, margins, [ex.label for ex in dev.examples], names, metric)
    log.info("fuse: chosen on dev %s", chosen)
    if chosen["weight"] == 1.0:
        log.warning("fuse: on dev the baseline adds nothing to %s (weight 1.0): the folder answers as the model does.",
                    config.model)  # fmt: skip
    with stage_output(config) as out:
        out.add_input("model", config.model)
        out.add_input("baseline", config.baseline)
        out.add_input("dev", config.dev)
        if config.test:
            out.add_input("test", config.test)
        for f in model_files(Path(config.model)):
            shutil.copy2(f, out.dir / f.name)
        if packed is None:
            shutil.copy2(Path(config.baseline) / "model.joblib", out.dir / FUSION_FILE)
        else:
            joblib.dump(packed, out.dir / FUSION_FILE, compress=3)
        stored["size_bytes"] = (out.dir / FUSION_FILE).stat().st_size
        spec.fusion = {"baseline": FUSION_FILE, "weight": chosen["weight"], "temperature": chosen["temperature"]}
        spec.metric = chosen["metric"]
        spec.save(out.dir)
        fused, ftok, fspec = load_task_model(out.dir, fused=True)  # score what ships, not the parts
        # What the baseline adds to one request (a server's batch 1), the report's p50 beside bench's of the model.
        one = [
            fspec.fused.apply(np.asarray(probs[i : i + 1]), texts[i : i + 1])[1] for i in range(min(100, len(texts)))
        ]
        stored["p50_ms_batch1"] = round(1e3 * float(np.median(one)), 3)
        baseline_manifest = read_manifest(Path(config.baseline))
        fitted = baseline_manifest.get("metrics", {})
        out.metrics.update({"fusion": chosen, "baseline": stored, "sklearn": fitted.get("sklearn"),
                            "baseline_parameters": fitted.get("parameters"),
                            "size_bytes": sum(f.stat().st_size for f in out.dir.iterdir() if f.is_file())})  # fmt: skip
        for name, data in (("dev", dev), ("test", test)):
            if data is not None:
                report = evaluate_split(fused, ftok, fspec, data, out.dir, name, config.batch_size)
                out.metrics[name] = {k: v for k, v in report.items() if not isinstance(v, dict | list)}
                timing = report["throughput"]
                out.metrics[name]["examples_per_second"] = timing["examples_per_second"]  # end to end, batch 64
                out.metrics[name]["baseline_ms_per_example"] = round(
                    1e3 * timing["baseline_seconds"] / len(data.examples), 3
                )
    test_value = out.metrics.get("test", {}).get("metric_value")
    log.info("fuse: dev %s %s (model %s, baseline %s); test %s", chosen["metric"], chosen["dev_fused"],
             chosen["dev_model"], chosen["dev_baseline"], test_value)  # fmt: skip
    return Path(config.out_dir)
