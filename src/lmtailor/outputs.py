"""Self-describing, atomically written output folders: the only way stages talk to each other.

A stage writes into a temporary sibling folder and renames it into place at the end, so an interrupted or failed
stage never leaves a half-written result, and an existing result is only replaced once the new one is complete.
Each folder carries `lmtailor.json`: stage, version, resolved config, input folders with content hashes, metrics,
seconds taken.

Before a stage does any work it claims its output folder (`claim_output`): the folder must not be, contain or lie
inside one of the stage's inputs, must not lie under a file, and `--overwrite` replaces only an earlier output of
the same kind of stage (or an empty folder), never a user's folder. The claim holds a lock (`lmtailor.locks`) until
the stage ends, so a second run on the same folder is refused instead of silently losing one result, and it removes
the temporary folders that a killed run left behind.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lmtailor import __version__
from lmtailor.config import StageConfig
from lmtailor.errors import OutputExistsError, OutputPathError, OutputWriteError
from lmtailor.locks import hold, lock_path

log = logging.getLogger(__name__)
MANIFEST = "lmtailor.json"
# Failures of the disk or its permissions, which the user fixes (free space, another --out), not bugs.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 of one file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def content_hash(paths: Sequence[Path], chunk: int = 1 << 20) -> str:
    """A sha256 over the relative names and bytes of every file under `paths` (sorted), identifying the input."""
    h = hashlib.sha256()
    for root in sorted(Path(p) for p in paths):
        files = sorted(f for f in root.rglob("*") if f.is_file()) if root.is_dir() else [root]
        for f in files:
            h.update(str(f.relative_to(root) if root.is_dir() else f.name).encode("utf-8", "surrogateescape"))
            with open(f, "rb") as fh:
                while block := fh.read(chunk):
                    h.update(block)
    return h.hexdigest()


def write_json(path: Path, obj: Any) -> None:
    """Write JSON atomically (a temp file of its own, then rename), UTF-8, human-readable."""
    # A name of its own ("x": never someone else's file), not mkstemp's, whose files are private (0600).
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_manifest(folder: Path) -> dict[str, Any]:
    """The `lmtailor.json` of an output folder, or {} when the folder was not written by lmtailor."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return {}
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def stage_family(stage: str) -> str:
    """`finetune` for finetune-cls, `vocab` for vocab.trim / vocab-trim: the kind of stage a folder came from."""
    return re.split(r"[.-]", stage, maxsplit=1)[0]


def config_inputs(config: StageConfig) -> list[tuple[str, Path]]:
    """(field, path) of every existing file or folder a stage config names, its output aside."""
    found = []
    for name in type(config).model_fields:
        if name == "out_dir":
            continue
        value = getattr(config, name)
        for item in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(item, str | Path) or not str(item).strip():
                continue
            path = Path(item).expanduser()
            if not path.exists() and isinstance(item, str) and "@" in item:
                path = Path(item.rsplit("@", 1)[0]).expanduser()  # bench's PATH@bf16
            if path.exists():
                found.append((name, path))
    return found


def check_out_dir(config: StageConfig) -> Path:
    """The absolute output folder of `config`, after refusing any output that would destroy or mix with data."""
    stage = config.manifest_name()
    given = Path(config.out_dir)
    final = Path(os.path.abspath(given.expanduser()))
    if final.parent == final:
        raise OutputPathError(f"output folder {given} is the root of the file system; choose a new folder for --out.")
    for folder in (final, *final.parents):
        if folder.exists() and not folder.is_dir():
            where = "is a file" if folder == final else f"lies under {folder}, which is a file"
            raise OutputPathError(f"output folder {given} {where}; choose an --out inside a folder.")
    real = final.resolve()
    may_hold_output = getattr(type(config), "inputs_may_hold_output", ())
    for field, path in config_inputs(config):
        src = path.resolve()
        if src == real or real in src.parents:
            raise OutputPathError(
                f"output folder {given} {'is' if src == real else 'contains'} the input {path} ({field}); writing "
                "it would replace that input. Choose an --out outside your inputs."
            )
        if src in real.parents and field not in may_hold_output:
            raise OutputPathError(
                f"output folder {given} lies inside the input {path} ({field}), so it would become part of that "
                "input. Choose an --out outside your inputs."
            )
    if final.exists():
        if not config.overwrite:
            raise OutputExistsError(f"output folder {given} already exists; pass --overwrite or choose another --out.")
        if any(final.iterdir()):
            manifest = read_manifest(final)
            if not manifest:
                raise OutputExistsError(
                    f"output folder {given} exists and is not an lmtailor output (no {MANIFEST}), so --overwrite "
                    "will not replace it; choose another --out, or empty that folder yourself."
                )
            if stage_family(str(manifest.get("stage", ""))) != stage_family(stage):
                raise OutputExistsError(
                    f"output folder {given} holds the output of a `{manifest.get('stage')}` stage, and --overwrite "
                    f"replaces only an output of the same kind ({stage_family(stage)}); choose another --out."
                )
    return final


