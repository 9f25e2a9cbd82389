"""The CLI is generated from the configs: a field added to a toy stage shows up as a flag, in --help with its
description and default, in a recipe section (--config) and in the build's cache key, with nothing else written."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

import pytest
import typer
from pydantic import Field
from typer.testing import CliRunner

from lmtailor.commands import make_command
from lmtailor.config import StageConfig, cli_flags, load_config, positional
from lmtailor.stages import STAGES, Stage


class ToyConfig(StageConfig):
    """A stage of the test."""

    stage: ClassVar[str] = "toy.run"

    inputs: list[Path] = Field(description="Files to read.", json_schema_extra=positional())
    lr: float = Field(5e-5, description="Peak learning rate.")
    mode: Literal["fast", "slow"] = Field("fast", description="How to go.")
    ratios: list[float] = Field([0.9, 0.1], description="Shares.")
    verify_inputs: list[Path] = Field(
        default_factory=list, description="Held out.", json_schema_extra=cli_flags("--verify")
    )


def _app(config: type[StageConfig], seen: list) -> typer.Typer:
    app = typer.Typer()
    toy = Stage(config, lambda c: Path(c.out_dir), "Run the toy.")

    def run(stage: Stage, config_path: Path | None, values: dict) -> None:
        seen.append(load_config(stage.config, config_path, section=stage.section if config_path else None, **values))

    app.command("run")(make_command(toy, run))
    app.command("other")(lambda: None)  # a second command, so typer keeps `run` as a subcommand
    return app


def _keys(config: StageConfig) -> str:
    from lmtailor.recipe.load import PlannedStage
    from lmtailor.recipe.run import stage_key

    return stage_key(PlannedStage("toy", "toy.run", config, [], 1, {}), {}, {})


def test_every_field_is_a_flag_with_its_description_and_default(tmp_path: Path):
    seen: list = []
    app = _app(ToyConfig, seen)
    help_text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    expected = ["inputs", "--lr", "Peak learning rate.", "default: (5e-05)", "--mode", "one of fast, slow", "--ratios",
                "--verify", "--out", "-o", "--overwrite", "--seed", "--progress", "--config"]  # fmt: skip
    for words in expected:
        assert words in help_text, words
    result = CliRunner().invoke(app, ["run", "a.txt", "b.txt", "--out", str(tmp_path / "o"), "--lr", "1e-3",
                                      "--ratios", "0.5,0.5", "--verify", "v.txt", "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    cfg = seen[-1]
    assert (cfg.inputs, cfg.lr, cfg.ratios, cfg.verify_inputs) == ([Path("a.txt"), Path("b.txt")], 1e-3, [0.5, 0.5],
                                                                   [Path("v.txt")])  # fmt: skip
    assert cfg.show_progress is False and cfg.mode == "fast"


def test_a_new_field_appears_in_the_flags_help_recipe_and_cache_key(tmp_path: Path):
    class Toy2(ToyConfig):
        warmup: float = Field(0.1, description="Share of the steps with warmup.")

    seen: list = []
    app = _app(Toy2, seen)
    assert (
        "Share of the steps with warmup." in CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text("toy_run:\n  warmup: 0.3\n  lr: 0.01\n")
    args = ["run", "a.txt", "--out", str(tmp_path / "o"), "--config", str(recipe)]
    assert CliRunner().invoke(app, [*args, "--warmup", "0.2"]).exit_code == 0
    assert (seen[-1].warmup, seen[-1].lr) == (0.2, 0.01)  # flag > --config > default
    assert CliRunner().invoke(app, args).exit_code == 0
    assert seen[-1].warmup == 0.3
    base = Toy2(inputs=["a"], out_dir="o")
    assert _keys(base) == _keys(ToyConfig(inputs=["a"], out_dir="o"))  # at its default: keys unchanged
    assert _keys(base.model_copy(update={"warmup": 0.2})) != _keys(base)


def test_a_bad_value_is_named_by_pydantic(tmp_path: Path):
    seen: list = []
    with pytest.raises(Exception, match="mode"):
        CliRunner().invoke(_app(ToyConfig, seen), ["run", "a", "--out", "o", "--mode", "warp"],
                           catch_exceptions=False)  # fmt: skip


def test_every_shipped_stage_has_a_command_and_every_field_a_flag():
    from typer.main import get_command

    from lmtailor.cli import app

    root = get_command(app)
    for stage in STAGES.values():
        command = root
        for word in stage.words:
            command = command.commands[word]
        names = {p.name for p in command.params}
        fields = set(stage.config.model_fields)
        if not stage.generated_command:  # `lmtailor serve` runs the server: every field but the output folder's
            fields -= {"out_dir", "overwrite", "seed", "show_progress"}
        assert fields <= names, (stage.name, fields - names)
