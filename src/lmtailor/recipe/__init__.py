"""Recipes: one YAML file of stage configs from corpus to deployable model (`load`), and `lmtailor build`, which runs
it with each stage's result cached by its config and inputs (`run`)."""

from lmtailor.recipe.load import PlannedStage, Recipe, load_recipe
from lmtailor.recipe.run import BuildError, StageResult, run_build, stage_key

__all__ = ["BuildError", "PlannedStage", "Recipe", "StageResult", "load_recipe", "run_build", "stage_key"]
