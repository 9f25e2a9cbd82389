"""`lmtailor distill cls|ner`: task distillation from a fine-tuned teacher into a smaller student.

loss = α · CE(student, gold label) + (1 − α) · T² · KL(softmax(teacher / T) ‖ softmax(student / T))
       [+ φ · MSE(proj(student [CLS] state), teacher [CLS] state)]
       [+ β · MSE(proj(student hidden), teacher hidden) + γ · KL(teacher attention ‖ student attention)]

(Hinton et al. 2015; the hidden and attention terms follow TinyBERT, with a learned projection when widths differ.
The [CLS] term is FitNets' hint at the layer a classifier reads, as in Yang et al. 2021's representation
distillation: one vector per text, so it needs no token alignment and works across tokenizers.)

- The teacher's logits are computed **once**, before training, on the transfer set (the labelled train split plus
  optional unlabelled domain text, e.g. the corpus stage's output), so the teacher is not rerun every epoch.
- Student and teacher may have different tokenizers: each reads the text with its own. Classification targets are
  per example (the teacher's logits averaged over its windows); NER targets are per unit (word or character), taken
  from the teacher's most central window, and given to the student token that begins the unit — the same
  tokenizer-independent alignment as fine-tuning and evaluation use.
- The [CLS] term (cls only, `feature_weight`) matches the teacher's final-layer state at its first token (averaged
  over its windows, cached with the logits) through a learned linear projection to the teacher's width.
- The projections are training-only: not saved with the student, but kept in every checkpoint (`resume` continues
  with them), and under torchrun their gradients are averaged across processes like the model's.
- Hidden-state and attention matching need the teacher's activations on the student's own tokens, so they require
  the same tokenizer and run the teacher live (no cache); they are off by default.
- Everything else (AMP, accumulation, early stopping on dev, best checkpoint, resume, torchrun) is what `finetune`
  does too (`train.task_training`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    DataCollatorWithPadding,
    TrainerCallback,
)
from transformers.trainer_utils import get_last_checkpoint

from lmtailor.corpus.source import iter_texts
from lmtailor.errors import ConfigError, EmptyInputError, InputFormatError
from lmtailor.models.dropout import set_dropout
from lmtailor.models.loading import load_pretrained
from lmtailor.models.task_folder import fused_refusal, is_fused, load_task_model
from lmtailor.tasks.align import IGNORE, Encoded, encode_cls, encode_ner
from lmtailor.tasks.inference import forward
from lmtailor.train.config import DistillConfig
from lmtailor.train.progress import quiet_trainer
from lmtailor.train.task_training import (
    TaskTrainer,
    argmax_ids,
    encode_split,
    metric_fn,
    preflight,
    read_splits,
    trainer_setup,
    write_task_output,
)

log = logging.getLogger(__name__)


def layer_map(student_layers: int, teacher_layers: int) -> list[int]:
    """Teacher layer (1-based hidden-state index) matched by each student layer 1..Ls: uniform, last to last."""
    return [round(i * teacher_layers / student_layers) for i in range(1, student_layers + 1)]


def _student(config: DistillConfig, names: list[str]):
    """The student model with the teacher's label set; a student that is already a task model must agree with it."""
    cfg = AutoConfig.from_pretrained(str(config.model))
    arch = (cfg.architectures or [""])[0]
    if arch.endswith(("ForSequenceClassification", "ForTokenClassification")):
        theirs = [cfg.id2label[i] for i in range(cfg.num_labels)]
        if sorted(theirs) != sorted(names) and not all(n.startswith("LABEL_") for n in theirs):
            raise ConfigError(
                f"the student {config.model} predicts labels {theirs[:6]}, the teacher {config.teacher} {names[:6]}; "
                "distil into a student made from the teacher (prune, vocab trim) or a plain pretrained encoder."
            )
    auto = AutoModelForTokenClassification if config.task == "ner" else AutoModelForSequenceClassification
    id2label = dict(enumerate(names))
    return load_pretrained(auto, str(config.model), num_labels=len(names), id2label=id2label,
                           label2id={n: i for i, n in id2label.items()}, ignore_mismatched_sizes=True)[0]  # fmt: skip


