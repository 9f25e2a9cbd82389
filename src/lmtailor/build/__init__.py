"""`lmtailor build`: one recipe from corpus to deployable model, with stage results cached by config and inputs."""

from lmtailor.build.recipe import PlannedStage, Recipe, load_recipe
from lmtailor.build.runner import BuildError, StageResult, run_build, stage_key

__all__ = ["BuildError", "PlannedStage", "Recipe", "StageResult", "load_recipe", "run_build", "stage_key"]
