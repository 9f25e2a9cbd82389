"""Self-describing, atomically written output folders: the only way stages talk to each other.

A stage writes into a temporary sibling folder and renames it into place at the end, so an interrupted or failed
stage never leaves a half-written result, and an existing result is only replaced once the new one is complete.
Each folder carries `lmtailor.json`: stage, version, resolved config, input folders with content hashes, metrics,
seconds taken.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lmtailor import __version__
from lmtailor.config import StageConfig
from lmtailor.errors import OutputExistsError

MANIFEST = "lmtailor.json"


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
    """Write JSON atomically (temp file + rename), UTF-8, human-readable."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(folder: Path) -> dict[str, Any]:
    """The `lmtailor.json` of an output folder, or {} when the folder was not written by lmtailor."""
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


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
def stage_output(stage: str, config: StageConfig) -> Iterator[StageOutput]:
    """Yield a `StageOutput` over a temporary sibling of `config.out_dir`; move it into place only on success."""
    final = Path(config.out_dir)
    if final.exists() and not config.overwrite:
        raise OutputExistsError(f"output folder {final} already exists; pass --overwrite or choose another --out.")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    out = StageOutput(stage, config, tmp)
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
