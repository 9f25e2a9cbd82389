"""`lmtailor finetune cls|ner`: fine-tune any HF encoder for sequence or token classification.

The loop mechanics are HF `Trainer`'s (mixed precision, gradient accumulation, warmup + decay, weight decay,
checkpoints, resume, DDP under `torchrun`); lmtailor adds what a domain user needs around it: task readers with
validation, tokenizer-independent NER alignment (`tasks.align`), long-text policies, class-weighted loss, early
stopping on a dev metric computed on the task's own units, and a final evaluation with the same code as
`lmtailor evaluate`.

Checkpoints live in a stable sibling folder (`.<out>.checkpoints`) rather than in the atomically written output, so
`--resume` finds them after an interruption; they are removed once the output folder is complete.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from lmtailor.config import StageConfig
from lmtailor.errors import ConfigError, InputFormatError, OutputExistsError
from lmtailor.models.dropout import set_dropout
from lmtailor.models.folder import check_model_folder
from lmtailor.models.loading import load_pretrained
from lmtailor.outputs import stage_output, write_json
from lmtailor.tasks import check_splits, read_cls, read_ner
from lmtailor.tasks.align import IGNORE, decode_cls, decode_ner, encode_cls, encode_ner
from lmtailor.tasks.evaluate import evaluate_split
from lmtailor.tasks.inference import TaskSpec
from lmtailor.tasks.metrics import classification_metrics, ner_metrics
from lmtailor.train.precision import resolve_precision

log = logging.getLogger(__name__)


class FinetuneConfig(StageConfig):
    """Fine-tune an HF encoder on a labelled classification or NER task."""

    task: Literal["cls", "ner"] = Field(description="cls: one label per text; ner: entity tags per word/character.")
    model: str = Field(description="HF model folder or hub id to start from (e.g. MiniLM, or an lmtailor model).")
    train: Path = Field(description="Training file (cls: jsonl/csv; ner: token-tag columns or span JSON).")
    dev: Path | None = Field(None, description="Dev file: early stopping and best-checkpoint selection.")
    test: Path | None = Field(None, description="Test file, evaluated once at the end with the best checkpoint.")
    text_field: str = Field("text", description="cls: name of the text field/column.")
    label_field: str = Field("label", description="cls: name of the label field/column.")
    ner_format: Literal["auto", "columns", "spans"] = Field("auto", description="ner: file format (auto by suffix).")
    nested: Literal["outer", "inner", "first"] = Field("outer", description="ner: which of nested entities to keep.")
    invalid_tags: Literal["repair", "error"] = Field(
        "repair", description="ner: an I- without B- is repaired or an error."
    )
    max_length: int = Field(256, ge=8, le=8192, description="Tokens per window, special tokens included.")
    long_text: Literal["head", "head_tail", "windows"] = Field(
        "head", description="cls: texts over max_length keep the head, head + tail, or every window (averaged)."
    )
    stride: int = Field(64, ge=0, description="Tokens shared by consecutive windows (NER and long_text=windows).")
    epochs: float = Field(5.0, gt=0, description="Training epochs (early stopping may end sooner).")
    batch_size: int = Field(32, ge=1, description="Examples per device per step.")
    grad_accum: int = Field(
        1, ge=1, description="Gradient accumulation steps (global batch = batch x accum x devices)."
    )
    lr: float = Field(5e-5, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup: float = Field(0.1, ge=0, lt=1, description="Share of the steps with linear warmup.")
    scheduler: Literal["linear", "cosine", "constant_with_warmup"] = Field("linear", description="LR decay.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 (or fp16) on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32."
    )
    class_weights: bool = Field(False, description="Weight the loss by inverse class frequency (imbalanced data).")
    label_smoothing: float = Field(0.0, ge=0, lt=1, description="Label smoothing of the cross-entropy (0: none).")
    dropout: float | None = Field(None, ge=0, lt=1, description="Set the model's dropout rates (None: its own).")
    attention_dropout: float | None = Field(
        None, ge=0, lt=1, description="Set the attention-probability dropout alone (after `dropout`); 0 lets a CPU "
        "use fused attention, 2x faster at 512 tokens, but cost accuracy on CAIL2018 (docs/benchmarks.md)."
    )  # fmt: skip
    metric: str | None = Field(None, description="Dev metric for early stopping (default: accuracy / entity f1).")
    patience: int = Field(2, ge=0, description="Evaluations without dev improvement before stopping (0: never).")
    eval_every: int | None = Field(None, ge=1, description="Evaluate every N steps (default: every epoch).")
    logging_steps: int = Field(20, ge=1, description="Log loss and learning rate every N steps.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size for evaluation and prediction.")
    max_train_examples: int | None = Field(None, ge=1, description="Use only the first N training examples.")
    resume: bool = Field(False, description="Continue from the last checkpoint of an interrupted run.")
    keep_checkpoints: bool = Field(False, description="Keep the checkpoint folder after success.")


def checkpoint_dir(config: FinetuneConfig) -> Path:
    out = Path(config.out_dir)
    return out.with_name(f".{out.name}.checkpoints")


def _read(config: FinetuneConfig, path: Path):
    if config.task == "cls":
        return read_cls(path, text_field=config.text_field, label_field=config.label_field)
    return read_ner(path, fmt=config.ner_format, nested=config.nested, invalid_tags=config.invalid_tags)


def _label_names(config: FinetuneConfig, train) -> list[str]:
    if config.task == "cls":
        return list(train.labels)
    return ["O"] + [f"{p}-{t}" for t in train.labels for p in ("B", "I")]


def _encode(config: FinetuneConfig, tokenizer, data, label2id):
    if config.task == "cls":
        labels = [label2id[ex.label] for ex in data.examples]
        texts = [ex.text for ex in data.examples]
        return encode_cls(tokenizer, texts, labels, config.max_length, config.long_text, config.stride)
    return encode_ner(tokenizer, data.examples, label2id, config.max_length, config.stride)


def _class_weights(encoded, n_labels: int) -> torch.Tensor:
    """sklearn's "balanced" weights n / (C * count_c) over the training labels (token labels for NER)."""
    labels = [lab for f in encoded.features for lab in np.atleast_1d(f["labels"]) if lab != IGNORE]
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    weights = len(labels) / (n_labels * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def _metric_fn(config: FinetuneConfig, dev, encoded, id2label):
    """compute_metrics for the Trainer: dev predictions decoded to the task's own units, then scored."""

    def compute(pred) -> dict:
        out = pred.predictions  # cls: [N, C] logits; ner: [N, T] argmax ids (see _argmax), padded with -100
        if config.task == "cls":
            probs = decode_cls(encoded, np.asarray(out, dtype=np.float64), len(dev.examples))
            y_pred = [id2label[int(i)] for i in probs.argmax(1)]
            m = classification_metrics([ex.label for ex in dev.examples], y_pred, list(id2label.values()))
        else:
            tags = decode_ner(dev.examples, encoded, out, id2label)
            m = ner_metrics([list(ex.tags) for ex in dev.examples], tags)
        return {k: v for k, v in m.items() if isinstance(v, float)}

    return compute


def _argmax(logits, labels):  # keep only argmax ids for NER: [N, T, C] logits would fill memory on long dev sets
    return logits.argmax(-1)


class _JsonlLog(TrainerCallback):
    """Every Trainer log record appended to metrics.jsonl as it happens, so a run can be followed (`tail -f`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class _Trainer(Trainer):
    """HF Trainer whose evaluation keeps the dev set's order: `train_sampling_strategy="group_by_length"` would also
    reorder evaluation batches, and the dev metric maps predictions back to examples by position."""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is not None and self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None  # distributed: accelerate's even split, gathered back in order


def _training_args(config: FinetuneConfig, ckpt: Path, precision: str, has_dev: bool, metric: str) -> TrainingArguments:
    strategy = "no" if not has_dev else ("steps" if config.eval_every else "epoch")
    return TrainingArguments(
        output_dir=str(ckpt),
        num_train_epochs=config.epochs,
        per_device_train_batch_size=config.batch_size,
        per_device_eval_batch_size=config.eval_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup,
        lr_scheduler_type=config.scheduler,
        eval_strategy=strategy,
        save_strategy=strategy if has_dev else "epoch",
        eval_steps=config.eval_every,
        save_steps=config.eval_every,
        save_total_limit=2,
        load_best_model_at_end=has_dev,
        metric_for_best_model=metric if has_dev else None,
        greater_is_better=True,
        logging_steps=config.logging_steps,
        label_smoothing_factor=0.0 if config.class_weights else config.label_smoothing,  # weighted loss applies it
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not config.show_progress,
        report_to=[],
        train_sampling_strategy="group_by_length",  # similar lengths per batch: far less padding on CPU
        dataloader_num_workers=0,
        save_only_model=False,
    )


def preflight(config: FinetuneConfig) -> str:
    """Checks that need no data (so a run fails now, not after an hour of training); the precision to use."""
    precision = resolve_precision(config.precision)
    if Path(config.out_dir).exists() and not config.overwrite:
        raise OutputExistsError(f"output folder {config.out_dir} already exists; pass --overwrite or another --out.")
    if config.stride > config.max_length // 2:
        raise ConfigError(
            f"--stride {config.stride} (tokens shared by consecutive windows) must be at most half of --max-length "
            f"{config.max_length}; pass --stride {config.max_length // 2} or less, or a larger --max-length."
        )
    check_model_folder(config.model)
    return precision


def read_splits(config: FinetuneConfig) -> tuple:
    """(train, dev, test) task data, validated against each other; dev and test may be None."""
    train = _read(config, config.train)
    dev = _read(config, config.dev) if config.dev else None
    test = _read(config, config.test) if config.test else None
    check_splits(train, *[d for d in (dev, test) if d is not None])
    if config.max_train_examples:
        train.examples = train.examples[: config.max_train_examples]
    return train, dev, test


def trainer_setup(config: FinetuneConfig, precision: str, has_dev: bool) -> tuple[Path, TrainingArguments, list]:
    """The checkpoint folder (emptied unless resuming), the Trainer's arguments and its callbacks."""
    metric = config.metric or ("accuracy" if config.task == "cls" else "f1")
    ckpt = checkpoint_dir(config)
    if ckpt.exists() and not config.resume:
        shutil.rmtree(ckpt)
    ckpt.mkdir(parents=True, exist_ok=True)
    args = _training_args(config, ckpt, precision, has_dev, f"eval_{metric}")
    callbacks: list = [_JsonlLog(ckpt / "metrics.jsonl")]
    if has_dev and config.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    return ckpt, args, callbacks


def run_finetune(config: FinetuneConfig) -> Path:
    t0 = time.perf_counter()
    precision = preflight(config)
    train, dev, test = read_splits(config)
    names = _label_names(config, train)
    label2id, id2label = {n: i for i, n in enumerate(names)}, dict(enumerate(names))
    tokenizer = AutoTokenizer.from_pretrained(config.model)
    if not tokenizer.is_fast:
        raise InputFormatError(f"{config.model} has no fast tokenizer (tokenizer.json); lmtailor needs offsets.")
    auto = AutoModelForTokenClassification if config.task == "ner" else AutoModelForSequenceClassification
    torch.manual_seed(config.seed)
    model, _ = load_pretrained(auto, config.model, num_labels=len(names), id2label=id2label, label2id=label2id,
                               ignore_mismatched_sizes=True)  # fmt: skip
    set_dropout(model, config.dropout, config.attention_dropout)
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and config.max_length > limit:
        raise ConfigError(f"max_length {config.max_length} exceeds {config.model}'s {limit} positions; lower it.")
    train_enc = _encode(config, tokenizer, train, label2id)
    dev_enc = _encode(config, tokenizer, dev, label2id).sorted_by_length() if dev else None
    ckpt, args, callbacks = trainer_setup(config, precision, dev is not None)
    loss_fn = None
    if config.class_weights:
        weights = _class_weights(train_enc, len(names))

        def loss_fn(outputs, labels, num_items_in_batch=None):
            logits = outputs.logits
            return torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                weight=weights.to(logits.device), ignore_index=IGNORE, label_smoothing=config.label_smoothing,
            )  # fmt: skip

    collator = (DataCollatorForTokenClassification if config.task == "ner" else DataCollatorWithPadding)(tokenizer)
    trainer = _Trainer(
        model=model, args=args, data_collator=collator, train_dataset=train_enc.features,
        eval_dataset=dev_enc.features if dev_enc else None, processing_class=tokenizer,
        compute_metrics=_metric_fn(config, dev, dev_enc, id2label) if dev else None,
        preprocess_logits_for_metrics=_argmax if config.task == "ner" else None,
        compute_loss_func=loss_fn, callbacks=callbacks,
    )  # fmt: skip
    resume = config.resume and any(ckpt.glob("checkpoint-*"))
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - t0
    # Every process has loaded the best checkpoint before the main one writes the output and removes checkpoints.
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return Path(config.out_dir)
    return _write_output(config, trainer, tokenizer, (train, dev, test), result, train_seconds, ckpt, precision)


