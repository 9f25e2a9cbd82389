"""`make demo`: the whole journey as one recipe (`demo.yaml`) on a built-in default corpus that needs no download.

The default corpus is real legal text present on any machine after setup: the licence files shipped inside the
installed Python packages (`*.dist-info/LICENSE*`, `COPYING*`, `licenses/*`) plus `/usr/share/common-licenses`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
import site
import sys
import sysconfig
from pathlib import Path

from lmtailor.errors import EmptyInputError

log = logging.getLogger(__name__)
LICENSE_PATTERNS = ("LICENSE*", "LICENCE*", "COPYING*", "licenses/*", "NOTICE*")
COMMON_LICENSES = Path("/usr/share/common-licenses")


def _site_dirs() -> list[Path]:
    dirs = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    dirs.update(p for p in sys.path if p.endswith("site-packages"))
    return sorted(Path(d) for d in dirs if Path(d).is_dir())


def find_license_files() -> list[Path]:
    """Licence texts of installed packages and of the OS, in a stable order."""
    found: list[Path] = []
    for d in _site_dirs():
        for info in sorted(d.glob("*.dist-info")):
            for pattern in LICENSE_PATTERNS:
                found.extend(sorted(p for p in info.glob(pattern) if p.is_file()))
    if COMMON_LICENSES.is_dir():
        found.extend(sorted(p for p in COMMON_LICENSES.iterdir() if p.is_file()))
    return found


def collect_default_corpus(dest: Path) -> Path:
    """Copy each distinct licence text into `dest` as a .txt file named after its package; return `dest`."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    seen: set[str] = set()
    for path in find_license_files():
        data = path.read_bytes()
        digest = hashlib.blake2b(data, digest_size=8).hexdigest()
        if digest in seen or not data.strip():
            continue
        seen.add(digest)
        owner = path.parent.parent.name if path.parent.name == "licenses" else path.parent.name
        name = f"{owner.removesuffix('.dist-info')}__{path.name}".replace("/", "_")
        (dest / f"{Path(name).stem}.txt").write_bytes(data)
    if not seen:
        raise EmptyInputError("no licence files found in site-packages or /usr/share/common-licenses for the demo.")
    log.info("default corpus: %d distinct licence texts in %s", len(seen), dest)
    return dest


# Licence families, tested in this order on a file's first 3,000 characters (LGPL before GPL: it names the GPL).
FAMILIES: list[tuple[str, str]] = [
    ("lgpl", r"LESSER GENERAL PUBLIC LICENSE|Library General Public License"),
    ("gfdl", r"GNU Free Documentation License"),
    ("agpl", r"GNU AFFERO GENERAL PUBLIC"),
    ("gpl", r"GNU GENERAL PUBLIC LICENSE"),
    ("apache", r"Apache License"),
    ("mpl", r"Mozilla Public License"),
    ("artistic", r"Artistic License"),
    ("psf", r"PYTHON SOFTWARE FOUNDATION"),
    ("mit", r"Permission is hereby granted, free of charge"),
    ("bsd", r"Redistribution and use in source and binary forms"),
]
MIN_PER_CLASS = 30
MIN_PARAGRAPH_CHARS = 60


def licence_family(text: str) -> str | None:
    head = text[:3000]
    return next((name for name, pattern in FAMILIES if re.search(pattern, head, re.IGNORECASE)), None)


def build_task(raw: Path, dest: Path, seed: int = 0) -> dict[str, int]:
    """The demo task: paragraphs labelled with the licence family of their file (de-duplicated across files, so no
    paragraph is in two splits), families with at least 30 paragraphs, split 70/15/15 per family by a seeded
    shuffle. Writes train/dev/test.jsonl into `dest`; returns paragraphs per family."""
    by_family: dict[str, list[str]] = {}
    seen: set[str] = set()
    for path in sorted(Path(raw).glob("*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        family = licence_family(text)
        if family is None:
            continue
        for block in re.split(r"\n\s*\n", text):
            para = " ".join(block.split())
            key = para.lower()
            if len(para) < MIN_PARAGRAPH_CHARS or key in seen:
                continue
            seen.add(key)
            by_family.setdefault(family, []).append(para)
    kept = {f: p for f, p in sorted(by_family.items()) if len(p) >= MIN_PER_CLASS}
    if len(kept) < 2:
        raise EmptyInputError(
            f"the licence texts in {raw} give fewer than two licence families with {MIN_PER_CLASS}+ paragraphs; "
            "the demo task needs at least two classes."
        )
    rng = random.Random(seed)
    splits: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    for family, paras in kept.items():
        rng.shuffle(paras)
        n_dev = n_test = max(2, round(0.15 * len(paras)))
        splits["test"] += [{"text": t, "label": family} for t in paras[:n_test]]
        splits["dev"] += [{"text": t, "label": family} for t in paras[n_test : n_test + n_dev]]
        splits["train"] += [{"text": t, "label": family} for t in paras[n_test + n_dev :]]
    dest.mkdir(parents=True, exist_ok=True)
    for name, rows in splits.items():
        rng.shuffle(rows)
        (dest / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                            encoding="utf-8")  # fmt: skip
    log.info("demo task: %s", {f: len(p) for f, p in kept.items()})
    return {f: len(p) for f, p in kept.items()}


RECIPE = Path(__file__).with_name("demo.yaml")


def run_demo(out: Path, show_progress: bool = True, quick: bool = False):
    """Collect the licence texts, derive the task, and build the demo recipe into `out`; returns the build results.

    `quick` (tests): one epoch on 64 training paragraphs and short benches, the same stages otherwise.
    """
    from lmtailor.recipe import load_recipe, run_build

    out = Path(out)
    raw = out / "default-corpus"
    if not raw.exists():  # a rerun keeps it, so finished stages stay up to date
        collect_default_corpus(raw)
    build_task(raw, out / "task")
    overrides = {"work": str(out), "raw": str(raw), "task": str(out / "task")}
    if quick:
        overrides.update({"epochs": "1", "max_train": "64", "bench_repeat": "3"})
    recipe = load_recipe(RECIPE, overrides)
    return run_build(recipe, show_progress=show_progress)
