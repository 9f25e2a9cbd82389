"""`finetune --head-epochs N`: fit the task head on the frozen encoder before fine-tuning every weight, the "LP"
of LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features").

`finetune` starts from an encoder with a new random head. On a small task a general encoder then spends epochs
(and, at the rate that moves the head, its own pretrained features) learning what a linear probe of its frozen
states reads at once: on CAIL2018 the trimmed multilingual-e5 fine-tuned for 2 CPU-hours ended where a logistic
regression on its untouched features starts (docs/benchmarks.md, issue 22). Here the encoder runs once, in eval
mode, over the training (and dev) features; the states the head reads are kept (the first token for
classification, every labelled token for NER), and only the head's own weights are trained on them, many cheap
epochs, the one with the best dev metric kept. Fine-tuning then starts from a head that already fits, and the
head-fitted model stays a candidate: if no fine-tuning evaluation beats its dev score, it is what is saved.

The head is the model's own: BERT's pooler + classifier, RoBERTa's classification head, a token classifier; the
saved folder is the same `*For{Sequence,Token}Classification` as without this step.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import time
from types import SimpleNamespace

import numpy as np
import torch

from lmtailor.errors import ConfigError
from lmtailor.tasks.align import IGNORE
from lmtailor.tasks.inference import padded_batches
from lmtailor.tasks.target import parse_metric

log = logging.getLogger(__name__)


def head_of(model, task: str):
    """(the head's modules, logits from the cached states [n, H]) for the model's architecture."""
    classifier, dropout = getattr(model, "classifier", None), getattr(model, "dropout", None)
    if task == "ner" and isinstance(classifier, torch.nn.Linear):
        drop = dropout if dropout is not None else torch.nn.Identity()
        return [classifier], lambda states: classifier(drop(states))
    pooler = getattr(model.base_model, "pooler", None)
    if task == "cls" and pooler is not None and isinstance(classifier, torch.nn.Linear) and dropout is not None:
        # BERT: the pooler reads position 0 of a sequence; the cached state is given as a sequence of one
        return [pooler, classifier], lambda states: classifier(dropout(pooler(states[:, None])))
    if task == "cls" and hasattr(classifier, "out_proj"):  # RoBERTa / XLM-R: dense + tanh + out_proj on position 0
        return [classifier], lambda states: classifier(states[:, None])
    raise ConfigError(
        f"--head-epochs: lmtailor fits BERT- and RoBERTa-style classification heads and token classifiers; "
        f"{type(model).__name__} has another head. Leave --head-epochs at 0 for this model."
    )


def _device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    return torch.device("cpu")


def frozen_states(model, features: list[dict], task: str, precision: str, batch_size: int):
    """(states [n, H] float32, labels [n], where [(feature, position)]) of the encoder in eval mode: the first
    token of each feature (cls), or every token with a label (ner)."""
    device = _device()
    encoder = model.base_model
    was_training = model.training
    model.to(device).eval()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext()
    states, labels, where = [], [], []
    with torch.no_grad(), autocast:
        for idx, batch in padded_batches(features, batch_size):
            hidden = encoder(**{k: v.to(device) for k, v in batch.items()}).last_hidden_state.float()
            for r, i in enumerate(idx):
                if task == "cls":
                    states.append(hidden[r, 0])
                    labels.append(int(features[i]["labels"]))
                    where.append((i, 0))
                    continue
                for p, lab in enumerate(features[i]["labels"]):
                    if lab != IGNORE:
                        states.append(hidden[r, p])
                        labels.append(int(lab))
                        where.append((i, p))
    model.train(was_training)
    return torch.stack(states), torch.tensor(labels, device=device), where


def _predictions(task: str, logits: torch.Tensor, where, features: list[dict]) -> np.ndarray:
    """What `metric_fn` reads: cls [N, C] logits in feature order; ner [N, T] label ids (0, "O", where unlabelled)."""
    if task == "cls":
        out = np.zeros((len(features), logits.shape[1]), dtype=np.float32)
        out[[i for i, _ in where]] = logits.float().cpu().numpy()
        return out
    out = np.zeros((len(features), max(len(f["input_ids"]) for f in features)), dtype=np.int64)
    ids = logits.argmax(1).cpu().numpy()
    for (i, p), label in zip(where, ids, strict=True):
        out[i, p] = label
    return out


def fit_head(model, config, train_enc, dev_enc, dev_metric, precision: str, class_weights=None) -> dict:
    """Train only the model's head on its frozen encoder's states for `config.head_epochs` epochs, or until
    `config.head_patience` epochs pass without a better dev score; the head of the epoch with the best `dev_metric`
    (the Trainer's compute_metrics; the last epoch without dev) is kept. Returns what the finetune report records."""
    t0 = time.perf_counter()
    modules, logits_of = head_of(model, config.task)
    train_x, train_y, _ = frozen_states(model, train_enc.features, config.task, precision, config.eval_batch_size)
    dev = None
    if dev_enc is not None and dev_metric is not None:
        dev = frozen_states(model, dev_enc.features, config.task, precision, config.eval_batch_size)
    embed_seconds = time.perf_counter() - t0
    params = [p for m in modules for p in m.parameters()]
    optimizer = torch.optim.AdamW(params, lr=config.head_lr, weight_decay=config.weight_decay)
    # one step per `batch_size` features, as fine-tuning counts them (NER: their labelled tokens)
    batch = max(1, round(len(train_y) / max(1, len(train_enc.features)) * config.batch_size))
    weight = class_weights.to(train_x.device) if class_weights is not None else None
    key = parse_metric(config.metric, config.task).log_key
    generator = torch.Generator().manual_seed(config.seed)
    best, best_state, curve = None, None, []
    for epoch in range(config.head_epochs):
        for m in modules:
            m.train()
        for rows in torch.randperm(len(train_y), generator=generator).split(batch):
            rows = rows.to(train_x.device)
            loss = torch.nn.functional.cross_entropy(
                logits_of(train_x[rows]), train_y[rows], weight=weight, label_smoothing=config.label_smoothing
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if dev is None:
            continue
        for m in modules:
            m.eval()
        with torch.no_grad():
            logits = logits_of(dev[0])
        value = float(dev_metric(SimpleNamespace(predictions=_predictions(config.task, logits, dev[2],
                                                                          dev_enc.features)))[key])  # fmt: skip
        curve.append(round(value, 4))
        if best is None or value > best[1]:
            best, best_state = (epoch + 1, value), [copy.deepcopy(m.state_dict()) for m in modules]
        elif config.head_patience and epoch + 1 - best[0] >= config.head_patience:
            break  # the best head is kept; more epochs of a noisy curve only make its maximum more optimistic
    if best_state is not None:
        for m, state in zip(modules, best_state, strict=True):
            m.load_state_dict(state)
    report = {
        "epochs": config.head_epochs,
        "epochs_run": len(curve) if dev is not None else config.head_epochs,
        "patience": config.head_patience,
        "lr": config.head_lr,
        "states": len(train_y),
        "embed_seconds": round(embed_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if best is not None:
        report.update(best_epoch=best[0], **{f"dev_{key}": round(best[1], 4)}, dev_curve=curve)
    log.info("head fitted on the frozen encoder in %.0fs: %s", report["seconds"],
             {k: v for k, v in report.items() if k != "dev_curve"})  # fmt: skip
    return report


def keep_head_fit(trainer, report: dict, state: dict) -> None:
    """The head-fitted model (`state`, taken before fine-tuning) is a candidate like each checkpoint: if no
    fine-tuning evaluation passed its dev score, its weights replace the best checkpoint's, and `report["kept"]`
    says so. (Medical abstracts with MiniLM: the head alone read 0.669 on dev, the fine-tune at most 0.651.)"""
    key = next(k for k in report if k.startswith("dev_") and k != "dev_curve")
    best = trainer.state.best_metric
    report["kept"] = bool(best is None or report[key] > best)
    if report["kept"]:
        trainer.model.load_state_dict(state)
        log.info("no fine-tuning evaluation passed the head fit's %s %.4f (best %s): the head-fitted model is kept",
                 key, report[key], "none" if best is None else f"{best:.4f}")  # fmt: skip