def _cls_targets(teacher, ttok, tspec, texts: list[str], batch: int, with_states: bool = False):
    """[n, C] teacher logits per text, averaged over the teacher's windows; with `with_states`, also [n, H] final
    [CLS] states, averaged the same way."""
    enc = encode_cls(ttok, texts, None, tspec.max_length, tspec.long_text, tspec.stride)
    states: list | None = [] if with_states else None
    logits, timing = forward(teacher, enc.features, batch, states=states)
    windows = np.bincount(enc.example_of, minlength=len(texts))[:, None]
    per_text = []
    for rows in (logits, states) if with_states else (logits,):
        stacked = np.stack(rows)
        out = np.zeros((len(texts), stacked.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(enc.example_of), stacked)
        per_text.append((out / windows).astype(np.float32))
    log.info("teacher pass: %s", timing)
    return tuple(per_text) if with_states else per_text[0]


def _ner_targets(teacher, ttok, tspec, examples, batch: int) -> list[np.ndarray]:
    """Per example, [units, C] teacher logits: for each unit, those of the token that begins it in the window where
    it sits most centrally (as decoding does)."""
    enc = encode_ner(ttok, examples, None, tspec.max_length, tspec.stride)
    logits, timing = forward(teacher, enc.features, batch)
    n_labels = teacher.config.num_labels
    out = [np.zeros((len(ex.units), n_labels), dtype=np.float32) for ex in examples]
    depth = [np.full(len(ex.units), -1) for ex in examples]
    for i, ex_id in enumerate(enc.example_of):
        for p, unit in enumerate(enc.units_of[i]):
            if unit >= 0 and enc.depth_of[i][p] > depth[ex_id][unit]:
                depth[ex_id][unit], out[ex_id][unit] = enc.depth_of[i][p], logits[i][p]
    log.info("teacher pass: %s", timing)
    return out


def attach_targets(enc: Encoded, task: str, targets, states: np.ndarray | None = None) -> None:
    """Give every student feature its teacher logits: cls [C] per feature, NER [T, C] (zeros where no unit begins);
    and, for cls with `states`, the teacher's [CLS] state [H]."""
    for i, f in enumerate(enc.features):
        ex = enc.example_of[i]
        if task == "cls":
            f["teacher_logits"] = targets[ex]
            if states is not None:
                f["teacher_state"] = states[ex]
        else:
            rows = np.zeros((len(f["input_ids"]), targets[ex].shape[1]), dtype=np.float32)
            for p, unit in enumerate(enc.units_of[i]):
                if unit >= 0:
                    rows[p] = targets[ex][unit]
            f["teacher_logits"] = rows


class TeacherCollator:
    """The task's collator plus padded teacher logits ([B, C] or [B, T, C]) and, if cached, [CLS] states [B, H]."""

    def __init__(self, base) -> None:
        self.base = base

    def __call__(self, features: list[dict]) -> dict:
        teacher = [f.pop("teacher_logits", None) for f in features]
        state = [f.pop("teacher_state", None) for f in features]
        batch = self.base(features)
        for f, t, h in zip(features, teacher, state, strict=True):  # the dataset's dicts are reused next epoch
            if t is not None:
                f["teacher_logits"] = t
            if h is not None:
                f["teacher_state"] = h
        if any(t is None for t in teacher):
            return batch
        if all(h is not None for h in state):
            batch["teacher_state"] = torch.from_numpy(np.stack(state))
        if teacher[0].ndim == 1:
            batch["teacher_logits"] = torch.tensor(np.stack(teacher))
        else:
            width = batch["input_ids"].shape[1]
            padded = np.zeros((len(teacher), width, teacher[0].shape[1]), dtype=np.float32)
            for r, t in enumerate(teacher):
                padded[r, : len(t)] = t
            batch["teacher_logits"] = torch.from_numpy(padded)
        return batch


def kd_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float, mask: torch.Tensor | None = None):
    """T² · KL(softmax(teacher/T) ‖ softmax(student/T)), averaged over the rows of [N, C] logits (or masked rows)."""
    if mask is not None:
        student, teacher = student[mask], teacher[mask]
    if student.shape[0] == 0:
        return student.sum() * 0.0
    t = temperature
    kl = F.kl_div(F.log_softmax(student / t, -1), F.log_softmax(teacher / t, -1), reduction="none", log_target=True)
    return kl.sum(-1).mean() * t * t


