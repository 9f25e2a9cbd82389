"""`lmtailor pretrain`: masked-language-model pretraining of a small BERT on domain text, from scratch or continued.

The loop mechanics are HF `Trainer`'s (AMP, accumulation, gradient checkpointing, warmup + decay, checkpoints with
optimiser/scheduler/RNG state, DDP under `torchrun`, TensorBoard logs); lmtailor adds the parts a domain needs:
- the data stream of `mlm_data` (whole-term masking, packing, streaming, deterministic per-block masks);
- a sparse MLM head: only the masked ~15% of positions go through the decoder (vocabulary × hidden), which on a
  small model is a third of all FLOPs when every position is decoded (HF's default) — the saved model is a plain
  `BertForMaskedLM`;
- checks that fail before training: tokenizer vs embedding table, sequence length vs position table, an empty or
  too small corpus, a resume from checkpoints of another configuration;
- tokens/s and memory in the logs, a wall-clock budget (`max_minutes`), and `profile` (a torch.profiler table).

Checkpoints live in `.<out>.checkpoints` beside the output (as in `finetune`); `resume` continues from the newest
one exactly: the data stream is a pure function of (corpus, seed, position), so skipping the consumed batches puts
it where it was, and the Trainer restores model, optimiser, scheduler and RNG states.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import psutil
import torch
import torch.nn.functional as F
from transformers import (
    AutoTokenizer,
    BertForMaskedLM,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)
from transformers.modeling_outputs import MaskedLMOutput

from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError, InputNotFoundError
from lmtailor.hardware import usable_cpus
from lmtailor.models.dropout import set_dropout
from lmtailor.models.loading import load_mlm
from lmtailor.models.presets import PRESETS, build_mlm
from lmtailor.models.subclone import subclone
from lmtailor.outputs import check_out_dir, stage_output, write_json
from lmtailor.shards.read import ShardCollator, ShardCorpus, ShardExamples, ShardIndexStream, is_shard_folder
from lmtailor.train.config import PretrainConfig
from lmtailor.train.mlm_data import IGNORE, PackedMLMStream, masking_spec, unit_splitter
from lmtailor.train.precision import resolve_precision
from lmtailor.train.progress import quiet_trainer
from lmtailor.train.task_training import JsonlLog, prepare_checkpoints  # the same checkpoint folder and log as finetune

log = logging.getLogger(__name__)


# --- the model: BERT whose MLM head decodes only the masked positions ------------------------------------------


class SparseBertForMaskedLM(BertForMaskedLM):
    """`BertForMaskedLM` whose training loss decodes only labelled positions; same parameters, same saved format.

    With `num_items_in_batch` (passed by the Trainer) the loss is the sum over this micro-batch divided by the
    labelled tokens of the whole global batch, so accumulation and DDP give exactly the global mean.
    """

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, labels=None, **kwargs):
        num_items = kwargs.pop("num_items_in_batch", None)
        if labels is None:
            return super().forward(input_ids=input_ids, attention_mask=attention_mask,
                                   token_type_ids=token_type_ids, **kwargs)  # fmt: skip
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]
        keep = labels != IGNORE  # [B, S]
        logits = self.cls(hidden[keep])  # [M, V]: M masked positions only
        loss = F.cross_entropy(logits.float(), labels[keep], reduction="sum")
        denom = num_items if num_items is not None else keep.sum().clamp(min=1)
        return MaskedLMOutput(loss=loss / denom, logits=None)


def _calibration(config: PretrainConfig, tokenizer, tok_dir: Path | None, size: int = 16) -> list[dict]:
    """The first `calibration_blocks` blocks of the training stream, unmasked, in batches (for subcloning)."""
    stream = make_stream(config, tokenizer, config.split, 1, tok_dir)
    stream.shuffle_buffer = 1
    ids, masks = [], []
    for ex in stream:
        ids.append(torch.where(ex["labels"] != IGNORE, ex["labels"], ex["input_ids"]))  # the original tokens
        masks.append(ex["attention_mask"])
        if len(ids) == config.calibration_blocks:
            break
    return [{"input_ids": torch.stack(ids[i : i + size]), "attention_mask": torch.stack(masks[i : i + size])}
            for i in range(0, len(ids), size)]  # fmt: skip


def _load_model(config: PretrainConfig, tokenizer, tok_dir: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """The model to train, and what its metrics should say about where it came from (a subclone, a new MLM head)."""
    torch.manual_seed(config.seed)
    origin: dict = {}
    if config.preset and config.model:
        source, new_head = load_mlm(config.model)
        check_compatible(config, tokenizer, source)
        model, report = subclone(source, PRESETS[config.preset], _calibration(config, tokenizer, tok_dir))
        origin["subclone"] = {"source": config.model, **asdict(report)}
        del source
    elif config.preset:
        model = build_mlm(config.preset, tokenizer)
    else:
        model, new_head = load_mlm(config.model)
    if config.model:
        origin["new_mlm_head_tensors"] = len(new_head)
    set_dropout(model, config.dropout, config.attention_dropout)
    if type(model) is BertForMaskedLM:
        model.__class__ = SparseBertForMaskedLM  # adds no state; swapped back before saving
    return model, origin


def check_compatible(config: PretrainConfig, tokenizer, model) -> None:
    """The tokenizer fits the embedding table and the sequence fits the position table, or a clear error."""
    name = config.model or f"preset {config.preset}"
    n_emb = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > n_emb:
        raise ConfigError(
            f"tokenizer {config.tokenizer or config.model} has {len(tokenizer)} tokens but {name} embeds only {n_emb}: "
            "ids past the table would crash or train garbage. Use the model's own tokenizer, or run "
            "`lmtailor vocab transfer`/`extend` to give the model this tokenizer's vocabulary."
        )
    limit = getattr(model.config, "max_position_embeddings", None)
    if limit and config.seq_len > limit:
        raise ConfigError(
            f"seq_len {config.seq_len} exceeds {name}'s {limit} positions; use --seq-len {limit} or less."
        )
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise InputFormatError(f"tokenizer {config.tokenizer or config.model} lacks [MASK], [CLS] or [SEP].")


# --- configuration checks -----------------------------------------------------------------------------------


def preflight(config: PretrainConfig) -> str:
    precision = resolve_precision(config.precision)
    if config.preset is None and config.model is None:
        raise ConfigError(
            "give --preset (train from scratch), --model (continue pretraining), or both (a preset-sized subclone of "
            "the model)."
        )
    if config.preset and not config.model and config.tokenizer is None:
        raise ConfigError(f"--preset {config.preset} needs --tokenizer: the domain tokenizer sets the vocabulary.")
    if config.preset and config.seq_len > PRESETS[config.preset].max_positions:
        raise ConfigError(
            f"seq_len {config.seq_len} exceeds the preset's {PRESETS[config.preset].max_positions} positions."
        )
    check_out_dir(config)  # the output claim's checks, before the training they would otherwise follow
    return precision


def fingerprint(config: PretrainConfig) -> dict:
    """What must not change between a run and its resume (everything that shapes the model, data or schedule)."""
    keep = {"corpus", "split", "preset", "model", "tokenizer", "terms", "masking", "mlm_probability", "seq_len",
            "steps", "batch_size", "grad_accum", "lr", "weight_decay", "warmup", "scheduler", "dropout",
            "attention_dropout", "shuffle_buffer", "seed"}  # fmt: skip
    # Defaults left out, as in the build's stage keys: a setting added later, at its default, changes no fingerprint.
    values = config.model_dump(mode="json", include=keep, exclude_defaults=True)
    if config.preset and config.model:  # the blocks that choose a subclone's weights
        values["calibration_blocks"] = config.calibration_blocks
    if (workers := data_workers(config)) > 1:  # more than one worker reorders the stream (0 and 1 do not)
        values["data_workers"] = workers
    digest = hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:16]
    return {"fingerprint": digest, "config": values}


def data_workers(config: PretrainConfig) -> int:
    """DataLoader workers for the stream: as set, else 0 on CPU and, on CUDA, the CPUs per GPU process minus one
    (at most 8): one process tokenising and masking in Python feeds ~0.1 M tokens/s, far below what a GPU trains."""
    if config.data_workers is not None:
        return config.data_workers
    if not torch.cuda.is_available():
        return 0
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(0, min(8, usable_cpus() // max(1, local) - 1))


def _checkpoints(config: PretrainConfig) -> Path:
    """`.<out>.checkpoints`; resuming, refused when the run there had other settings."""
    out = Path(config.out_dir)
    ckpt = out.with_name(f".{out.name}.checkpoints")
    run_file = ckpt / "run.json"
    fp = fingerprint(config)
    if config.resume and run_file.is_file():
        saved = json.loads(run_file.read_text(encoding="utf-8"))
        if saved.get("fingerprint") != fp["fingerprint"]:
            before = saved.get("config", {})
            changed = sorted(k for k in {*before, *fp["config"]} if before.get(k) != fp["config"].get(k))
            raise ConfigError(
                f"cannot resume from {ckpt}: its run had other settings ({', '.join(changed)}). Resume with the "
                "same settings, or drop --resume to start over (which deletes those checkpoints)."
            )
    return ckpt


def _write_run_file(config: PretrainConfig, ckpt: Path) -> None:
    """The run's settings (`run.json`), which `--resume` checks; written once, by the run that started."""
    if not (ckpt / "run.json").is_file():
        write_json(ckpt / "run.json", fingerprint(config))


