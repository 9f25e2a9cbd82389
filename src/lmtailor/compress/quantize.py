"""`lmtailor quantize`: int8 and int4 task models for the CPU, with what they cost in accuracy reported honestly.

Methods (measured on all-MiniLM-L6-v2 with an 18-class head, 2 threads of an AVX2 EPYC without VNNI):

- `int8` (ONNX, from an `lmtailor export` folder): ONNX Runtime dynamic quantisation. Weights of MatMul/Gemm, of
  the fused Attention (QKV) and of the embedding tables (Gather, or EmbedLayerNormalization in a fused graph) become
  int8; activations are quantised to uint8 per batch at run time. About 4x smaller (90.9 -> 22.9 MB). Signed int8
  weights (U8S8) are the default: they ran faster than uint8 weights (U8U8) at the same logit error here, and are
  what ONNX Runtime's x86 kernels are built for; `weight_type: quint8` is there for CPUs where U8S8 saturates.
- `int4` (ONNX): `MatMulNBitsQuantizer`, 4-bit block-wise weight-only (block 32, symmetric) for every MatMul.
  MatMulNBits cannot take the fused Attention's QKV weights nor the embedding tables inside
  EmbedLayerNormalization (the embeddings alone are half of MiniLM's weights), so with `int4_others: int8`
  (default) those get the dynamic int8 treatment (90.9 -> 20.3 MB); with `fp32` they stay as they were (64 MB).
  A graph exported with `--no-optimize` keeps plain Gathers for the embeddings, which become 4-bit
  GatherBlockQuantized instead. int4 buys size, not speed, on such a CPU: it ran at fp32 ONNX speed, int8 faster.
- `torch-int8` (PyTorch, from a fine-tuned HF folder): `torch.ao.quantization.quantize_dynamic` on nn.Linear.
  Its quantised modules have no stable on-disk format (packed parameters pickle only, and torch.ao is deprecated
  in favour of torchao), so the output folder keeps the fp32 `model.safetensors` and sets `torch_int8: true` in
  task.json; `load_task_model` applies the same deterministic quantisation at load time, which reproduces the
  quantised model exactly (checked before the folder is written). The disk size is unchanged; the manifest gives
  the quantised state's size in memory. `AutoModel*.from_pretrained` on the folder gives the fp32 model.

Every method compares the quantised model's logits with the fp32 model's on probe batches, and, given a labelled
`eval` file, writes both models' evaluation (`eval_fp32.json`, `eval_quantized.json`, predictions, confusion
plots) and reports the metric of each and how often their predictions agree: per example, and per position
(classification: per feature; NER: per real token).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import numpy as np
import onnx
import torch

from lmtailor.compress.config import QuantizeConfig
from lmtailor.errors import InputFormatError, InputNotFoundError, VerificationError
from lmtailor.models.folder import ONNX_FILE, copy_metadata, weight_files
from lmtailor.models.onnx_runtime import OUTPUT_NAME, OnnxTaskModel, model_inputs
from lmtailor.models.probe import compare, probe_batches
from lmtailor.models.task_folder import TaskSpec, load_task_model, torch_int8
from lmtailor.outputs import read_manifest, stage_output
from lmtailor.tasks.evaluate import evaluate_split
from lmtailor.tasks.target import parse_metric

log = logging.getLogger(__name__)

# Ops whose constant weights dynamic int8 takes. quantize_dynamic first rewrites Gemm (pooler, classifier head) as
# MatMul + Add, so "MatMul" covers those; MatMuls of two activations (attention scores) are left in fp32.
INT8_OPS = ["MatMul", "Gemm", "Attention", "Gather", "EmbedLayerNormalization"]
# The int8 pass of `int4`: what MatMulNBits leaves behind in a fused graph (by then the 4-bit MatMuls are
# MatMulNBits, so "MatMul" only meets the rewritten Gemms).
INT4_OTHER_OPS = INT8_OPS
# ONNX Runtime's quantisers log these on every call, to the root logger; neither applies to these graphs (the
# pre-processing is shape inference plus the fusions `export` already did; MatMulNBits stores uint8-packed weights,
# not ONNX int4 tensors, so the opset it bumps to 21 for them runs everywhere MatMulNBits does).
_ORT_NOISE = ("Please consider to run pre-processing", "doesn't support int4 data type")
# MatMulNBits compute type on the CPU: 4 = int8 activations (ran ~15% faster than fp32 compute for the same error).
INT4_ACCURACY_LEVEL = 4


def check_onnx_input(src: Path) -> None:
    """An fp32 `lmtailor export` folder whose model.onnx is a readable task graph, else InputFormatError."""
    if not src.is_dir():
        raise InputNotFoundError(f"model folder {src} does not exist; pass the output folder of `lmtailor export`.")
    path = src / ONNX_FILE
    if not path.is_file():
        if weight_files(src):
            raise InputFormatError(
                f"{src} is a PyTorch model folder; int8/int4 quantise an ONNX export: run `lmtailor export {src}` "
                "first and quantise its output, or use --method torch-int8."
            )
        raise InputFormatError(f"{src} has no {ONNX_FILE}; pass the output folder of `lmtailor export`.")
    stage = read_manifest(src).get("stage")
    if stage == "quantize":
        raise InputFormatError(f"{src} is already quantised; quantise the fp32 `lmtailor export` folder it came from.")
    if stage != "export":
        raise InputFormatError(
            f"{path} was not written by `lmtailor export` (no lmtailor.json of stage 'export' beside it); export the "
            "fine-tuned model with `lmtailor export` and quantise that folder."
        )
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # protobuf's DecodeError and friends: the file is not (or no longer) an ONNX model
        raise InputFormatError(
            f"{path} is not a readable ONNX model ({str(exc)[:200]}); re-create it with `lmtailor export`."
        ) from None
    inputs, outputs = [i.name for i in graph.input], [o.name for o in graph.output]
    if "input_ids" not in inputs or OUTPUT_NAME not in outputs:
        raise InputFormatError(
            f"{path} takes {inputs} and gives {outputs}, not input_ids -> logits; re-create it with `lmtailor export`."
        )
    for name in ("config.json", "tokenizer.json"):
        if not (src / name).is_file():
            raise InputFormatError(f"{src} has no {name}; re-create the folder with `lmtailor export`.")


class _DropOrtNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(text in record.getMessage() for text in _ORT_NOISE)


def _restore_root(handlers: list[logging.Handler], level: int) -> None:
    root = logging.getLogger()
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


@contextmanager
def _quiet_ort() -> Iterator[None]:
    """Run ONNX Runtime's quantisers without their logging side effects on the process: importing
    matmul_nbits_quantizer calls `logging.basicConfig(level=INFO)`, quantize_dynamic warns through the root logger
    (which installs a handler when there is none) and both warn about things that do not apply here."""
    root, nbits = logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    handlers, level, nbits_level = list(root.handlers), root.level, nbits.level
    noise = _DropOrtNoise()
    for logger in (root, nbits):
        logger.addFilter(noise)
    try:
        import onnxruntime.quantization.matmul_nbits_quantizer  # noqa: F401  (configures logging on first import)

        _restore_root(handlers, level)
        nbits.setLevel(max(logging.WARNING, nbits.getEffectiveLevel()))  # one INFO line per graph node otherwise
        yield
    finally:
        _restore_root(handlers, level)
        nbits.setLevel(nbits_level)
        for logger in (root, nbits):
            logger.removeFilter(noise)


def quantize_int8(src: Path, dst: Path, weight_type: str = "qint8", per_channel: bool = False,
                  op_types: list[str] | None = None) -> None:  # fmt: skip
    """ONNX Runtime dynamic int8 quantisation of the ONNX file `src` into `dst`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_ort():
        quantize_dynamic(
            str(src), str(dst), op_types_to_quantize=op_types or INT8_OPS, per_channel=per_channel,
            weight_type=QuantType.QInt8 if weight_type == "qint8" else QuantType.QUInt8,
            # ONNX shape inference stops at contrib ops (Attention, SkipLayerNormalization); every tensor it
            # leaves untyped in these graphs is float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )  # fmt: skip


def quantize_int4(src: Path, dst: Path, block_size: int = 32, others: str = "int8") -> None:
    """4-bit block-wise weight-only quantisation (MatMul, plain Gather) of `src` into `dst`; what it cannot take
    goes through dynamic int8 when `others` is "int8"."""
    with _quiet_ort():
        from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(src)), bits=4, block_size=block_size, is_symmetric=True, accuracy_level=INT4_ACCURACY_LEVEL,
            op_types_to_quantize=("MatMul", "Gather"),
        )  # fmt: skip
        # An all-zero block (the padding token's embedding row) has scale 0; ORT divides before masking it out.
        with np.errstate(divide="ignore", invalid="ignore"):
            quantizer.process()
    four_bit = dst.with_name(dst.stem + ".int4-only.onnx") if others == "int8" else dst
    quantizer.model.save_model_to_file(str(four_bit), use_external_data_format=False)
    if others == "int8":
        quantize_int8(four_bit, dst, op_types=INT4_OTHER_OPS)
        four_bit.unlink()


