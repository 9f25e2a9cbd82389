"""`lmtailor build`: run a recipe's stages in order, skipping every stage whose result is already up to date.

A stage's key is a hash of its type, its resolved config (output folder, overwrite and progress switches left out)
and its inputs: the key of the stage that produced an input folder, or the content hash of any other existing file
or folder named in the config. Because upstream keys feed downstream keys, changing one field reruns that stage and
everything that reads from it, and nothing else. The keys of finished stages live in `${work}/build.json`, with the
names and sizes of the files each wrote; a stage is skipped when its key matches and its output folder still holds
those files under a manifest of the same kind of stage (a folder edited by hand is rebuilt). One build at a time
holds a work folder (`${work}/.build.lock`).

A stage that fails leaves the finished ones untouched (each stage writes atomically) and the error names the
command that resumes the build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from lmtailor import display
from lmtailor.errors import ConfigError, LmtailorError
from lmtailor.locks import hold
from lmtailor.outputs import MANIFEST, content_hash, read_manifest, stage_family, write_json
from lmtailor.recipe.load import PlannedStage, Recipe
from lmtailor.stages import run_stage

log = logging.getLogger(__name__)
STATE = "build.json"
_NOT_KEYED = {"out_dir", "overwrite", "show_progress"}


class BuildError(LmtailorError):
    """A stage failed; the message says which and how to resume."""


@dataclass
class StageResult:
    name: str
    status: str  # ran | cached | skipped
    seconds: float
    out_dir: Path


def _inputs(value, produced: dict[str, str], hashes: dict[str, str]) -> list[str]:
    """Fingerprints of the existing paths named by a field value (upstream keys for stage outputs)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if not isinstance(item, str | Path):
            continue
        text = str(item)
        owner = next((n for n, p in produced.items() if text == p or text.startswith(p + "/")), None)
        if owner is not None:
            out.append(f"{owner}:{hashes[owner]}:{text[len(produced[owner]) :]}")
        elif Path(text).exists():
            out.append(content_hash([Path(text)]))
    return out


