"""Tuning `finetune` and `distill` on dev within a budget: Optuna's TPE sampler proposes settings from the search
space, each trial is an ordinary run of the stage (without the test split) into `.<out>.search/trial-N`, and
Optuna's median pruner stops a trial whose dev score after an evaluation in the second half of its epochs is below
the median of earlier trials at the same point. The best trial by the task's metric (`lmtailor.tasks.target`)
becomes the output: its folder is taken as it is, scored once on test, and given `search.json` with every trial
(settings, dev score, state, minutes).

Why Optuna and not HF `Trainer.hyperparameter_search`: the latter varies `TrainingArguments` only, and two of the
settings worth searching here are not training arguments (class weights change the loss, max_length changes the
encoding); running the stage itself for each trial searches exactly what a user would run, with its checks, logs
and outputs. Optuna is the library `hyperparameter_search` itself calls for this.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from transformers import TrainerCallback

from lmtailor.outputs import read_manifest, stage_output, write_json
from lmtailor.tasks.target import parse_metric
from lmtailor.train.config import SEARCHABLE, FinetuneConfig

log = logging.getLogger(__name__)


def search_dir(config: FinetuneConfig) -> Path:
    out = Path(config.out_dir)
    return out.with_name(f".{out.name}.search")


def resolve_space(config: FinetuneConfig) -> dict[str, list]:
    """The search space given, or the default: lr from a third to three times the given one; for classification also
    class weights on and off and label smoothing 0–0.1."""
    if config.search_space:
        return dict(config.search_space)
    space: dict[str, list] = {"lr": [config.lr / 3, config.lr * 3]}
    if config.task == "cls":
        space.update(class_weights=[False, True], label_smoothing=[0.0, 0.1])
    return space


def suggest(trial, space: dict[str, list]) -> dict:
    params = {}
    for name, values in space.items():
        kind = SEARCHABLE[name]
        if kind == "choice":
            params[name] = trial.suggest_categorical(name, list(values))
        elif kind == "int":
            params[name] = trial.suggest_int(name, int(values[0]), int(values[1]))
        else:
            params[name] = trial.suggest_float(name, float(values[0]), float(values[1]), log=kind == "log")
    return params


def warmup_evaluations(config: FinetuneConfig) -> int:
    """Dev evaluations never pruned: those of the first half of a trial's epochs (with per-epoch evaluation). A rare
    class is often not predicted at all after the first epoch (F1 0.0 on the bench's exclusivity task, in a trial
    whose settings did well when run in full), so an early evaluation says little about the last."""
    if config.eval_every:  # evaluations every N steps: their count is not known here; the first one is protected
        return 1
    return max(1, math.ceil(config.epochs / 2))


class PruneOnDev(TrainerCallback):
    """Report each dev evaluation to the Optuna trial; stop the trial when the pruner says it is not promising."""

    def __init__(self, trial, key: str) -> None:
        self.trial, self.key, self.step, self.last = trial, f"eval_{key}", 0, None

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        import optuna

        value = (metrics or {}).get(self.key)
        if value is None:
            return
        self.step += 1
        self.last = float(value)
        self.trial.report(self.last, self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"dev {self.key} {value:.4f} after evaluation {self.step}")


# Below this many dev examples of what the metric counts, a choice among settings mostly follows the split's noise:
# on 27 dev positives the bench's search gained 6.7 points on dev and lost 8.5 on test (docs/benchmarks.md).
MIN_DEV_SUPPORT = 50


def small_dev_warning(config: FinetuneConfig, target, dev) -> str | None:
    """A warning when the dev split (`TaskData`) holds too few examples of what the metric scores to choose among
    settings."""
    from lmtailor.tasks.target import label_counts

    counts = label_counts(dev.examples, config.task)
    if target.kind == "f1":
        support, what = counts.get(target.label, 0), f"examples of {target.label!r}"
    elif target.kind == "macro_f1":
        support, what = min(counts.values(), default=0), "examples of its rarest label"
    else:
        support, what = (len(dev.examples), "examples") if config.task == "cls" else (sum(counts.values()), "entities")
    if support >= MIN_DEV_SUPPORT:
        return None
    return (
        f"the search chooses on {config.dev}, which has {support} {what} (under {MIN_DEV_SUPPORT}): the choice "
        "may follow the split's noise rather than the settings; compare its dev and test scores in the report."
    )


def run_search(config: FinetuneConfig, run: Callable[..., Path]) -> Path:
    """Search, then make the best trial the output of `config` (scored on test). `run(config, callbacks)` is the
    stage's own function (`run_finetune` or `run_distill`)."""
    import optuna

    from lmtailor.errors import ConfigError

    if config.dev is None:
        raise ConfigError("search_trials needs --dev: the settings are chosen on it (never on test).")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # each process would run its own study and prune on its own
        raise ConfigError(
            "search_trials runs in one process: start it without torchrun (each trial may still use one GPU), or "
            "search with one device and train the chosen settings under torchrun."
        )
    # The checks every trial would make, once and before any trial: a bad model folder, output or file fails here.
    from lmtailor.train.task_training import preflight, read_splits

    preflight(config)
    _, dev, _ = read_splits(config)
    target = parse_metric(config.metric, config.task)
    if note := small_dev_warning(config, target, dev):
        log.warning("%s", note)
    space = resolve_space(config)
    work = search_dir(config)
    if work.exists():
        shutil.rmtree(work)  # trials of an interrupted search: a search starts over (each trial is short)
    work.mkdir(parents=True)
    records: list[dict] = []
    t_start = time.perf_counter()

    def objective(trial) -> float:
        params = suggest(trial, space)
        trial_cfg = config.model_copy(update={**params, "out_dir": work / f"trial-{trial.number}", "test": None,
                                              "search_trials": 0, "search_space": {}, "overwrite": False,
                                              "resume": False, "keep_checkpoints": False})  # fmt: skip
        record = {"trial": trial.number, "params": params, "state": "running"}
        records.append(record)
        log.info("search trial %d of %d: %s", trial.number + 1, config.search_trials, params)
        t0 = time.perf_counter()
        prune = PruneOnDev(trial, target.log_key)
        try:
            out = run(trial_cfg, callbacks=[prune])
        except optuna.TrialPruned as exc:
            record.update(state="pruned", minutes=round((time.perf_counter() - t0) / 60, 2), note=str(exc),
                          dev_when_pruned=prune.last)  # fmt: skip
            raise
        value = target.value(json.loads((out / "eval_dev.json").read_text(encoding="utf-8")))
        record.update(state="complete", minutes=round((time.perf_counter() - t0) / 60, 2),
                      dev=value)  # fmt: skip
        log.info("search trial %d: dev %s %s", trial.number, target.name, value)
        return -math.inf if value is None else float(value)

    sampler = optuna.samplers.TPESampler(seed=config.seed, n_startup_trials=min(4, config.search_trials))
    # Optuna prunes from step n_warmup_steps on; evaluations are steps 1, 2, ...: the protected ones are never judged.
    pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup_evaluations(config) + 1)
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    timeout = config.search_minutes * 60 if config.search_minutes else None
    study.optimize(objective, n_trials=config.search_trials, timeout=timeout, gc_after_trial=True)
    complete = [r for r in records if r["state"] == "complete"]
    if not complete:
        raise ConfigError("the search finished no trial (all pruned or out of time); raise search_minutes or "
                          "search_trials.")  # fmt: skip
    best = max(complete, key=lambda r: -math.inf if r["dev"] is None else r["dev"])  # the earliest of ties
    best["chosen"] = True
    minutes = round((time.perf_counter() - t_start) / 60, 2)
    log.info("search: %d trials (%d pruned) in %.1f min; chosen trial %d %s, dev %s %s", len(records),
             sum(r["state"] == "pruned" for r in records), minutes, best["trial"], best["params"], target.name,
             best["dev"])  # fmt: skip
    out = _adopt(config, work / f"trial-{best['trial']}", records, best, minutes, target.name)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _adopt(config: FinetuneConfig, trial_dir: Path, records: list[dict], best: dict, minutes: float,
           metric: str) -> Path:  # fmt: skip
    """The output folder of `config`: the best trial's files, its test score, and the search's record."""
    from lmtailor.models.task_folder import load_task_model
    from lmtailor.tasks.evaluate import evaluate_split

    trial_manifest = read_manifest(trial_dir)
    with stage_output(config) as out:
        for item in trial_dir.iterdir():  # moved, not copied: the trials' folder is removed after this
            if item.name != "lmtailor.json":
                shutil.move(item, out.dir / item.name)
        out.inputs.update(trial_manifest.get("inputs", {}))  # the same inputs, hashed by the trial minutes ago
        report = json.loads((out.dir / "finetune_report.json").read_text(encoding="utf-8"))
        if config.test is not None:  # the trials never saw it
            out.add_input("test", Path(config.test))
            model, tokenizer, spec = load_task_model(out.dir)
            data = config.read_task(config.task, config.test)
            result = evaluate_split(model, tokenizer, spec, data, out.dir, "test", config.eval_batch_size)
            report["test"] = {k: v for k, v in result.items() if not isinstance(v, dict | list)}
        search = {"metric": metric, "trials": records, "chosen": best["params"], "minutes": minutes,
                  "space": resolve_space(config), "budget": {"trials": config.search_trials,
                                                             "minutes": config.search_minutes}}  # fmt: skip
        report["search"] = {"chosen": best["params"], "trials": len(records), "minutes": minutes}
        write_json(out.dir / "finetune_report.json", report)
        write_json(out.dir / "search.json", search)
        out.metrics.update(report)
    return Path(config.out_dir)