def graph_summary(path: Path) -> dict:
    """Quantised operator counts (a dynamic-int8 Gather shows as Gather + DequantizeLinear), the bytes of
    quantised and of float weights, and the largest float weights left (so fp32 embeddings are plain to see)."""
    graph = onnx.load(str(path)).graph
    ops = Counter(n.op_type for n in graph.node)
    quantized = {op: n for op, n in sorted(ops.items())
                 if op.startswith("Q") or "quant" in op.lower() or "Integer" in op or "NBits" in op}  # fmt: skip
    sizes = [(int(np.prod(t.dims)) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize, t.name, t.data_type)
             for t in graph.initializer]  # fmt: skip
    floats = sorted(((b, name) for b, name, kind in sizes if kind == onnx.TensorProto.FLOAT), reverse=True)
    integers = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.INT4, onnx.TensorProto.UINT4)
    return {"quantized_operators": quantized, "float_weight_bytes": sum(b for b, _ in floats),
            "quantized_weight_bytes": sum(b for b, _, kind in sizes if kind in integers),
            "largest_float_weights": {name: b for b, name in floats[:3]}}  # fmt: skip


def _read_eval(config: QuantizeConfig, hf_config, task: str):
    if not Path(config.eval).is_file():
        raise InputNotFoundError(f"eval file {config.eval} does not exist; pass a labelled file or leave --eval out.")
    return config.read_for_model(task, config.eval, hf_config.label2id, config.model)