def stage_key(stage: PlannedStage, produced: dict[str, str], keys: dict[str, str]) -> str:
    """The stage's kind, the settings the recipe gives it that differ from lmtailor's defaults (so an option added in
    a later release, left at its default, keeps every key, and hours of trained stages, as they were), and the
    fingerprints of its inputs."""
    config = stage.config.model_dump(mode="json", exclude=_NOT_KEYED, exclude_defaults=True)
    inputs = {k: _inputs(v, produced, keys) for k, v in stage.raw.items()}
    blob = json.dumps({"stage": stage.kind, "config": config, "inputs": inputs}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _select(recipe: Recipe, start: str | None, until: str | None, force: list[str]) -> tuple[int, int]:
    names = recipe.names()
    for n in [start, until, *force]:
        if n is not None and n not in names:
            raise ConfigError(f"no stage {n!r} in {recipe.path}; its stages are {', '.join(names)}.")
    first = names.index(start) if start else 0
    last = names.index(until) if until else len(names) - 1
    if first > last:
        raise ConfigError(f"--from {start} comes after --until {until} in {recipe.path}.")
    return first, last


def files_of(folder: Path) -> dict[str, int]:
    """Relative name → size of every file in an output folder: what a later build checks is still there."""
    return {str(f.relative_to(folder)): f.stat().st_size for f in sorted(folder.rglob("*")) if f.is_file()}


def _intact(stage: PlannedStage, previous: dict, out: Path) -> bool:
    """Whether `out` is still what the recorded run of `stage` wrote: its manifest, and every file at its size."""
    if not (out / MANIFEST).is_file():
        return False
    if stage_family(str(read_manifest(out).get("stage", ""))) != stage_family(stage.kind):
        return False
    files = previous.get("files")
    return files is None or files_of(out) == files  # None: recorded before files were (older build.json)


def run_build(recipe: Recipe, start: str | None = None, until: str | None = None, force: list[str] | None = None,
              show_progress: bool = True, echo=None) -> list[StageResult]:  # fmt: skip
    """Run (or skip) every stage from `start` to `until`; `force` reruns the named stages even if up to date.

    A stage that reads the output of a stage that ran in this build runs too, even when its key is unchanged: a
    forced stage may write a different output from the same config (a newer lmtailor, a nondeterministic step).
    A second build of the same work folder is refused while this one runs (it names this one).
    """
    force = force or []
    first, last = _select(recipe, start, until, force)
    echo = echo or (lambda msg: log.info("%s", msg))
    try:
        recipe.work.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(f"work folder {recipe.work} of {recipe.path} is a file; set work: to a folder.") from None
    with hold(recipe.work / ".build.lock", f"build work folder {recipe.work}"):
        return _run_stages(recipe, first, last, force, show_progress, echo)


def _run_stages(recipe: Recipe, first: int, last: int, force: list[str], show_progress: bool,
                echo) -> list[StageResult]:  # fmt: skip
    state_path = recipe.work / STATE
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {}
    produced = {s.name: str(s.config.out_dir) for s in recipe.stages}
    keys: dict[str, str] = {}
    results: list[StageResult] = []
    ran: set[str] = set()
    total = last - first + 1
    shown = display.current()  # a live view or log lines (the CLI's); without one, `echo` says what happens
    if shown is not None:
        shown.plan([(s.name, s.kind) for s in recipe.stages[first : last + 1]])
    for i, stage in enumerate(recipe.stages):
        keys[stage.name] = key = stage_key(stage, produced, keys)
        out = Path(stage.config.out_dir)
        if i < first or i > last:
            results.append(StageResult(stage.name, "skipped", 0.0, out))
            continue
        n = i - first + 1
        previous = state.get(stage.name, {})
        fresh = previous.get("key") == key and _intact(stage, previous, out)
        if fresh and stage.name not in force and not ran.intersection(stage.deps):
            if shown is None:
                echo(f"[{n}/{total}] {stage.name} ({stage.kind}): up to date, {out}")
            else:
                shown.stage_end(stage.name, "cached", 0.0)
            results.append(StageResult(stage.name, "cached", 0.0, out))
            continue
        if previous.get("key") == key and out.exists() and not fresh:
            echo(f"[{n}/{total}] {stage.name}: {out} was changed since it was built; building it again")
        eta = _eta(recipe, state, i, last)
        changed = "key" in previous and previous["key"] != key  # settings or inputs differ from the timed run
        note = f"  (about {eta} left at the last run's times" + ("; this stage has changed since)" if changed else ")")
        if shown is None:
            echo(f"[{n}/{total}] {stage.name} ({stage.kind}) → {out}" + (note if eta else ""))
        else:
            shown.stage_start(stage.name, stage.kind, n, total, eta)
        t0 = time.perf_counter()
        config = stage.config.model_copy(update={"show_progress": show_progress})
        try:
            run_stage(stage.kind, config)
        except LmtailorError as exc:
            if shown is not None:
                shown.stage_end(stage.name, "failed", time.perf_counter() - t0)
            raise BuildError(
                f"stage {stage.name!r} ({stage.kind}, {recipe.path}:{stage.line}) failed: {exc}\n"
                f"Finished stages are kept; after fixing it, resume with: lmtailor build {recipe.path} "
                f"--from {stage.name}"
            ) from exc
        seconds = time.perf_counter() - t0
        if shown is not None:
            shown.stage_end(stage.name, "done", seconds)
        state[stage.name] = {"key": key, "seconds": round(seconds, 1), "out_dir": str(out), "kind": stage.kind,
                             "files": files_of(out) if out.is_dir() else {}}  # fmt: skip
        write_json(state_path, state)
        results.append(StageResult(stage.name, "ran", seconds, out))
        ran.add(stage.name)
    return results


def _eta(recipe: Recipe, state: dict, i: int, last: int) -> str | None:
    """Time left from the previous run's stage times (None when no stage of the rest has run before)."""
    seconds = [state.get(s.name, {}).get("seconds") for s in recipe.stages[i : last + 1]]
    known = [s for s in seconds if s is not None]
    if not known:
        return None
    total = sum(known)
    return f"{total / 60:.0f} min" if total >= 90 else f"{total:.0f} s"