def latest_complete_checkpoint(ckpt: Path) -> Path | None:
    """The newest checkpoint the Trainer finished writing (its RNG state is written last); a checkpoint cut short
    by a kill is removed, so the run resumes from the one before it."""
    found = sorted(ckpt.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]) if p.name[11:].isdigit() else -1)
    for path in reversed(found):
        if (path / "trainer_state.json").is_file() and any(path.glob("rng_state*.pth")):
            return path
        log.warning("removing incomplete checkpoint %s (the run was interrupted while writing it)", path)
        shutil.rmtree(path, ignore_errors=True)
    return None


# --- data ------------------------------------------------------------------------------------------------------


def shard_folder(config: PretrainConfig) -> Path | None:
    """The token-shard folder (`lmtailor tokenize`) the corpus names, if it names one."""
    found = [Path(p) for p in config.corpus if is_shard_folder(p)]
    if not found:
        return None
    if len(config.corpus) != 1:
        raise ConfigError(f"corpus {', '.join(map(str, config.corpus))}: give one token-shard folder alone, not mixed "
                          "with other corpora (tokenize them together into one folder).")  # fmt: skip
    if config.terms:
        raise ConfigError(f"--terms with the token shards {found[0]}: the masking units were fixed when the shards "
                          "were written; pass the terms to `lmtailor tokenize` instead.")  # fmt: skip
    return found[0]


