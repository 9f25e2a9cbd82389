"""`lmtailor sparsify`: unstructured magnitude pruning of a task model, reported honestly.

The smallest-magnitude weights of the encoder's Linear layers are set to zero, either over all of them at once
(`global`: layers that matter less lose more) or the same fraction in each (`per_layer`). The pruning itself is
`torch.nn.utils.prune` (l1_unstructured / global_unstructured), made permanent with `prune.remove`, so the saved
folder is a plain HF model that `from_pretrained` loads.

What this does **not** do, and the reports say so: the zeros are stored densely, so `model.safetensors` has the
same size, and dense PyTorch/ONNX kernels run at the same speed. A gain needs a sparse storage format or a sparse
runtime; the manifest gives a CSR estimate to show how much sparsity that would need before it pays. One-shot
pruning without retraining costs accuracy; with an eval file the metric at each sparsity shows how much.

With one sparsity the output folder is the pruned model; with several (a curve) each pruned model is saved in
`sparsity-<s>/`. Either way `sparsity_curve.json` holds the achieved sparsity and metric per requested sparsity.
"""

from __future__ import annotations

import copy
import logging
import shutil
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils import prune

from lmtailor.compress.config import SparsifyConfig
from lmtailor.errors import InputFormatError
from lmtailor.models.folder import weight_files
from lmtailor.models.task_folder import TASK_FILE, load_task_model
from lmtailor.outputs import stage_output, write_json
from lmtailor.tasks.evaluate import evaluate_split

log = logging.getLogger(__name__)

DENSE_NOTE = (
    "Unstructured sparsity: the zeros are stored densely, so the model's size on disk is unchanged and dense "
    "PyTorch/ONNX kernels run at the same speed. Size or speed gains need a sparse format or a sparse runtime."
)


def prune_targets(model: nn.Module, embeddings: bool = False, head: bool = False) -> list[tuple[str, nn.Module]]:
    """(name, module) of the weights to prune: the encoder's Linear layers, plus embeddings and head on request.

    The "head" is every Linear outside the base model (classifier, pre_classifier) and the base model's pooler.
    """
    base = getattr(model, "base_model", model)
    base_ids = {id(m) for m in base.modules()}
    pooler = getattr(base, "pooler", None)
    pooler_ids = {id(m) for m in pooler.modules()} if isinstance(pooler, nn.Module) else set()
    targets, seen = [], set()
    for name, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or id(weight) in seen:
            continue  # a weight shared between modules (tied) is pruned once
        in_head = id(module) not in base_ids or id(module) in pooler_ids
        if isinstance(module, nn.Embedding):
            keep = embeddings
        elif isinstance(module, nn.Linear):
            keep = head if in_head else True
        else:
            keep = False  # LayerNorm and the like: a handful of weights that everything downstream depends on
        if keep:
            seen.add(id(weight))
            targets.append((name, module))
    return targets


def magnitude_prune(targets: list[tuple[str, nn.Module]], sparsity: float, scope: str = "global") -> None:
    """Zero the `sparsity` fraction of smallest |w| among the targets' weights, in place and permanently."""
    if sparsity <= 0 or not targets:
        return
    if scope == "global":
        params = [(m, "weight") for _, m in targets]
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=sparsity)
    else:
        for _, module in targets:
            prune.l1_unstructured(module, "weight", amount=sparsity)
    for _, module in targets:
        prune.remove(module, "weight")  # weight_orig * mask becomes the plain `weight` parameter again


def count_zeros(targets: list[tuple[str, nn.Module]]) -> dict:
    """Exact zeros among the targets' weights (in total and per module); weights that were zero before count."""
    per_module, zeros, total = {}, 0, 0
    for name, module in targets:
        w = module.weight.detach()
        z = int((w == 0).sum())
        per_module[name] = round(z / w.numel(), 4)
        zeros, total = zeros + z, total + w.numel()
    return {"zeros": zeros, "weights": total, "sparsity": round(zeros / total, 6) if total else 0.0,
            "per_module": per_module}  # fmt: skip


def csr_bytes(targets: list[tuple[str, nn.Module]]) -> int:
    """What the targets' weights would take as CSR matrices (fp32 values, int32 column indices and row pointers)."""
    total = 0
    for _, module in targets:
        w = module.weight.detach()
        rows = w.shape[0]
        nnz = int((w != 0).sum())
        total += nnz * (w.element_size() + 4) + (rows + 1) * 4
    return total