PROJECTIONS_FILE = "distill_projections.pt"


class _SaveProjections(TrainerCallback):
    """Write the training-only projections into each checkpoint the Trainer saves, so a resume continues them."""

    def __init__(self, extras: torch.nn.ModuleDict) -> None:
        self.extras = extras

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            torch.save(
                self.extras.state_dict(), Path(args.output_dir) / f"checkpoint-{state.global_step}" / PROJECTIONS_FILE
            )


def load_projections(extras: torch.nn.ModuleDict, ckpt: Path) -> bool:
    """Load the projections saved in the last checkpoint under `ckpt`, if it has them (resume)."""
    last = get_last_checkpoint(str(ckpt)) if ckpt.is_dir() else None
    if last is None or not (Path(last) / PROJECTIONS_FILE).is_file():
        return False
    extras.load_state_dict(torch.load(Path(last) / PROJECTIONS_FILE, map_location="cpu", weights_only=True))
    return True


class DistillTrainer(TaskTrainer):
    """The fine-tuning Trainer with the distillation loss (and, optionally, hidden/attention matching)."""

    def __init__(self, *args, distill: DistillConfig, teacher=None, projections=None, feature_projection=None,
                 **kwargs) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.distill = distill
        self.teacher = teacher  # live teacher, only for hidden/attention matching
        self.projections = projections
        self.feature_projection = feature_projection  # student [CLS] width -> teacher's, for feature_weight
        self.model_accepts_loss_kwargs = False  # our loss is a mean: let the Trainer divide by accumulation steps

    def create_optimizer(self, *args, **kwargs):
        optimizer = super().create_optimizer(*args, **kwargs)
        for extra in (self.projections, self.feature_projection):
            params = list(extra.parameters()) if extra is not None else []
            if params and not any(p is params[0] for g in optimizer.param_groups for p in g["params"]):
                optimizer.add_param_group({"params": params, "weight_decay": 0.0})
        return optimizer

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.args.world_size > 1:  # the projections live outside the DDP-wrapped model: average their gradients too
            for extra in (self.projections, self.feature_projection):
                for p in extra.parameters() if extra is not None else ():
                    if p.grad is None:
                        p.grad = torch.zeros_like(p)
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.args.world_size
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        target, labels = inputs.pop("teacher_logits", None), inputs.pop("labels")
        state = inputs.pop("teacher_state", None)
        cfg = self.distill
        live = target is not None and model.training and self.teacher is not None
        hint = state is not None and model.training and cfg.feature_weight > 0
        outputs = model(**inputs, output_hidden_states=hint or (live and cfg.hidden_weight > 0),
                        output_attentions=live and cfg.attention_weight > 0)  # fmt: skip
        logits = outputs.logits.float()
        flat, gold = logits.reshape(-1, logits.shape[-1]), labels.reshape(-1)
        valid = gold != IGNORE
        hard = F.cross_entropy(flat[valid], gold[valid]) if valid.any() else flat.sum() * 0.0
        if target is None:  # dev evaluation
            return (hard, outputs) if return_outputs else hard
        mask = valid if cfg.task == "ner" else None
        soft = kd_loss(flat, target.reshape(-1, target.shape[-1]).float(), cfg.temperature, mask)
        loss = cfg.alpha * hard + (1 - cfg.alpha) * soft
        if hint:
            mine = self.feature_projection(outputs.hidden_states[-1][:, 0])
            loss = loss + cfg.feature_weight * F.mse_loss(mine.float(), state.float())
        if live:
            loss = loss + self._match(outputs, inputs)
        return (loss, outputs) if return_outputs else loss

    def _match(self, outputs, inputs) -> torch.Tensor:
        cfg = self.distill
        with torch.no_grad():
            t_out = self.teacher(**inputs, output_hidden_states=cfg.hidden_weight > 0,
                                 output_attentions=cfg.attention_weight > 0)  # fmt: skip
        keep = inputs["attention_mask"].bool()  # [B, T]
        extra = outputs.logits.new_zeros(())
        if cfg.hidden_weight > 0:
            s_h, t_h = outputs.hidden_states, t_out.hidden_states  # [L+1] x [B, T, H]
            pairs = [(0, 0), *zip(range(1, len(s_h)), layer_map(len(s_h) - 1, len(t_h) - 1), strict=True)]
            for k, (i, j) in enumerate(pairs):
                s = self.projections[k](s_h[i]) if self.projections is not None else s_h[i]
                extra = extra + cfg.hidden_weight * F.mse_loss(s[keep].float(), t_h[j][keep].float()) / len(pairs)
        if cfg.attention_weight > 0:
            s_a, t_a = outputs.attentions, t_out.attentions  # [L] x [B, heads, T, T]
            for i, j in enumerate(layer_map(len(s_a), len(t_a))):
                p_t, p_s = t_a[j - 1].float(), s_a[i].float().clamp_min(1e-9)
                kl = (p_t * (p_t.clamp_min(1e-9).log() - p_s.log())).sum(-1)  # [B, heads, T]
                extra = extra + cfg.attention_weight * kl.permute(0, 2, 1)[keep].mean() / len(s_a)
        return extra


