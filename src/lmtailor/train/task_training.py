"""What fine-tuning and distillation share: reading and encoding the task splits, the Trainer, its settings and
logs, the dev metric, and writing the task model folder with its final evaluation.

The loop mechanics are HF `Trainer`'s (mixed precision, gradient accumulation, warmup + decay, weight decay,
checkpoints, resume, DDP under `torchrun`). `finetune` trains on gold labels, `distill` on a teacher's outputs too;
everything around the loop is here, so both stages read data, stop early, select checkpoints and evaluate alike.

Checkpoints live in a stable sibling folder (`.<out>.checkpoints`) rather than in the atomically written output, so
`--resume` finds them after an interruption; they are removed once the output folder is complete.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments

from lmtailor.errors import ConfigError
from lmtailor.models.folder import check_model_folder
from lmtailor.models.task_folder import TaskSpec
from lmtailor.outputs import check_out_dir, stage_output, write_json
from lmtailor.tasks import check_splits
from lmtailor.tasks.align import decode_cls, decode_ner, encode_cls, encode_ner
from lmtailor.tasks.evaluate import evaluate_split
from lmtailor.tasks.metrics import classification_metrics, ner_metrics
from lmtailor.tasks.target import label_counts, parse_metric, skew_advice
from lmtailor.train.config import FinetuneConfig
from lmtailor.train.precision import resolve_precision

log = logging.getLogger(__name__)


def checkpoint_dir(config: FinetuneConfig) -> Path:
    """`.<out>.checkpoints` beside the output folder."""
    out = Path(config.out_dir)
    return out.with_name(f".{out.name}.checkpoints")


def prepare_checkpoints(ckpt: Path, args: TrainingArguments, resume: bool, then=None) -> None:
    """Empty `ckpt` (unless resuming) and create it, then call `then()`, in the main process alone while the
    others wait at a barrier: under torchrun every rank runs the stage, and a rank emptying the folder while the
    main one writes in it loses that file."""
    with args.main_process_first(local=False, desc="checkpoint folder"):
        if args.process_index == 0:
            if ckpt.exists() and not resume:
                shutil.rmtree(ckpt)
            ckpt.mkdir(parents=True, exist_ok=True)
            if then is not None:
                then()


def _read(config: FinetuneConfig, path: Path):
    return config.read_task(config.task, path)


def encode_split(config: FinetuneConfig, tokenizer, data, label2id):
    """A split's examples as model features with label ids (windows as the config's long-text policy says)."""
    if config.task == "cls":
        labels = [label2id[ex.label] for ex in data.examples]
        texts = [ex.text for ex in data.examples]
        return encode_cls(tokenizer, texts, labels, config.max_length, config.long_text, config.stride)
    return encode_ner(tokenizer, data.examples, label2id, config.max_length, config.stride)


def metric_fn(config: FinetuneConfig, dev, encoded, id2label):
    """compute_metrics for the Trainer: dev predictions decoded to the task's own units, then scored."""

    target = parse_metric(config.metric, config.task)

    def compute(pred) -> dict:
        out = pred.predictions  # cls: [N, C] logits; ner: [N, T] argmax ids (see argmax_ids), padded with -100
        if config.task == "cls":
            probs = decode_cls(encoded, np.asarray(out, dtype=np.float64), len(dev.examples))
            y_pred = [id2label[int(i)] for i in probs.argmax(1)]
            m = classification_metrics([ex.label for ex in dev.examples], y_pred, list(id2label.values()))
        else:
            tags = decode_ner(dev.examples, encoded, out, id2label)
            m = ner_metrics([list(ex.tags) for ex in dev.examples], tags)
        scores = {k: v for k, v in m.items() if isinstance(v, float)}
        if target.kind == "f1":  # one label's F1: 0 while the model never predicts the label nor dev has it
            scores[target.log_key] = target.value(m) or 0.0
        return scores

    return compute


def argmax_ids(logits, labels):  # keep only argmax ids for NER: [N, T, C] logits would fill memory on long dev sets
    return logits.argmax(-1)


class JsonlLog(TrainerCallback):
    """Every Trainer log record appended to metrics.jsonl as it happens, so a run can be followed (`tail -f`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps({"step": state.global_step, "epoch": state.epoch, **logs}) + "\n")


class TaskTrainer(Trainer):
    """HF Trainer whose evaluation keeps the dev set's order: `train_sampling_strategy="group_by_length"` would also
    reorder evaluation batches, and the dev metric maps predictions back to examples by position."""

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is not None and self.args.world_size <= 1:
            return torch.utils.data.SequentialSampler(eval_dataset)
        return None  # distributed: accelerate's even split, gathered back in order


def training_args(config: FinetuneConfig, ckpt: Path, precision: str, has_dev: bool, metric: str) -> TrainingArguments:
    """The Trainer's arguments: evaluation and checkpoints each epoch (or every `eval_every` steps) given a dev set."""
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
    check_out_dir(config)  # the output claim's checks, before the training they would otherwise follow
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
    target = parse_metric(config.metric, config.task)
    target.check_labels(train.labels, str(config.train))
    weighted = config.class_weights or "class_weights" in config.search_space  # a search that tries them counts
    if config.task == "cls" and (advice := skew_advice(label_counts(train.examples, "cls"), target, weighted)):
        log.warning("%s: %s", config.train, advice)
    return train, dev, test


def trainer_setup(config: FinetuneConfig, precision: str, has_dev: bool) -> tuple[Path, TrainingArguments, list]:
    """The checkpoint folder (emptied unless resuming), the Trainer's arguments and its callbacks."""
    metric = parse_metric(config.metric, config.task).log_key
    ckpt = checkpoint_dir(config)
    args = training_args(config, ckpt, precision, has_dev, f"eval_{metric}")
    prepare_checkpoints(ckpt, args, config.resume)
    callbacks: list = [JsonlLog(ckpt / "metrics.jsonl")]
    if has_dev and config.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    return ckpt, args, callbacks


def write_task_output(
    config, trainer, tokenizer, splits, result, train_seconds, ckpt, precision, stage: str = "finetune",
    inputs: tuple = (), extra: dict | None = None,
) -> Path:  # fmt: skip
    train, dev, test = splits
    model = trainer.model.eval()
    spec = TaskSpec(task=config.task, max_length=config.max_length, long_text=config.long_text, stride=config.stride,
                    units=_units_of(train) if config.task == "ner" else "words",
                    metric=parse_metric(config.metric, config.task).name)  # fmt: skip
    with stage_output(config) as out:
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
            **(extra or {}),
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