def weight_bytes(folder: Path) -> int:
    """Bytes of the weight files in an HF folder (not tokenizer or config)."""
    return sum(f.stat().st_size for f in weight_files(folder))


def _read_eval(config: SparsifyConfig, model, task: str):
    return config.read_for_model(task, config.eval, model.config.label2id, config.model)


def _evaluate(model, tokenizer, spec, data, folder: Path, batch_size: int) -> dict:
    report = evaluate_split(model, tokenizer, spec, data, folder, Path(data.path).stem, batch_size)
    return {"metric": report["metric"], "value": report["metric_value"]}


def _sparsify_one(config: SparsifyConfig, original, tokenizer, spec, data, sparsity: float, folder: Path) -> dict:
    model = copy.deepcopy(original)  # every sparsity starts from the original, not from the previous step
    targets = prune_targets(model, config.include_embeddings, config.include_head)
    magnitude_prune(targets, sparsity, config.scope)
    counted = count_zeros(targets)
    all_params = sum(p.numel() for p in model.parameters())
    all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    if (Path(config.model) / TASK_FILE).is_file():
        shutil.copy(Path(config.model) / TASK_FILE, folder / TASK_FILE)
    row = {
        "sparsity_requested": sparsity,
        "sparsity_achieved": counted["sparsity"],
        "zeros": counted["zeros"],
        "targeted_weights": counted["weights"],
        "sparsity_all_parameters": round(all_zeros / all_params, 6),
        "weights_mb_on_disk": round(weight_bytes(folder) / 1e6, 3),
        "targeted_dense_mb": round(sum(m.weight.numel() * m.weight.element_size() for _, m in targets) / 1e6, 3),
        "targeted_csr_mb_estimate": round(csr_bytes(targets) / 1e6, 3),
        "per_module": counted["per_module"],
    }
    if data is not None:
        row.update(_evaluate(model, tokenizer, spec, data, folder, config.batch_size))
    log.info("sparsity %g: %.4f achieved%s", sparsity, row["sparsity_achieved"],
             f", {row['metric']} {row['value']}" if data is not None else "")  # fmt: skip
    return row


def run_sparsify(config: SparsifyConfig) -> Path:
    """Prune the model at each requested sparsity, save it, count the zeros, score it; return the output folder."""
    model, tokenizer, spec = load_task_model(config.model)
    if not isinstance(model, nn.Module):
        raise InputFormatError(
            f"{config.model} is not a PyTorch model folder (ONNX?); sparsify the PyTorch model, then export it."
        )
    data = _read_eval(config, model, spec.task) if config.eval is not None else None
    input_mb = round(weight_bytes(config.model) / 1e6, 3)
    with stage_output(config) as out, torch.no_grad():
        out.add_input("model", config.model)
        if config.eval is not None:
            out.add_input("eval", config.eval)
        dense = None
        if data is not None:
            (out.dir / "dense").mkdir()
            dense = _evaluate(model, tokenizer, spec, data, out.dir / "dense", config.batch_size)
        single = len(config.sparsity) == 1
        rows = [
            _sparsify_one(config, model, tokenizer, spec, data, s, out.dir if single else out.dir / f"sparsity-{s:g}")
            for s in config.sparsity
        ]
        curve = {"scope": config.scope, "input_weights_mb_on_disk": input_mb, "dense_metric": dense,
                 "note": DENSE_NOTE, "points": rows}  # fmt: skip
        write_json(out.dir / "sparsity_curve.json", curve)
        last = rows[-1]
        out.metrics.update({
            "note": DENSE_NOTE,
            "sparsity_achieved": {f"{r['sparsity_requested']:g}": r["sparsity_achieved"] for r in rows},
            "input_weights_mb_on_disk": input_mb,
            "output_weights_mb_on_disk": last["weights_mb_on_disk"],
            # Compared with the input's weight files: equal unless the input was in another format (.bin).
            "size_changed": any(r["weights_mb_on_disk"] != input_mb for r in rows),
        })  # fmt: skip
        if dense is not None:
            out.metrics[f"dense_{dense['metric']}"] = dense["value"]
            out.metrics[dense["metric"]] = {f"{r['sparsity_requested']:g}": r["value"] for r in rows}
    return Path(config.out_dir)
