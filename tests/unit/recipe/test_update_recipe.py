"""A recipe can run `update` as a stage: next quarter's documents brought into a model the same build made."""

from __future__ import annotations

from pathlib import Path

from lmtailor.recipe.load import load_recipe
from lmtailor.update.config import UpdateConfig

RECIPE = """
vars:
  work: {work}
stages:
  teacher:
    stage: finetune
    task: cls
    model: some/model
    train: {data}/train.jsonl
    dev: {data}/dev.jsonl
  next_quarter:
    stage: update
    model: "@teacher"
    documents: ["{data}/q3"]
    train: {data}/q3-train.jsonl
    replay: ["{data}/contracts"]
    tolerance: 0.5
  serve:
    stage: serve
    models: ["@next_quarter"]
"""


def test_update_is_a_recipe_stage_chained_to_the_model_it_updates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "q3").mkdir(parents=True)
    (data / "contracts").mkdir()
    for name in ("train.jsonl", "dev.jsonl", "q3-train.jsonl"):
        (data / name).write_text('{"text": "a", "label": "x"}\n')
    path = tmp_path / "recipe.yaml"
    path.write_text(RECIPE.format(work=tmp_path / "work", data=data))
    recipe = load_recipe(path)
    stages = {s.name: s for s in recipe.stages}
    update = stages["next_quarter"]
    assert update.kind == "update" and isinstance(update.config, UpdateConfig)
    assert update.deps == ["teacher"] and stages["serve"].deps == ["next_quarter"]
    assert Path(update.config.model) == stages["teacher"].config.out_dir
    assert update.config.tolerance == 0.5 and update.config.documents == [data / "q3"]
