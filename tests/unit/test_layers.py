"""The module graph: imports point one way (shared layers below the stages, stages in journey order), no module
imports itself round a circle, and every stage config can be read without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import lmtailor

SRC = Path(lmtailor.__file__).parent
# Low to high. Shared layers first; a stage may import any lower layer, never a higher one.
RANK = {"": 0, "errors": 0, "config": 0, "scripts": 0, "hardware": 0, "lazy": 0, "locks": 0, "outputs": 0, "display": 0,
        "models": 1, "corpus": 2, "tasks": 3, "terms": 4, "tokenizer": 5, "vocab": 6, "baseline": 6, "train": 7,
        "shards": 7, "compress": 8, "export": 9, "report": 10}  # fmt: skip
TOP = 99  # cli, commands, stages, recipe, demo: they compose everything
# The corpus stage reads labelled NER files as documents (`ner_inputs`) with the task readers, which themselves
# decode files with the corpus's encoding sniffer; the reader imports them inside a function.
KNOWN_UPWARD = {("lmtailor.corpus.readers", "lmtailor.tasks.readers")}
CONFIGS = [
    "models",
    "corpus",
    "terms",
    "tokenizer",
    "vocab",
    "train",
    "tasks",
    "compress",
    "export",
    "report",
    "serve",
    "augment",
    "baseline",
    "shards",
    "update",
]
HEAVY = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers", "sklearn", "matplotlib", "datasketch")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(SRC.rglob("*.py")):
        name = ".".join(("lmtailor", *path.relative_to(SRC).with_suffix("").parts))
        out[name.removesuffix(".__init__")] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of other lmtailor modules, at module level or inside functions."""

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [resolve(a.name) for a in node.names if a.name.startswith("lmtailor")]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lmtailor"):
                found = [resolve(f"{node.module}.{a.name}") for a in node.names]  # a submodule, else the module
            else:
                continue
            edges[module].update(t for t in found if t and t != module)
    return edges


def _layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_imports_point_down_the_layers():
    edges = _imports(_modules())
    upward = {(m, t) for m, targets in edges.items() for t in targets
              if _layer(m) != _layer(t) and RANK.get(_layer(t), TOP) > RANK.get(_layer(m), TOP)}  # fmt: skip
    assert upward == KNOWN_UPWARD


def test_no_module_imports_itself_round_a_circle():
    edges = _imports(_modules())
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(edges[module]):
            assert state.get(target) != 1, " -> ".join([*path[path.index(target) :], target])
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


def test_stage_configs_and_the_cli_import_no_torch():
    # the CLI too: `lmtailor --help` and recipe validation pay for no stage's libraries
    code = (f"import sys; import lmtailor.cli, {', '.join(f'lmtailor.{c}.config' for c in CONFIGS)}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")  # fmt: skip
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