def _unlabelled_texts(config: DistillConfig) -> list[str]:
    """The unlabelled transfer texts: long enough to carry a clause, and a seeded uniform sample of them when there
    are more than `max_unlabelled` (the first N of a corpus would all come from its first few documents)."""
    if not config.unlabelled:
        return []
    if config.task != "cls":
        raise ConfigError("unlabelled transfer text is supported for cls; NER distils on the labelled sentences.")
    texts = [t for t in iter_texts(config.unlabelled) if len(t.strip()) >= config.min_unlabelled_chars]
    if not texts:
        raise EmptyInputError(
            f"no unlabelled text of at least {config.min_unlabelled_chars} characters in "
            f"{', '.join(map(str, config.unlabelled))}; lower min_unlabelled_chars or pass other files."
        )
    if config.max_unlabelled and len(texts) > config.max_unlabelled:
        keep = np.random.default_rng(config.seed).choice(len(texts), config.max_unlabelled, replace=False)
        texts = [texts[i] for i in sorted(keep)]
    return texts


def _live_teacher(config: DistillConfig, teacher, ttok, stok, student):
    """The teacher (and projections) for hidden/attention matching, after checking that it can be matched."""
    if not (config.hidden_weight or config.attention_weight):
        return None, None
    if ttok.get_vocab() != stok.get_vocab():
        raise ConfigError(
            "hidden_weight/attention_weight need the student to share the teacher's tokenizer; use logit "
            "distillation only (set both to 0) for a student with another vocabulary."
        )
    if not isinstance(teacher, torch.nn.Module):
        raise InputFormatError(f"{config.teacher} is not a PyTorch model; hidden matching needs its activations.")
    if config.attention_weight:
        if teacher.config.num_attention_heads != student.config.num_attention_heads:
            raise ConfigError("attention matching needs the same number of heads in student and teacher.")
        for m in (teacher, student):
            m.config._attn_implementation = "eager"  # sdpa returns no attention probabilities
    projections = None
    if config.hidden_weight and student.config.hidden_size != teacher.config.hidden_size:
        layers = student.config.num_hidden_layers + 1
        projections = torch.nn.ModuleList(
            torch.nn.Linear(student.config.hidden_size, teacher.config.hidden_size) for _ in range(layers)
        )
    return teacher, projections


def _feature_projection(config: DistillConfig, teacher, student):
    """The learned map from the student's [CLS] state to the teacher's, after checking the teacher can give one."""
    if not config.feature_weight:
        return None
    if config.task != "cls":
        raise ConfigError("feature_weight matches [CLS] states, which is for cls; for NER use hidden_weight.")
    if not isinstance(teacher, torch.nn.Module):
        raise InputFormatError(
            f"{config.teacher} is not a PyTorch model; feature_weight needs its hidden states (use its PyTorch folder)."
        )
    s, t = student.config.hidden_size, teacher.config.hidden_size
    return torch.nn.Linear(s, t) if s != t else torch.nn.Identity()


