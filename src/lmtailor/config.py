"""The base of every stage's configuration: strict pydantic models whose field descriptions are the CLI help.

Precedence is defaults < recipe YAML < command-line flags; `load_config` does the first two and the CLI adds the
flags. Validation errors are turned into a `ConfigError` that names the field, the bad value and what is accepted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lmtailor.errors import ConfigError, InputNotFoundError

C = TypeVar("C", bound="Settings")


def positional(order: int = 1) -> dict[str, Any]:
    """`Field(json_schema_extra=positional())`: the field is a command-line argument (in `order`), not an option."""
    return {"cli_argument": order}


def mapping_from_text(values: Any, field: str) -> Any:
    """For a `mode="before"` validator: a dict field given as JSON or YAML text (`--field '{a: 1}'` on the command
    line) parsed into the dict; anything else is left to pydantic."""
    if isinstance(values, dict) and isinstance(values.get(field), str):
        try:
            parsed = yaml.safe_load(values[field])
        except yaml.YAMLError as exc:
            raise ValueError(f"{field} is not JSON or YAML: {exc}") from None
        if parsed is not None and not isinstance(parsed, dict):
            raise ValueError(f"{field} must be a mapping, e.g. '{{key: value}}'")
        values = {**values, field: parsed or {}}
    return values


def cli_flags(*flags: str) -> dict[str, Any]:
    """`Field(json_schema_extra=cli_flags("--out", "-o"))`: spellings of the field's option besides `--field-name`
    (a pair like `--lowercase/--cased` replaces the derived on/off switch)."""
    return {"cli_flags": list(flags)}


class Settings(BaseModel):
    """Strict settings whose field descriptions are the CLI help: every stage's config, and the server's options."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @classmethod
    def build(cls: type[C], **values: Any) -> C:
        """Validate `values` into this config, raising a `ConfigError` that names each bad field."""
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(cls.__name__, exc)) from None


class StageConfig(Settings):
    """Fields shared by every stage: where the output goes, whether to overwrite, the seed, progress bars."""

    # The stage's one name (`vocab.trim`), set by each stage's config: the CLI command, the recipe's `stage:`, the
    # --config section and the manifest all derive from it (`lmtailor.stages`).
    stage: ClassVar[str] = ""

    def manifest_name(self) -> str:
        """How `lmtailor.json` names the stage: `vocab-trim`, and `finetune-cls` for a stage with a task."""
        task = getattr(self, "task", None)
        return self.stage.replace(".", "-") + (f"-{task}" if isinstance(task, str) else "")

    out_dir: Path = Field(
        description="Output folder this stage writes (created atomically; see --overwrite).",
        json_schema_extra=cli_flags("--out", "-o"),
    )
    overwrite: bool = Field(False, description="Replace an existing output folder instead of refusing.")
    seed: int = Field(0, description="Random seed; the same inputs and seed give the same outputs on CPU.")
    show_progress: bool = Field(
        True,
        description="Show progress bars (switch off in tests and CI logs).",
        json_schema_extra=cli_flags("--progress/--no-progress"),
    )


def format_validation_error(where: str, exc: ValidationError) -> str:
    """One line per bad field: the field path, the value given, and pydantic's statement of what is accepted."""
    lines = [f"invalid {where}:"]
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(config)"
        given = err.get("input")
        shown = repr(given) if not isinstance(given, dict) else "{...}"
        lines.append(f"  - {field} = {shown}: {err['msg']}")
    return "\n".join(lines)


def _section(cls: type[C], path: Path, loaded: dict, sections: list[str]) -> Any:
    """The first of `sections` in a shared config file, or the whole file when it is a flat file of this stage's
    fields."""
    section = next((s for s in sections if s in loaded), sections[-1])
    if section in loaded:
        return loaded[section]
    if set(loaded) <= set(cls.model_fields):
        return loaded
    unknown = ", ".join(sorted(str(k) for k in set(loaded) - set(cls.model_fields)))
    raise ConfigError(
        f"config file {path} has no `{section}:` section, and its top-level keys ({unknown}) are not settings of "
        f"this command; put this command's settings under `{section}:` or write only its fields at the top level."
    )


def load_config(cls: type[C], path: Path | None = None, section: str | list[str] | None = None, **overrides: Any) -> C:
    """Defaults < YAML file (optionally one `section` of it: the first present of several) < explicit overrides
    (None means 'not given')."""
    values: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise InputNotFoundError(f"config file {path} does not exist; pass the path of a YAML recipe.")
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if section is not None and isinstance(loaded, dict):
            loaded = _section(cls, Path(path), loaded, [section] if isinstance(section, str) else section)
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path}: expected a mapping of field: value, got {type(loaded).__name__}.")
        values.update(loaded)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return cls.build(**values)