def make_stream(config: PretrainConfig, tokenizer, split: str, passes: int | None, tok_dir: Path | None):
    """The masked examples of `split` in corpus order: from token shards (one pass), or tokenised on the fly."""
    spec = masking_spec(tokenizer, config.mlm_probability, config.masking)
    if (folder := shard_folder(config)) is not None:
        corpus = ShardCorpus(folder, split, tokenizer, config.seq_len, config.masking)
        return ShardExamples(ShardCollator(corpus, spec, config.seed))
    splitter = unit_splitter(tokenizer, config.terms, config.masking, tok_dir)
    return PackedMLMStream(config.corpus, tokenizer, config.seq_len, splitter, spec, split=split, seed=config.seed,
                           shuffle_buffer=config.shuffle_buffer, passes=passes)  # fmt: skip


def _first_block(stream: PackedMLMStream, config: PretrainConfig) -> None:
    """Fail now, not after model setup, when the corpus is missing, empty or shorter than one block."""
    try:
        next(iter(stream.blocks()))
    except StopIteration:
        raise EmptyInputError(
            f"corpus {', '.join(map(str, config.corpus))} holds fewer than {config.seq_len} tokens "
            f"(split {config.split!r}): not one training block. Add text or lower --seq-len."
        ) from None


# --- Trainer pieces --------------------------------------------------------------------------------------------


class _PretrainTrainer(Trainer):
    """Adds tokens/s and memory to every log record (before TensorBoard and the JSONL log see it)."""

    tokens_per_step = 0
    _last: tuple[float, int] | None = None

    def log(self, logs: dict, start_time: float | None = None) -> None:
        now, step = time.perf_counter(), self.state.global_step
        if "loss" in logs:
            if self._last and step > self._last[1]:
                logs["tokens_per_second"] = round(
                    (step - self._last[1]) * self.tokens_per_step / (now - self._last[0]), 1
                )
            logs["memory_mb"] = round(_memory_mb(), 1)
            self._last = (now, step)
        super().log(logs, start_time)


def _memory_mb() -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return psutil.Process().memory_info().rss / 2**20


