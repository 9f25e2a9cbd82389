"""`lmtailor export`: a fine-tuned task model as an ONNX graph for ONNX Runtime, checked against PyTorch.

The output folder holds `model.onnx` (inputs input_ids, attention_mask and, where the model takes them,
token_type_ids, all int64 [batch, sequence]; output logits, [batch, labels] or [batch, sequence, labels]) next to
the source's config.json, tokenizer files and task.json, so `AutoConfig`/`AutoTokenizer.from_pretrained` and
`load_task_model` read it like the PyTorch folder. Before anything is written the graph is run on probe batches
of several shapes and its logits compared with PyTorch's; above `parity_tolerance` the export fails.

Exporter: the TorchScript exporter (`dynamo=False`) is the default although torch marks it deprecated, because on
torch 2.13 + transformers 5 it is the one whose graph ONNX Runtime's transformer optimizer recognises: with eager
attention it fuses EmbedLayerNormalization, Attention, SkipLayerNormalization and BiasGelu on BERT, where the
torch.export-based exporter's graph gets no Attention fusion at all, and it exports a small model in well under a
second instead of ~10 s. Both give dynamic batch and sequence axes and pass the parity check; `exporter: dynamo`
is there for the day the TorchScript one is removed.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

from lmtailor.errors import ConfigError, InputFormatError, InputNotFoundError, VerificationError
from lmtailor.export.config import ExportConfig
from lmtailor.models.folder import ONNX_FILE, copy_metadata, weight_files
from lmtailor.models.onnx_runtime import OUTPUT_NAME, check_provider, make_session, model_inputs
from lmtailor.models.probe import compare, probe_batches
from lmtailor.models.task_folder import load_task_model
from lmtailor.outputs import stage_output
from lmtailor.tasks.readers import read_inputs

log = logging.getLogger(__name__)

# HF model types whose graphs ONNX Runtime's optimizer fuses with its BERT recipe (same encoder layout).
ORT_MODEL_TYPES = {"bert": "bert", "roberta": "bert", "xlm-roberta": "bert", "camembert": "bert", "electra": "bert"}
DEFAULT_OPSET = {"torchscript": 17, "dynamo": 18}


def check_source(src: Path) -> None:
    """A PyTorch task model folder, or an error that says what the folder is instead."""
    if not src.is_dir():
        raise InputNotFoundError(f"model folder {src} does not exist; pass the output folder of `lmtailor finetune`.")
    if not weight_files(src):
        if (src / ONNX_FILE).is_file():
            raise InputFormatError(
                f"{src} is already an ONNX export (model.onnx, no PyTorch weights); export the fine-tuned folder it "
                "came from."
            )
        raise InputFormatError(f"{src} has no model weights (model.safetensors); pass a fine-tuned model folder.")


def _export_graph(src: Path, task: str, example: dict[str, np.ndarray], path: Path, config: ExportConfig) -> None:
    auto = AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification
    # Eager attention: SDPA's traced graph is one ORT's optimizer does not fuse; the two agree to ~1e-7, and
    # parity is checked against the model as users load it (SDPA).
    model = auto.from_pretrained(str(src), attn_implementation="eager").eval()
    names = list(example)
    args = tuple(torch.from_numpy(example[n]) for n in names)
    axes = {n: {0: "batch", 1: "sequence"} for n in names}
    opset = config.opset or DEFAULT_OPSET[config.exporter]
    with torch.no_grad(), warnings.catch_warnings():
        if config.exporter == "torchscript":
            # The tracer warns about shape arithmetic it records as constants (masking_utils' padding length, 0
            # without a KV cache at every shape) and about advanced indexing with negative indices (the mask's
            # indices are aranges, never negative); the parity check over several shapes is what proves both harmless.
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message=".*aten::index operator of advanced indexing.*")
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            logit_axes = {0: "batch", 1: "sequence"} if task == "ner" else {0: "batch"}
            torch.onnx.export(model, (), str(path), kwargs=dict(zip(names, args, strict=True)), input_names=names,
                              output_names=[OUTPUT_NAME], dynamic_axes={**axes, OUTPUT_NAME: logit_axes},
                              opset_version=opset, dynamo=False, do_constant_folding=True)  # fmt: skip
        else:
            # Dynamic axes that torch.export finds equal across inputs are merged under one name; that is expected.
            warnings.filterwarnings("ignore", message=".*axis name.*will not be used.*")
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|copyreg).*")
            # external_data=False: one self-contained file (encoders are far below ONNX's 2 GB protobuf limit).
            torch.onnx.export(model, (), str(path), kwargs=dict(zip(names, args, strict=True)), input_names=names,
                              output_names=[OUTPUT_NAME], dynamic_shapes=axes, opset_version=opset, dynamo=True,
                              external_data=False, verbose=False)  # fmt: skip


def _optimize(path: Path, hf_config) -> dict[str, int]:
    """Fuse the graph in place with ONNX Runtime's transformer optimizer; the fused-operator counts."""
    kind = ORT_MODEL_TYPES.get(hf_config.model_type)
    if kind is None:
        log.info("no ONNX Runtime fusion recipe for model type %r; the graph is kept as exported (ORT still applies "
                 "its generic optimisations when it loads it)", hf_config.model_type)  # fmt: skip
        return {}
    from onnxruntime.transformers import optimizer

    optimized = optimizer.optimize_model(str(path), model_type=kind, num_heads=hf_config.num_attention_heads,
                                         hidden_size=hf_config.hidden_size, opt_level=0, use_gpu=False)  # fmt: skip
    optimized.save_model_to_file(str(path))
    return {op: n for op, n in optimized.get_fused_operator_statistics().items() if n}


