"""Configuration of the training stages (`pretrain`, `finetune`, `distill`), apart from the code that runs them so
that reading it imports no torch or transformers."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, model_validator

from lmtailor.config import StageConfig, cli_flags, mapping_from_text, positional
from lmtailor.tasks.config import TaskFileFields
from lmtailor.tasks.target import METRIC_HELP, check_metric


class PretrainConfig(StageConfig):
    """MLM pretraining of an lmtailor preset (from scratch), of an existing HF model (continued), or of a preset
    initialised from a larger model (both: weight subcloning, `lmtailor.models.subclone`)."""

    stage: ClassVar[str] = "pretrain"

    corpus: list[Path] = Field(
        description="Corpus stage output folders, or raw text files/folders.", json_schema_extra=positional()
    )
    split: str = Field("train", description="Corpus split to train on (corpus folders only).")
    preset: Literal["tiny", "mini", "small", "litebert"] | None = Field(
        None,
        description="Build a model of this preset: from scratch (needs --tokenizer), or with --model a subclone "
        "of that model of this size (its layers, heads, FFN neurons and hidden dims most active on the corpus).",
    )
    model: str | None = Field(
        None,
        description="Continue pretraining this HF model folder or hub id; with --preset, subclone it.",
        json_schema_extra=cli_flags("--model", "-m"),
    )
    calibration_blocks: int = Field(64, ge=1, description="Subcloning: corpus blocks that rank the weights.")
    tokenizer: Path | None = Field(
        None, description="Tokenizer folder (default: the model's own). From scratch: the domain tokenizer."
    )
    terms: list[Path] = Field(
        default_factory=list,
        description="Glossaries whose terms are masked whole (default: the tokenizer's protected_terms.txt).",
    )
    masking: Literal["whole_term", "token"] = Field(
        "whole_term", description="whole_term: terms, words and (Chinese) jieba words as units; token: single tokens."
    )
    mlm_probability: float = Field(0.15, gt=0, lt=1, description="Share of tokens to predict.")
    seq_len: int = Field(128, ge=8, description="Tokens per packed block, [CLS] and [SEP] included.")
    steps: int = Field(1000, ge=1, description="Optimiser steps (the stream repeats the corpus as needed).")
    max_minutes: float | None = Field(None, gt=0, description="Stop (and save) after this much training time.")
    batch_size: int = Field(32, ge=1, description="Blocks per device per micro-step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation (global batch = batch x accum x devices).")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate.")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay.")
    warmup: float = Field(0.06, ge=0, lt=1, description="Share of the steps with linear warmup.")
    scheduler: Literal["linear", "cosine", "constant_with_warmup"] = Field("linear", description="LR decay.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 (or fp16) on CUDA, bf16 on CPUs with AMX/AVX512-BF16, else fp32."
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in backward to save memory.")
    dropout: float | None = Field(None, ge=0, lt=1, description="Override the model's dropout (0 for exact tests).")
    attention_dropout: float | None = Field(
        None, ge=0, lt=1, description="Override the attention-probability dropout alone (after `dropout`); 0 lets "
        "a CPU use fused attention, 2x faster at 512 tokens."
    )  # fmt: skip
    shuffle_buffer: int = Field(1000, ge=1, description="Blocks held for shuffling the stream.")
    data_workers: int | None = Field(
        None, ge=0, le=64,
        description="Processes that tokenise and mask the stream beside training (None: 0 on CPU, where they would "
        "take cores from training; on CUDA, CPUs per GPU process minus one, at most 8).",
    )  # fmt: skip
    save_every: int = Field(500, ge=1, description="Write a resumable checkpoint every N steps.")
    logging_steps: int = Field(20, ge=1, description="Log loss, lr, tokens/s and memory every N steps.")
    eval_split: str | None = Field("dev", description="Corpus split for the final held-out MLM loss (None: skip).")
    eval_blocks: int = Field(200, ge=1, description="Blocks of the eval split to score.")
    profile: int = Field(0, ge=0, description="Profile N steps with torch.profiler; table in profile.txt.")
    resume: bool = Field(False, description="Continue from the newest checkpoint of an interrupted run.")
    keep_checkpoints: bool = Field(False, description="Keep the checkpoint folder after success.")


# What a search can vary, and how: a float range on a log scale, a float or integer range, or a list of choices.
SEARCHABLE = {"lr": "log", "label_smoothing": "float", "epochs": "int", "class_weights": "choice",
              "max_length": "choice"}  # fmt: skip


def _number(value):
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


class FinetuneConfig(TaskFileFields, StageConfig):
    """Fine-tune an HF encoder on a labelled classification or NER task."""

    stage: ClassVar[str] = "finetune"

    task: Literal["cls", "ner"] = Field(
        description="cls: one label per text; ner: entity tags per word/character.", json_schema_extra=positional(1)
    )
    model: str = Field(
        description="HF model folder or hub id to start from (e.g. MiniLM, or an lmtailor model).",
        json_schema_extra=cli_flags("--model", "-m"),
    )
    train: Path = Field(
        description="Training file (cls: jsonl/csv; ner: token-tag columns or span JSON).",
        json_schema_extra=positional(2),
    )
    dev: Path | None = Field(None, description="Dev file: early stopping and best-checkpoint selection.")
    test: Path | None = Field(None, description="Test file, evaluated once at the end with the best checkpoint.")
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
    head_epochs: int = Field(
        0, ge=0, le=1000, description="First fit the new head alone on the frozen encoder's states for N epochs "
        "(the best by dev kept), then fine-tune every weight: LP-FT, for a general encoder on a small task "
        "(CAIL2018 with e5: test 0.840 → 0.884, docs/benchmarks.md). 0: off."
    )  # fmt: skip
    head_lr: float = Field(1e-3, gt=0, description="Learning rate of the head-first epochs (--head-epochs).")
    head_patience: int = Field(
        10, ge=0, description="Stop the head fit after N epochs without a better dev score (0: all head_epochs). "
        "CAIL2018 with e5: the best head is epoch 31 of 100 either way, and the fit stops at 41."
    )  # fmt: skip
    metric: str | None = Field(None, description=METRIC_HELP)
    patience: int = Field(2, ge=0, description="Evaluations without dev improvement before stopping (0: never).")
    eval_every: int | None = Field(None, ge=1, description="Evaluate every N steps (default: every epoch).")
    logging_steps: int = Field(20, ge=1, description="Log loss and learning rate every N steps.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size for evaluation and prediction.")
    max_train_examples: int | None = Field(None, ge=1, description="Use only the first N training examples.")
    resume: bool = Field(False, description="Continue from the last checkpoint of an interrupted run.")
    keep_checkpoints: bool = Field(False, description="Keep the checkpoint folder after success.")
    search_trials: int = Field(
        0, ge=0, le=500, description="Tune on dev: train up to N settings from the search space and keep the best "
        "by the metric (Optuna TPE, bad trials pruned after each dev evaluation; 0: no search)."
    )  # fmt: skip
    search_minutes: float | None = Field(None, gt=0, description="Start no new trial after this many minutes.")
    search_space: dict[str, list] = Field(
        default_factory=dict,
        description="What the search varies, as JSON or YAML: lr and label_smoothing [low, high] (lr on a log "
        "scale), epochs [low, high] (integers), class_weights and max_length [choices]. Default: lr from a third to "
        "three times --lr; cls also class_weights [false, true] and label_smoothing [0, 0.1].",
    )

    @model_validator(mode="before")
    @classmethod
    def _space_from_text(cls, values):
        """`--search-space '{"lr": [1e-5, 1e-3]}'` (or YAML) on the command line: a string parsed into the dict."""
        values = mapping_from_text(values, "search_space")
        space = values.get("search_space") if isinstance(values, dict) else None
        if isinstance(space, dict):  # YAML 1.1 reads 1e-5 (no dot) as a string: numbers are numbers here
            values = {**values, "search_space": {k: [_number(v) for v in vs] if isinstance(vs, list) else vs
                                                 for k, vs in space.items()}}  # fmt: skip
        return values

    @model_validator(mode="after")
    def _known_metric(self) -> FinetuneConfig:
        check_metric(self.metric, self.task)
        for name, values in self.search_space.items():
            if name not in SEARCHABLE:
                raise ValueError(f"search_space: {name!r} cannot be searched; choose from {', '.join(SEARCHABLE)}")
            kind = SEARCHABLE[name]
            if kind == "choice" and not values:
                raise ValueError(f"search_space.{name}: give at least one choice")
            if kind != "choice" and (len(values) != 2 or not all(isinstance(v, int | float) for v in values)
                                     or values[0] > values[1] or (kind == "log" and values[0] <= 0)):  # fmt: skip
                raise ValueError(f"search_space.{name}: give [low, high] with low <= high" +
                                 (", both > 0" if kind == "log" else ""))  # fmt: skip
        if self.search_space and not self.search_trials:
            raise ValueError("search_space is set but search_trials is 0; give search_trials (e.g. 8)")
        return self


class DistillConfig(FinetuneConfig):
    """Train `model` (the student) to match `teacher` on a task: fine-tuning's fields plus the distillation ones."""

    stage: ClassVar[str] = "distill"

    model: str = Field(
        description="Student model folder (pruned, trimmed, pretrained: any HF model) or hub id.",
        json_schema_extra=cli_flags("--student", "-m"),
    )
    teacher: Path = Field(description="Fine-tuned teacher folder (output of `lmtailor finetune`).")
    alpha: float = Field(0.5, ge=0, le=1, description="Weight of the gold-label loss; 1 - alpha goes to the teacher.")
    temperature: float = Field(2.0, gt=0, description="Softmax temperature of the logit distillation.")
    unlabelled: list[Path] = Field(
        default_factory=list, description="cls: extra transfer text without labels (files, or corpus folders whose "
        "train split is used); the student learns the teacher's predictions on it."
    )  # fmt: skip
    max_unlabelled: int | None = Field(None, ge=1, description="Use a random sample of this many unlabelled texts.")
    min_unlabelled_chars: int = Field(40, ge=1, description="Skip unlabelled texts shorter than this (headings).")
    feature_weight: float = Field(
        0.0, ge=0, description="cls: weight of matching the teacher's final [CLS] state, the representation its "
        "classifier reads (any tokenizer; a PyTorch teacher)."
    )  # fmt: skip
    hidden_weight: float = Field(0.0, ge=0, description="Weight of hidden-state matching (same tokenizer only).")
    attention_weight: float = Field(0.0, ge=0, description="Weight of attention matching (same tokenizer and heads).")
    teacher_batch_size: int = Field(64, ge=1, description="Batch size of the teacher's one pass over the data.")
    baseline: Path | None = Field(
        None, description="cls: a `lmtailor baseline` output folder; the student learns the teacher fused with it, "
        "w · log p(teacher) + (1 − w) · log softmax(t · baseline margins), w and t chosen on dev (a pair that beats "
        "either alone on CAIL2018, docs/benchmarks.md)."
    )  # fmt: skip

    @model_validator(mode="after")
    def _checks(self) -> DistillConfig:
        if self.baseline is not None and self.task != "cls":
            raise ValueError("baseline: only a classification baseline can be fused with the teacher (task cls)")
        if self.baseline is not None and self.dev is None:
            raise ValueError("baseline: the fusion weight is chosen on dev; give --dev")
        if self.head_epochs:
            raise ValueError(
                "head_epochs: distillation trains the student on the teacher's outputs from its first step; fit a "
                "head first with `lmtailor finetune --head-epochs` (the student then starts from that folder)"
            )
        return self