def _teacher_labels(config: DistillConfig, teacher, task: str, train) -> list[str]:
    """The teacher's label names, after checking that it does this task and knows every training label."""
    if task != config.task:
        raise ConfigError(f"the teacher {config.teacher} is a {task} model; this is a {config.task} distillation.")
    names = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if config.task == "cls":
        seen = {ex.label for ex in train.examples}
    else:
        seen = {t for ex in train.examples for t in ex.tags}
    unknown = sorted(seen - set(names))
    if unknown:
        raise InputFormatError(
            f"{config.train} has labels the teacher {config.teacher} does not predict: {unknown[:5]}; distil with "
            "the data the teacher was fine-tuned on, or fine-tune a teacher with these labels."
        )
    return names


def _fused_with_baseline(config: DistillConfig, teacher_parts, texts, logits, splits, names) -> tuple[np.ndarray, dict]:
    """The teacher's logits on `texts` (the training texts, then unlabelled ones) fused with the baseline's margins
    (`lmtailor.baseline.fusion`), the weight and temperature chosen on dev; and the record of that choice. The
    training texts get out-of-fold margins: the baseline was fitted on them."""
    from lmtailor.baseline.fusion import baseline_margins, choose_fusion, fuse, load_baseline, out_of_fold_margins

    train, dev = splits
    pipeline = load_baseline(config.baseline)
    dev_texts = [ex.text for ex in dev.examples]
    dev_logits = _cls_targets(*teacher_parts, dev_texts, config.teacher_batch_size)
    dev_margins = baseline_margins(pipeline, dev_texts, names, str(config.baseline))
    chosen = choose_fusion(dev_logits, dev_margins, [ex.label for ex in dev.examples], names, config.metric)
    log.info("teacher fused with the baseline %s: %s", config.baseline, chosen)
    n = len(train.examples)
    own, chosen["train_folds"] = out_of_fold_margins(pipeline, texts[:n], [ex.label for ex in train.examples], names,
                                                     seed=config.seed, source=str(config.baseline))  # fmt: skip
    gold = np.array([names.index(ex.label) for ex in train.examples])
    chosen["train_baseline_out_of_fold"] = round(float((own.argmax(1) == gold).mean()), 4)
    margins = own
    if len(texts) > n:  # unlabelled texts: the baseline never saw them
        margins = np.concatenate([own, baseline_margins(pipeline, texts[n:], names, str(config.baseline))])
    fused = fuse(logits, margins, chosen["weight"], chosen["temperature"]).astype(np.float32)
    return fused, chosen


def _transfer_set(config: DistillConfig, stok, teacher_parts, splits, label2id) -> tuple[Encoded, dict | None]:
    """Student features of the train split (+ unlabelled text for cls), each with its cached teacher logits (and
    [CLS] state, for feature_weight); and, with `baseline`, the record of the teacher's fusion with it."""
    teacher, ttok, tspec = teacher_parts
    train, dev = splits
    enc = encode_split(config, stok, train, label2id)
    if config.task == "ner":
        attach_targets(enc, "ner", _ner_targets(teacher, ttok, tspec, train.examples, config.teacher_batch_size))
        return enc, None
    extra = _unlabelled_texts(config)
    if extra:  # unlabelled texts: features without a gold label, examples numbered after the labelled ones
        more = encode_cls(stok, extra, None, config.max_length, config.long_text, config.stride)
        for f, ex in zip(more.features, more.example_of, strict=True):
            enc.features.append({**f, "labels": IGNORE})
            enc.example_of.append(ex + len(train.examples))
    texts = [ex.text for ex in train.examples] + extra
    if config.feature_weight:
        logits, states = _cls_targets(teacher, ttok, tspec, texts, config.teacher_batch_size, with_states=True)
    else:
        logits, states = _cls_targets(teacher, ttok, tspec, texts, config.teacher_batch_size), None
    fusion = None
    if config.baseline is not None:
        logits, fusion = _fused_with_baseline(config, teacher_parts, texts, logits, (train, dev), list(label2id))
    attach_targets(enc, "cls", logits, states)
    log.info("transfer set: %d labelled + %d unlabelled texts", len(train.examples), len(extra))
    return enc, fusion


