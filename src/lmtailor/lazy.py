"""Names a package offers without importing the module that defines them until first use (PEP 562).

A stage package's `__init__` imports its config eagerly (torch-free, read by the CLI and recipes) and its `run`
functions lazily, so that reading any stage's config never pulls in torch, transformers or ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def lazy_names(package: str, homes: dict[str, str]) -> Callable[[str], object]:
    """A module `__getattr__` for `package` that imports `homes[name]` (a module path) when `name` is first used."""

    def __getattr__(name: str) -> object:
        if name in homes:
            return getattr(import_module(homes[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
