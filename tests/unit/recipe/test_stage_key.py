"""A stage's build key is what the recipe asks for: an option added to lmtailor later, left at its default, does not
make every trained stage of an existing build run again."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from lmtailor.recipe.load import PlannedStage
from lmtailor.recipe.run import stage_key
from lmtailor.train.finetune import FinetuneConfig


class _Newer(FinetuneConfig):
    """FinetuneConfig as a later release might have it: one more option, off by default."""

    future_option: float | None = Field(None, description="An option this release does not have.")


def _key(config) -> str:
    return stage_key(PlannedStage(name="classifier", kind="finetune", config=config, deps=[], line=1), {}, {})


def test_a_new_option_at_its_default_keeps_the_key_and_a_changed_one_does_not(tmp_path: Path) -> None:
    base = {"task": "cls", "model": "m", "train": tmp_path / "train.jsonl", "out_dir": tmp_path / "cls"}
    key = _key(FinetuneConfig(**base))
    assert _key(_Newer(**base)) == key
    assert _key(_Newer(**base, future_option=0.5)) != key
    assert _key(FinetuneConfig(**base, lr=5e-5)) == key  # stated at its default is the same request
    assert _key(FinetuneConfig(**base, lr=1e-4)) != key
    assert _key(FinetuneConfig(**{**base, "out_dir": tmp_path / "elsewhere"})) == key  # where it goes is not keyed