class _Recorder:
    """Passes calls to a model and keeps each batch's argmax over real positions, so that the predictions of two
    models run over the same features (`forward` orders them the same way) can be compared position by position."""

    def __init__(self, model) -> None:
        self.model, self.config, self.device = model, model.config, model.device
        self.argmax: list[np.ndarray] = []

    def eval(self) -> _Recorder:
        return self

    def __call__(self, **batch: torch.Tensor):
        out = self.model(**batch)
        pred = out.logits.argmax(-1)  # [B] or [B, T]
        if pred.ndim == 2:
            pred = pred[batch["attention_mask"].bool()]
        self.argmax.append(pred.cpu().numpy())
        return out


def _predicted(folder: Path, name: str) -> list:
    lines = (folder / f"predictions_{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [(r.get("predicted")) for r in map(json.loads, lines)]


def _evaluate_both(fp32, quantized, tokenizer, spec: TaskSpec, data, folder: Path, batch_size: int) -> dict:
    report = {"eval_file": str(data.path), "metric": parse_metric(spec.metric, spec.task).name}
    recorders = {}
    for name, model in (("fp32", fp32), ("quantized", quantized)):
        recorders[name] = _Recorder(model)
        result = evaluate_split(recorders[name], tokenizer, spec, data, folder, name, batch_size)
        report[name] = result["metric_value"]
        report[f"{name}_examples_per_second"] = result["throughput"].get("examples_per_second")
    both = (report["quantized"], report["fp32"])  # None: the split has no example of the metric's label
    report["delta"] = None if None in both else round(both[0] - both[1], 6)
    a, b = (np.concatenate(recorders[n].argmax) for n in ("fp32", "quantized"))
    report["position_agreement"] = round(float((a == b).mean()), 6) if len(a) else None
    report["positions"] = "features" if spec.task == "cls" else "tokens"
    same = [x == y for x, y in zip(_predicted(folder, "fp32"), _predicted(folder, "quantized"), strict=True)]
    report["example_agreement"] = round(sum(same) / len(same), 6) if same else None
    return report


def _probe(fp32, quantized, tokenizer, spec: TaskSpec, names: list[str], seed: int) -> dict:
    length = min(spec.max_length, getattr(fp32.config, "max_position_embeddings", 514) - 2)
    batches = probe_batches(tokenizer, length, names, seed)

    def logits(model):
        @torch.no_grad()
        def run(batch: dict[str, np.ndarray]) -> np.ndarray:
            return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()

        return run

    return compare(logits(fp32), logits(quantized), batches)


def run_quantize(config: QuantizeConfig) -> Path:
    """Quantise `config.model` with `config.method` into `config.out_dir`, compared with the fp32 model."""
    if config.method == "torch-int8":
        return _run_torch(config)
    src = Path(config.model)
    check_onnx_input(src)
    fp32, tokenizer, spec = load_task_model(src, threads=config.threads)
    data = _read_eval(config, fp32.config, spec.task) if config.eval is not None else None
    with stage_output(config) as out:
        out.add_input("model", src)
        dst = out.dir / ONNX_FILE
        if config.method == "int8":
            quantize_int8(src / ONNX_FILE, dst, config.weight_type, config.per_channel)
        else:
            quantize_int4(src / ONNX_FILE, dst, config.block_size, config.int4_others)
        copy_metadata(src, out.dir)
        quantized = OnnxTaskModel(out.dir, threads=config.threads)
        before, after = (src / ONNX_FILE).stat().st_size, dst.stat().st_size
        out.metrics.update({"method": config.method, "task": spec.task, "bytes_before": before, "bytes_after": after,
                            "size_ratio": round(after / before, 4), **graph_summary(dst)})  # fmt: skip
        out.metrics["probe"] = _probe(fp32, quantized, tokenizer, spec, fp32.input_names, config.seed)
        if data is not None:
            out.metrics["eval"] = _evaluate_both(fp32, quantized, tokenizer, spec, data, out.dir, config.batch_size)
    log.info("quantised %s (%s): %.1f → %.1f MB", src, config.method, before / 1e6, after / 1e6)
    return Path(config.out_dir)


def _state_bytes(model: torch.nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell()


def _run_torch(config: QuantizeConfig) -> Path:
    src = Path(config.model)
    if not src.is_dir():
        raise InputNotFoundError(f"model folder {src} does not exist; pass the output folder of `lmtailor finetune`.")
    if not weight_files(src):
        raise InputFormatError(
            f"{src} has no PyTorch weights (model.safetensors); torch-int8 quantises a fine-tuned HF folder"
            + (", and this is an ONNX export: use --method int8 or int4." if (src / ONNX_FILE).is_file() else ".")
        )
    model, tokenizer, spec = load_task_model(src)
    if spec.torch_int8:
        raise InputFormatError(f"{src} is already torch-int8; quantise the fp32 folder it came from.")
    data = _read_eval(config, model.config, spec.task) if config.eval is not None else None
    quantized = torch_int8(model)
    with stage_output(config) as out:
        out.add_input("model", src)
        for path in weight_files(src):
            shutil.copy2(path, out.dir / path.name)
        copy_metadata(src, out.dir)
        TaskSpec(**{**asdict(spec), "torch_int8": True}).save(out.dir)
        names = model_inputs(model, tokenizer)
        out.metrics.update({"method": config.method, "task": spec.task,
                            "bytes_before": sum(p.stat().st_size for p in weight_files(src)),
                            "bytes_after": sum(p.stat().st_size for p in weight_files(out.dir)),
                            "state_bytes_fp32": _state_bytes(model), "state_bytes_quantized": _state_bytes(quantized),
                            "probe": _probe(model, quantized, tokenizer, spec, names, config.seed)})  # fmt: skip
        reloaded, _, _ = load_task_model(out.dir)
        again = _probe(quantized, reloaded, tokenizer, spec, names, config.seed)
        if again["max_abs_diff"] != 0:
            raise VerificationError(
                f"{out.dir.name}: the torch-int8 model loaded back differs from the one just quantised (by "
                f"{again['max_abs_diff']:.3g}); this is a bug in lmtailor, please report it."
            )
        if data is not None:
            out.metrics["eval"] = _evaluate_both(model, quantized, tokenizer, spec, data, out.dir, config.batch_size)
    return Path(config.out_dir)