def _remove_leftovers(final: Path) -> None:
    """Delete the temporary folders of earlier runs on `final` that died before finishing (we hold its lock, so
    no live run is writing them)."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.(tmp|old|work)-(\d+)")  # work: a stage's scratch (update)
    for path in sorted(final.parent.iterdir()):
        m = pattern.fullmatch(path.name)
        if not m or int(m.group(2)) == os.getpid() or not path.is_dir():
            continue
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
        log.info("removed %s, left by a run (process %s) that stopped before finishing (%.1f MB)", path,
                 m.group(2), size / 1e6)  # fmt: skip


def write_failure(exc: OSError) -> OutputWriteError:
    """A disk or permission failure as one line naming the path and the fix."""
    fix = "free some disk space" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "choose a folder you can write"
    where = exc.filename or "the output folder"
    return OutputWriteError(f"could not write {where}: {exc.strerror or exc}; {fix}, then run again. Nothing was kept.")


@contextmanager
def claim_output(config: StageConfig) -> Iterator[Path]:
    """Check `config.out_dir` (see `check_out_dir`) and hold its lock while the stage runs; disk and permission
    failures inside become an `OutputWriteError`."""
    final = check_out_dir(config)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        with hold(lock_path(final), f"output folder {config.out_dir}"):
            if int(os.environ.get("RANK", "0")) == 0:  # torchrun workers hold no lock: only the main process cleans
                _remove_leftovers(final)
            yield final
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise write_failure(exc) from None
        raise


class StageOutput:
    """The temporary folder a stage writes into, plus what goes into its manifest."""

    def __init__(self, stage: str, config: StageConfig, tmp_dir: Path) -> None:
        self.stage = stage
        self.config = config
        self.dir = tmp_dir
        self.inputs: dict[str, dict[str, str]] = {}
        self.metrics: dict[str, Any] = {}
        self._t0 = time.perf_counter()

    def add_input(self, name: str, path: Path, hash_content: bool = True) -> None:
        """Record an input path (and a content hash of it, unless that would be too costly to compute)."""
        entry = {"path": str(Path(path).resolve())}
        if hash_content:
            entry["sha256"] = content_hash([Path(path)])
        self.inputs[name] = entry

    def manifest(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "lmtailor_version": __version__,
            "config": self.config.model_dump(mode="json"),
            "inputs": self.inputs,
            "metrics": self.metrics,
            "seconds": round(time.perf_counter() - self._t0, 3),
        }


@contextmanager
def stage_output(config: StageConfig) -> Iterator[StageOutput]:
    """Yield a `StageOutput` over a temporary sibling of `config.out_dir`; move it into place only on success.

    The output is claimed (checked and locked) here too, so a stage called as a library function gets the same
    protection as one started by the CLI or a build, which claim it before the stage starts.
    """
    with claim_output(config) as final:
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        out = StageOutput(config.manifest_name(), config, tmp)
        try:
            yield out
            write_json(tmp / MANIFEST, out.manifest())
            if final.exists():
                # Keep the old result until the new one is complete, then swap: nothing is lost if we die here.
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