def _log_projection_spread(extras: torch.nn.ModuleDict, world_size: int) -> None:
    """Under torchrun, log how far apart the processes' projections ended (0: their gradients were averaged)."""
    params = [p.detach().flatten() for p in extras.parameters()]
    if world_size <= 1 or not params:
        return
    mine = torch.cat(params)
    everyone = [torch.zeros_like(mine) for _ in range(world_size)]
    torch.distributed.all_gather(everyone, mine)
    spread = max((other - mine).abs().max().item() for other in everyone)
    log.info("distillation projections across %d processes: largest difference %.3g", world_size, spread)


def run_distill(config: DistillConfig, callbacks: Sequence = ()) -> Path:
    """Distil (or, with `search_trials`, search on dev and keep the best run); `callbacks` join the Trainer's."""
    if config.search_trials:
        from lmtailor.train.search import run_search

        return run_search(config, run_distill)
    t0 = time.perf_counter()
    precision = preflight(config)
    if is_fused(config.teacher):
        raise ConfigError(fused_refusal(config.teacher, distill=True))
    train, dev, test = read_splits(config)
    teacher, ttok, tspec = load_task_model(config.teacher)
    if torch.cuda.is_available() and isinstance(teacher, torch.nn.Module):  # the one teacher pass, on this rank's GPU
        teacher.to(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    names = _teacher_labels(config, teacher, tspec.task, train)
    label2id = {n: i for i, n in enumerate(names)}
    if config.baseline is not None:  # before the teacher's pass: a baseline of other labels fails now
        from lmtailor.baseline.fusion import label_order, load_baseline

        label_order(load_baseline(config.baseline), names, str(config.baseline))
    stok = AutoTokenizer.from_pretrained(str(config.model))
    if not stok.is_fast:
        raise InputFormatError(f"{config.model} has no fast tokenizer (tokenizer.json); lmtailor needs offsets.")
    torch.manual_seed(config.seed)
    student = _student(config, names)
    set_dropout(student, config.dropout, config.attention_dropout)
    feature_projection = _feature_projection(config, teacher, student)
    train_enc, fusion = _transfer_set(config, stok, (teacher, ttok, tspec), (train, dev), label2id)
    live, projections = _live_teacher(config, teacher, ttok, stok, student)
    dev_enc = encode_split(config, stok, dev, label2id).sorted_by_length() if dev else None
    ckpt, args, own_callbacks = trainer_setup(config, precision, dev is not None)
    callbacks = [*own_callbacks, *callbacks]
    extras = torch.nn.ModuleDict(
        {k: v for k, v in (("hidden", projections), ("feature", feature_projection)) if v is not None}
    )
    if any(True for _ in extras.parameters()):
        callbacks.append(_SaveProjections(extras))
    args.remove_unused_columns = False  # the Trainer would drop teacher_logits: the model's forward does not take it
    base = (DataCollatorForTokenClassification if config.task == "ner" else DataCollatorWithPadding)(stok)
    id2label = dict(enumerate(names))
    trainer = DistillTrainer(
        model=student, args=args, data_collator=TeacherCollator(base), train_dataset=train_enc.features,
        eval_dataset=dev_enc.features if dev_enc else None, processing_class=stok,
        compute_metrics=metric_fn(config, dev, dev_enc, id2label) if dev else None,
        preprocess_logits_for_metrics=argmax_ids if config.task == "ner" else None, callbacks=callbacks,
        distill=config, teacher=live.to(args.device).eval() if live is not None else None, projections=projections,
        feature_projection=feature_projection,
    )  # fmt: skip
    quiet_trainer(trainer, "distilling")
    resume = config.resume and any(ckpt.glob("checkpoint-*"))
    if resume and load_projections(extras, ckpt):
        log.info("resume: the distillation projections continue from the last checkpoint")
    extras.to(args.device)
    result = trainer.train(resume_from_checkpoint=True if resume else None)
    train_seconds = time.perf_counter() - t0
    _log_projection_spread(extras, args.world_size)
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return Path(config.out_dir)
    inputs = (("teacher", config.teacher), *((f"unlabelled_{i}", p) for i, p in enumerate(config.unlabelled)),
              *((("baseline", config.baseline),) if config.baseline else ()))  # fmt: skip
    return write_task_output(config, trainer, stok, (train, dev, test), result, train_seconds, ckpt, precision,
                             stage="distill", inputs=inputs,
                             extra={"teacher_fusion": fusion} if fusion else None)  # fmt: skip