def _write_output(
    config, trainer, tokenizer, splits, result, train_seconds, ckpt, precision, stage: str = "finetune",
    inputs: tuple = (),
) -> Path:  # fmt: skip
    train, dev, test = splits
    model = trainer.model.eval()
    spec = TaskSpec(task=config.task, max_length=config.max_length, long_text=config.long_text, stride=config.stride,
                    units=_units_of(train) if config.task == "ner" else "words")  # fmt: skip
    with stage_output(f"{stage}-{config.task}", config) as out:
        for name, path in (
            *inputs,
            ("model", config.model),
            ("train", config.train),
            ("dev", config.dev),
            ("test", config.test),
        ):
            if path is not None and Path(path).exists():
                out.add_input(name, Path(path))
        model.save_pretrained(str(out.dir))
        tokenizer.save_pretrained(str(out.dir))
        spec.save(out.dir)
        history = trainer.state.log_history
        (out.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
        metrics = {
            "train_seconds": round(train_seconds, 1),
            "train_examples": len(train.examples),
            "steps": trainer.state.global_step,
            "epochs_run": round(trainer.state.epoch or 0, 2),
            "best_checkpoint": Path(trainer.state.best_model_checkpoint).name
            if trainer.state.best_model_checkpoint
            else None,
            "precision": precision,
            "train_loss": round(result.training_loss, 4),
        }
        for name, data in (("dev", dev), ("test", test)):
            if data is not None:
                report = evaluate_split(model, tokenizer, spec, data, out.dir, name, config.eval_batch_size)
                metrics[name] = {k: v for k, v in report.items() if not isinstance(v, dict | list)}
        write_json(out.dir / "finetune_report.json", metrics)
        out.metrics.update(metrics)
    if not config.keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    log.info("%s %s done in %.0fs: %s", stage, config.task, train_seconds, json.dumps(metrics)[:400])
    return Path(config.out_dir)


def _units_of(data) -> str:
    """chars when every unit is one character (Chinese character files, span JSON), else words."""
    return "chars" if all(e - s == 1 for ex in data.examples[:200] for s, e in ex.units) else "words"
