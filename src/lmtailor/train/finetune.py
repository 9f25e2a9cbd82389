"""`lmtailor finetune cls|ner`: fine-tune any HF encoder for sequence or token classification.

The loop mechanics are HF `Trainer`'s (mixed precision, gradient accumulation, warmup + decay, weight decay,
checkpoints, resume, DDP under `torchrun`); lmtailor adds what a domain user needs around it: task readers with
validation, tokenizer-independent NER alignment (`tasks.align`), long-text policies, class-weighted loss, early
stopping on a dev metric computed on the task's own units, and a final evaluation with the same code as
`lmtailor evaluate`. What distillation shares with it (data, Trainer, checkpoints, the output folder) is
`train.task_training`; the label list and the class-weighted loss are fine-tuning's own.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
)

from lmtailor.errors import ConfigError, InputFormatError
from lmtailor.models.dropout import set_dropout
from lmtailor.models.loading import load_pretrained
from lmtailor.tasks.align import IGNORE
from lmtailor.train.config import FinetuneConfig
from lmtailor.train.head_first import fit_head, keep_head_fit
from lmtailor.train.progress import quiet_trainer
from lmtailor.train.task_training import (
    TaskTrainer,
    argmax_ids,
    checkpoint_dir,
    encode_split,
    metric_fn,
    preflight,
    read_splits,
    trainer_setup,
    write_task_output,
)

# FinetuneConfig (train.config) and the shared pieces distillation used to import from here stay importable.
__all__ = ["FinetuneConfig", "checkpoint_dir", "preflight", "read_splits", "run_finetune", "trainer_setup"]


def _label_names(config: FinetuneConfig, train) -> list[str]:
    if config.task == "cls":
        return list(train.labels)
    return ["O"] + [f"{p}-{t}" for t in train.labels for p in ("B", "I")]


def _class_weights(encoded, n_labels: int) -> torch.Tensor:
    """sklearn's "balanced" weights n / (C * count_c) over the training labels (token labels for NER)."""
    labels = [lab for f in encoded.features for lab in np.atleast_1d(f["labels"]) if lab != IGNORE]
    counts = np.bincount(labels, minlength=n_labels).astype(np.float64)
    weights = len(labels) / (n_labels * np.maximum(counts, 1))
    return torch.tensor(weights, dtype=torch.float32)


def run_finetune(config: FinetuneConfig, callbacks: Sequence = ()) -> Path:
    """Fine-tune (or, with `search_trials`, search on dev and keep the best run); `callbacks` join the Trainer's."""
    if config.search_trials:
        from lmtailor.train.search import run_search

        return run_search(config, run_finetune)
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
    train_enc = encode_split(config, tokenizer, train, label2id)
    dev_enc = encode_split(config, tokenizer, dev, label2id).sorted_by_length() if dev else None
    ckpt, args, own_callbacks = trainer_setup(config, precision, dev is not None)
    callbacks = [*own_callbacks, *callbacks]
    loss_fn, weights = None, _class_weights(train_enc, len(names)) if config.class_weights else None
    if weights is not None:

        def loss_fn(outputs, labels, num_items_in_batch=None):
            logits = outputs.logits
            return torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1),
                weight=weights.to(logits.device), ignore_index=IGNORE, label_smoothing=config.label_smoothing,
            )  # fmt: skip

    compute_metrics = metric_fn(config, dev, dev_enc, id2label) if dev else None
    resume = config.resume and any(ckpt.glob("checkpoint-*"))
    head, head_state = None, None
    if config.head_epochs and not resume:  # a resumed run's checkpoint holds the fitted head already
        head = fit_head(model, config, train_enc, dev_enc, compute_metrics, precision, weights)
        if dev_enc is not None:  # a candidate like each checkpoint (see keep_head_fit)
            head_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
    collator = (DataCollatorForTokenClassification if config.task == "ner" else DataCollatorWithPadding)(tokenizer)
    trainer = TaskTrainer(
        model=model, args=args, data_collator=collator, train_dataset=train_enc.features,
        eval_dataset=dev_enc.features if dev_enc else None, processing_class=tokenizer,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=argmax_ids if config.task == "ner" else None,
        compute_loss_func=loss_fn, callbacks=callbacks,
    )  # fmt: skip
    quiet_trainer(trainer, "fine-tuning")
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    if head_state is not None:
        keep_head_fit(trainer, head, head_state)
    train_seconds = time.perf_counter() - t0
    # Every process has loaded the best checkpoint before the main one writes the output and removes checkpoints.
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return Path(config.out_dir)
    return write_task_output(config, trainer, tokenizer, (train, dev, test), result, train_seconds, ckpt, precision,
                             extra={"head_first": head} if head else None)  # fmt: skip