def run_export(config: ExportConfig) -> Path:
    """Export `config.model` to `config.out_dir/model.onnx`, verified against PyTorch on probe batches."""
    src = Path(config.model)
    check_source(src)
    check_provider(config.provider)  # before any work: an unusable provider is known now
    model, tokenizer, spec = load_task_model(src)
    if spec.torch_int8:
        raise InputFormatError(
            f"{src} is a torch-int8 model (task.json); export the fp32 folder it came from, then quantise the export "
            "with `lmtailor quantize --method int8`."
        )
    names = model_inputs(model, tokenizer)
    length = min(spec.max_length, getattr(model.config, "max_position_embeddings", 514) - 2)
    texts = read_inputs(None, config.parity_file) if config.parity_file is not None else None
    batches = probe_batches(tokenizer, length, names, config.seed, texts)

    @torch.no_grad()
    def pytorch(batch: dict[str, np.ndarray]) -> np.ndarray:
        return model(**{k: torch.from_numpy(v) for k, v in batch.items()}).logits.float().numpy()

    with stage_output(config) as out:
        out.add_input("model", src)
        path = out.dir / ONNX_FILE
        try:
            _export_graph(src, spec.task, batches[1], path, config)
        except Exception as exc:  # the exporters raise many types; the user needs the model and the way out
            raise ConfigError(
                f"torch.onnx ({config.exporter}) could not export {src}: {str(exc).strip()[:300]}; try the other "
                "exporter (--exporter torchscript|dynamo) or another --opset."
            ) from exc
        fused = _optimize(path, model.config) if config.optimize else {}
        session = make_session(path, config.provider, config.threads)
        parity = compare(pytorch, lambda b: session.run([OUTPUT_NAME], b)[0], batches)
        if parity["max_abs_diff"] > config.parity_tolerance:
            raise VerificationError(
                f"ONNX export of {src} differs from PyTorch by up to {parity['max_abs_diff']:.3g} in the logits "
                f"(tolerance {config.parity_tolerance:g}, probe shapes {parity['shapes']}); nothing was written. "
                "Try --no-optimize, the other --exporter, or a larger --parity-tolerance if the difference is benign."
            )
        copied = copy_metadata(src, out.dir)
        out.metrics.update({
            "task": spec.task, "exporter": config.exporter, "opset": config.opset or DEFAULT_OPSET[config.exporter],
            "inputs": names, "optimized": bool(fused), "fused_operators": fused, "provider": config.provider,
            "parity_max_abs_diff": parity["max_abs_diff"], "parity_mean_abs_diff": parity["mean_abs_diff"],
            "parity_argmax_agreement": parity["argmax_agreement"], "parity_shapes": parity["shapes"],
            "parity_tolerance": config.parity_tolerance, "onnx_bytes": path.stat().st_size,
            "parameters": sum(p.numel() for p in model.parameters()), "files": [ONNX_FILE, *copied],
        })  # fmt: skip
    log.info("exported %s → %s (%.1f MB, parity %.2g)", src, config.out_dir, out.metrics["onnx_bytes"] / 1e6,
             parity["max_abs_diff"])  # fmt: skip
    return Path(config.out_dir)
