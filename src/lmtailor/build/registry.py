"""The stages a command line or a recipe can run: name → (module, config class, run function), imported lazily."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from lmtailor.config import StageConfig

STAGES: dict[str, tuple[str, str, str]] = {
    "model.import": ("lmtailor.models.import_e5", "ImportConfig", "run_import"),
    "corpus": ("lmtailor.corpus", "CorpusConfig", "run"),
    "terms.mine": ("lmtailor.terms", "MineConfig", "run_mine"),
    "terms.merge": ("lmtailor.terms", "MergeConfig", "run_merge"),
    "tokenizer.train": ("lmtailor.tokenizer", "TokenizerTrainConfig", "run_train"),
    "tokenizer.eval": ("lmtailor.tokenizer", "TokenizerEvalConfig", "run_eval"),
    "vocab.trim": ("lmtailor.vocab", "TrimConfig", "run_trim"),
    "vocab.extend": ("lmtailor.vocab", "ExtendConfig", "run_extend"),
    "vocab.transfer": ("lmtailor.vocab", "TransferConfig", "run_transfer"),
    "pretrain": ("lmtailor.train.pretrain", "PretrainConfig", "run_pretrain"),
    "finetune": ("lmtailor.train.finetune", "FinetuneConfig", "run_finetune"),
    "evaluate": ("lmtailor.tasks.evaluate", "EvaluateConfig", "run_evaluate"),
    "distill": ("lmtailor.train.distill", "DistillConfig", "run_distill"),
    "prune": ("lmtailor.compress.prune", "PruneConfig", "run_prune"),
    "sparsify": ("lmtailor.compress.unstructured", "SparsifyConfig", "run_sparsify"),
    "quantize": ("lmtailor.compress.quantize", "QuantizeConfig", "run_quantize"),
    "export": ("lmtailor.export.onnx", "ExportConfig", "run_export"),
    "bench": ("lmtailor.export.bench", "BenchConfig", "run_bench"),
    "report": ("lmtailor.report", "ReportConfig", "run_report"),
}


def stage_class(name: str) -> type[StageConfig]:
    module, cls, _ = STAGES[name]
    return getattr(import_module(module), cls)


def stage_runner(name: str):
    module, _, fn = STAGES[name]
    return getattr(import_module(module), fn)


def run_stage(name: str, config: StageConfig) -> Path:
    """Run stage `name` with its output claimed first: checked against its inputs and locked before any work."""
    from lmtailor.outputs import claim_output

    with claim_output(name, config):
        return stage_runner(name)(config)
