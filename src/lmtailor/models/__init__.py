"""lmtailor's small BERT presets (`presets`) and the planner that sizes a training run for given hardware (`plan`)."""

from lmtailor.models.presets import PRESETS, Shape, bert_config, build_mlm, preset_shape

__all__ = ["PRESETS", "Shape", "bert_config", "build_mlm", "preset_shape"]