class _Budget(TrainerCallback):
    """Stops after `max_minutes` of training, saving a checkpoint so the run can also be resumed later."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if time.perf_counter() - self.t0 > self.seconds:
            log.info("time budget reached at step %d", state.global_step)
            control.should_training_stop = True
            control.should_save = True


class _Profile(TrainerCallback):
    """torch.profiler over `steps` optimiser steps after two warm-up steps; the table goes to `path`."""

    def __init__(self, steps: int, path: Path) -> None:
        self.steps, self.path, self.prof = steps, path, None

    def on_step_begin(self, args, state, control, **kwargs):
        if self.prof is None and state.global_step == 2:
            acts = [torch.profiler.ProfilerActivity.CPU]
            if torch.cuda.is_available():
                acts.append(torch.profiler.ProfilerActivity.CUDA)
            self.prof = torch.profiler.profile(activities=acts)
            self.prof.__enter__()
            self.start = state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        if self.prof is not None and state.global_step >= self.start + self.steps:
            self.prof.__exit__(None, None, None)
            key = "self_cuda_time_total" if torch.cuda.is_available() else "self_cpu_time_total"
            self.path.write_text(self.prof.key_averages().table(sort_by=key, row_limit=40), encoding="utf-8")
            self.prof, self.start = None, math.inf


def _training_data(config: PretrainConfig, tokenizer, tok_dir: Path | None):
    """(dataset, collator): block numbers and a collator that reads and masks them (token shards), or the stream
    that tokenises and masks as it goes."""
    if shard_folder(config) is None:
        stream = make_stream(config, tokenizer, config.split, None, tok_dir)
        _first_block(stream, config)
        return stream, default_data_collator
    examples = make_stream(config, tokenizer, config.split, 1, tok_dir)
    corpus = examples.collator.corpus
    if corpus.n_blocks == 0:
        raise EmptyInputError(f"token shards {corpus.folder} ({config.split}) hold fewer than {config.seq_len} "
                              "tokens per shard: not one training block. Add text or lower --seq-len.")  # fmt: skip
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return ShardIndexStream(corpus.n_blocks, config.seed, config.batch_size * world), examples.collator


def _training_args(config: PretrainConfig, ckpt: Path, precision: str, shards: bool = False) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(ckpt),
        max_steps=config.steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup,
        lr_scheduler_type=config.scheduler,
        save_strategy="steps",
        save_steps=config.save_every,
        save_total_limit=2,
        logging_steps=config.logging_steps,
        report_to=["tensorboard"],
        seed=config.seed,
        data_seed=config.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        activation_checkpointing=config.gradient_checkpointing,
        use_cpu=not torch.cuda.is_available(),
        disable_tqdm=not config.show_progress,
        dataloader_num_workers=data_workers(config),  # each worker tokenises its share of the corpus (mlm_data)
        remove_unused_columns=False,
        prediction_loss_only=True,
        save_only_model=False,
        # Token shards: every rank reads and masks its own slice of each global batch (shards.read); the default
        # for a stream is rank 0 reading every batch and sending each rank its part.
        accelerator_config={"dispatch_batches": False} if shards else None,
    )


# --- the stage -------------------------------------------------------------------------------------------------


def run_pretrain(config: PretrainConfig) -> Path:
    t0 = time.perf_counter()
    precision = preflight(config)
    tok_dir = Path(config.tokenizer) if config.tokenizer else (Path(config.model) if config.model else None)
    tokenizer = AutoTokenizer.from_pretrained(str(config.tokenizer or config.model))
    if not tokenizer.is_fast:
        raise InputFormatError(f"{tok_dir} has no fast tokenizer (tokenizer.json); whole-term masking needs offsets.")
    local_tok = tok_dir if tok_dir and tok_dir.is_dir() else None
    train_data, collator = _training_data(config, tokenizer, local_tok)
    model, origin = _load_model(config, tokenizer, local_tok)
    check_compatible(config, tokenizer, model)
    ckpt = _checkpoints(config)
    args = _training_args(config, ckpt, precision, shards=collator is not default_data_collator)
    prepare_checkpoints(ckpt, args, config.resume, lambda: _write_run_file(config, ckpt))
    if args.dataloader_num_workers:  # the workers tokenise one chunk each at a time; no Rust threads needed
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    callbacks: list = [JsonlLog(ckpt / "metrics.jsonl")]
    if config.max_minutes:
        callbacks.append(_Budget(config.max_minutes))
    if config.profile:
        callbacks.append(_Profile(config.profile, ckpt / "profile.txt"))
    trainer = _PretrainTrainer(model=model, args=args, train_dataset=train_data, data_collator=collator,
                               processing_class=tokenizer, callbacks=callbacks)  # fmt: skip
    quiet_trainer(trainer, "pretraining")
    trainer.tokens_per_step = config.batch_size * config.grad_accum * args.world_size * config.seq_len
    start = latest_complete_checkpoint(ckpt) if config.resume else None
    result = trainer.train(resume_from_checkpoint=str(start) if start else None)
    seconds = time.perf_counter() - t0
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return Path(config.out_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    # Mixed precision leaves an autocast wrapper around the forward bound at prepare time (the sparse one) as an
    # instance attribute; drop it so that the held-out loss after the swap runs BertForMaskedLM.forward.
    model.__dict__.pop("forward", None)
    model.__dict__.pop("_original_forward", None)
    if type(model) is SparseBertForMaskedLM:
        model.__class__ = BertForMaskedLM
    return _write_output(config, model, tokenizer, trainer, result, seconds, ckpt, precision, tok_dir,
                         origin)  # fmt: skip


def mlm_eval_loss(model, stream: PackedMLMStream | ShardExamples, max_blocks: int, batch_size: int = 32) -> dict | None:
    """Mean MLM loss over the masked tokens of the first `max_blocks` blocks of a one-pass stream."""
    model.eval()
    total, count, blocks = 0.0, 0, 0
    device = next(model.parameters()).device
    batch: list[dict] = []
    with torch.no_grad():
        for ex in stream:
            batch.append(ex)
            blocks += 1
            if len(batch) == batch_size or blocks == max_blocks:
                b = {k: torch.stack([e[k] for e in batch]).to(device) for k in batch[0]}
                logits = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits
                keep = b["labels"] != IGNORE
                total += F.cross_entropy(logits[keep].float(), b["labels"][keep], reduction="sum").item()
                count += int(keep.sum())
                batch = []
            if blocks >= max_blocks:
                break
    if count == 0:
        return None
    return {"loss": round(total / count, 4), "perplexity": round(math.exp(total / count), 2), "blocks": blocks,
            "tokens": count}  # fmt: skip


def _eval(config: PretrainConfig, model, tokenizer, tok_dir) -> dict | None:
    if not config.eval_split:
        return None
    stream = make_stream(config, tokenizer, config.eval_split, 1, tok_dir if tok_dir and tok_dir.is_dir() else None)
    stream.shuffle_buffer = 1
    try:
        return mlm_eval_loss(model, stream, config.eval_blocks)
    except (EmptyInputError, ConfigError, InputFormatError, InputNotFoundError) as exc:
        log.info("no held-out MLM loss: %s", exc)
        return None


def _write_output(config, model, tokenizer, trainer, result, seconds, ckpt, precision, tok_dir, origin: dict) -> Path:
    history = trainer.state.log_history
    speeds = [r["tokens_per_second"] for r in history if "tokens_per_second" in r]
    metrics = {
        "steps": trainer.state.global_step,
        "train_seconds": round(seconds, 1),
        "train_loss": round(result.training_loss, 4),
        "final_loss": next((r["loss"] for r in reversed(history) if "loss" in r), None),
        "tokens_seen": trainer.state.global_step * trainer.tokens_per_step,
        "tokens_per_second": round(sum(speeds) / len(speeds), 1) if speeds else None,
        "precision": precision,
        "parameters": sum(p.numel() for p in model.parameters()),
        "world_size": trainer.args.world_size,
        "data_workers": trainer.args.dataloader_num_workers,
    }
    metrics.update(origin)  # subclone report, new MLM head
    held_out = _eval(config, model, tokenizer, tok_dir)
    if held_out:
        metrics[f"eval_{config.eval_split}"] = held_out
    with stage_output(config) as out:
        for i, path in enumerate(config.corpus):
            out.add_input(f"corpus[{i}]", Path(path))
        if tok_dir and tok_dir.is_dir():
            out.add_input("tokenizer", tok_dir)
        model.save_pretrained(str(out.dir))
        tokenizer.save_pretrained(str(out.dir))
        (out.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")
        if (ckpt / "runs").is_dir():
            shutil.copytree(ckpt / "runs", out.dir / "runs")
        if (ckpt / "profile.txt").is_file():
            shutil.copy2(ckpt / "profile.txt", out.dir / "profile.txt")
        if tok_dir and (tok_dir / "protected_terms.txt").is_file():
            shutil.copy2(tok_dir / "protected_terms.txt", out.dir / "protected_terms.txt")
        write_json(out.dir / "pretrain_report.json", metrics)
        out.metrics.update(metrics)
    if not config.keep_checkpoints:
        shutil.rmtree(ckpt, ignore_errors=True)
    log.info("pretrain done in %.0fs: %s", seconds, json.dumps(metrics)[:400])
    return Path(config.out_dir)
