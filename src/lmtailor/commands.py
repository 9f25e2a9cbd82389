"""The stage commands of the CLI, generated from the stage registry: one command per stage, one option per field.

Like litgpt's `__main__.py`, nothing here names a stage or a field: `vocab.trim` becomes `lmtailor vocab trim`, each
field of its pydantic config becomes `--field-name` (its description is the help, its default is shown), fields
marked `positional()` are arguments, and `cli_flags(...)` on a field adds the short or older spellings (`--out`,
`-o`, `--verify`). Values the user did not give stay unset, so the precedence defaults < `--config` YAML < flags
holds. Why typer options are built from `inspect.Parameter`s: typer reads a command's signature, so a generated
signature is all it needs, and `--help` comes out as for a hand-written command.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic.fields import FieldInfo

from lmtailor.config import Settings
from lmtailor.stages import Stage

CONFIG_OPTION = "config"  # the --config parameter every stage command has besides its fields
_SCALARS = (bool, int, float, str, Path)


def _extra(info: FieldInfo) -> dict:
    extra = info.json_schema_extra
    return extra if isinstance(extra, dict) else {}


def _strip_optional(annotation: Any) -> Any:
    """X for `X | None`; unions of several real types stay as they are."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else typing.Union[tuple(rest)]  # noqa: UP007
    return annotation


def _base(annotation: Any) -> Any:
    """The plain type under `Annotated[...]` constraints."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def cli_type(annotation: Any) -> tuple[Any, str | None]:
    """(the type typer parses, a note on the accepted values) for a config field's annotation.

    Scalars keep their type; `list[X]` is a repeatable option of X (numbers may also be given comma-separated);
    a `Literal` is a string whose choices the help lists (pydantic checks it, with the same message as in a
    recipe); anything else (a union of a literal and a list, say) is a string that pydantic parses."""
    annotation = _base(_strip_optional(annotation))
    origin = typing.get_origin(annotation)
    if annotation in _SCALARS:
        return annotation, None
    if origin is Literal:
        return str, "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if origin is list:
        item = _base(_strip_optional(typing.get_args(annotation)[0]))
        if typing.get_origin(item) is Literal:
            return list[str], "each one of " + ", ".join(str(a) for a in typing.get_args(item))
        if item in (int, float):
            return list[str], "repeat the option or separate values with commas"
        return list[item if item in _SCALARS else str], None
    choices = _literal_choices(annotation)
    note = f"{', '.join(map(str, choices))}, or a comma-separated list" if choices else None
    return str, note


def _literal_choices(annotation: Any) -> list[Any]:
    """The values of the `Literal` members of a union (`Literal["auto"] | list[...]` → ["auto"])."""
    return [a for arg in typing.get_args(annotation) if typing.get_origin(arg) is Literal for a in typing.get_args(arg)]


def _default_text(info: FieldInfo) -> str | None:
    if info.is_required():
        return None
    value = info.get_default(call_default_factory=True)
    if value is None or value == []:
        return None
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _flags(name: str, info: FieldInfo, kind: Any) -> list[str]:
    """`--field-name` (with `--no-field-name` for a switch) and the spellings declared on the field."""
    declared = list(_extra(info).get("cli_flags", []))
    dashed = "--" + name.replace("_", "-")
    if kind is bool:
        switch = f"{dashed}/--no-{name.replace('_', '-')}"
        long = [f for f in declared if f.startswith("--")]
        # a declared on/off pair (`--lowercase/--cased`, `--progress/--no-progress`) replaces the derived one
        return long if any("/" in f for f in long) else [switch, *declared]
    return [dashed, *[f for f in declared if f != dashed]]


def parameter(name: str, info: FieldInfo) -> inspect.Parameter:
    """The typer parameter of one config field: argument or option, help from its description, default shown."""
    kind, note = cli_type(info.annotation)
    help_text = (info.description or "").rstrip()
    if note:
        help_text += f" ({note})"
    shown = _default_text(info)
    if _extra(info).get("cli_argument"):
        param = typer.Argument(help=help_text, show_default=shown or False)
    else:
        param = typer.Option(*_flags(name, info, kind), help=help_text, show_default=shown or False)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[kind | None, param])  # fmt: skip


def _takes_list(annotation: Any, value: str) -> bool:
    """Whether a string given for a union such as `Literal["auto"] | list[...]` is the list (comma-separated)."""
    has_list = any(typing.get_origin(a) is list for a in typing.get_args(annotation))
    return has_list and value not in _literal_choices(annotation)


def _split_numbers(values: list[str]) -> list[str]:
    return [part for value in values for part in value.split(",") if part.strip()]


def field_values(config: type[Settings], given: dict[str, Any]) -> dict[str, Any]:
    """The config values of the options the user gave (None: not given), in the form pydantic validates."""
    values = {}
    for name, value in given.items():
        if value is None or name not in config.model_fields or value == []:
            continue
        annotation = _base(_strip_optional(config.model_fields[name].annotation))
        origin = typing.get_origin(annotation)
        if origin is list and isinstance(value, list):
            item = _base(_strip_optional(typing.get_args(annotation)[0]))
            value = _split_numbers(value) if item in (int, float) else value
        elif origin not in (None, Literal, list) and isinstance(value, str) and _takes_list(annotation, value):
            value = [v.strip() for v in value.split(",") if v.strip()]
        values[name] = value
    return values


def make_command(stage: Stage, run: Callable[[Stage, Path | None, dict[str, Any]], None]) -> Callable[..., None]:
    """A function typer can register as the command of `stage`; it hands the given values to `run`."""
    command = settings_command(stage.config, lambda config, values: run(stage, config, values))
    command.__name__ = stage.name.replace(".", "_") + "_cmd"
    command.__doc__ = stage.summary
    return command


def settings_command(
    settings: type[Settings], run: Callable[[Path | None, dict[str, Any]], None], skip: tuple[str, ...] = ()
) -> Callable[..., None]:
    """A typer command with one parameter per field of `settings` (less `skip`) and --config; it hands the
    values given (and the --config path) to `run`."""
    fields = {n: i for n, i in settings.model_fields.items() if n not in skip}
    arguments = [n for n, i in fields.items() if _extra(i).get("cli_argument")]
    arguments.sort(key=lambda n: _extra(fields[n]).get("cli_argument"))
    options = [n for n in fields if n not in arguments]
    params = [parameter(n, fields[n]) for n in [*arguments, *options]]
    config_help = "YAML file with this command's fields (a recipe section)."
    config_option = Annotated[Path | None, typer.Option("--config", help=config_help)]
    params.append(
        inspect.Parameter(CONFIG_OPTION, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=config_option)
    )

    def command(**given: Any) -> None:
        run(given.pop(CONFIG_OPTION), field_values(settings, given))

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    return command
