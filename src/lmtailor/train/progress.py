"""Training as the display shows it: one bar over the optimiser steps with loss and epoch beside it, and one line per
evaluation, instead of HF Trainer's tqdm bars and the raw log dictionaries its PrinterCallback prints.

`quiet_trainer(trainer)` is called on every Trainer lmtailor builds (finetune, distill, pretrain): it removes the
printing callbacks and, when a display is showing (`lmtailor.display`), adds `DisplayCallback`. Nothing is lost: every
log record still goes to `metrics.jsonl` and TensorBoard.
"""

from __future__ import annotations

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from lmtailor import display


class DisplayCallback(TrainerCallback):
    """Steps, loss and epoch to the display's bar; each evaluation as one line."""

    def __init__(self, label: str = "training") -> None:
        self.label = label
        self.figures: dict = {}

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero and (d := display.current()) is not None:
            d.progress(self.label, state.global_step, state.max_steps or None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs or (d := display.current()) is None:
            return
        if "loss" in logs:
            self.figures = {"loss": float(logs["loss"]), "epoch": round(float(state.epoch or 0), 2)}
        d.progress(self.label, state.global_step, state.max_steps or None, self.figures)

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and (d := display.current()) is not None:
            d.progress(self.label, state.global_step, state.max_steps or None, self.figures)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if not state.is_world_process_zero or not metrics:
            return
        shown = {k.removeprefix("eval_"): v for k, v in metrics.items()
                 if isinstance(v, int | float) and not k.endswith(("runtime", "per_second", "epoch"))}  # fmt: skip
        loss = shown.pop("loss", None)  # the task metrics first: they are what the run is chosen by
        text = " · ".join(f"{k} {v:.4g}" for k, v in shown.items()) + (
            f" · loss {loss:.4g}" if loss is not None else ""
        )
        display.event(f"step {state.global_step} (epoch {float(state.epoch or 0):.2f}) · dev {text}")

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and (d := display.current()) is not None:
            d.progress_done()


def quiet_trainer(trainer, label: str = "training"):
    """`trainer` without its printing callbacks, reporting to the display instead when one is showing."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if display.current() is not None:
        trainer.add_callback(DisplayCallback(label))
    return trainer
