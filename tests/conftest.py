"""Shared fixtures: where ../shared/data is, and a skip for tests that need it."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real datasets beside the checkout; tests using it are marked `data` and skip when it is absent."""
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is absent")
    return DATA


@pytest.fixture(autouse=True)
def _logging_as_it_was():
    """A CLI test runs the CLI's callback in this process, which sets up logging for a command line (handlers on the
    root logger, lmtailor's level, transformers' verbosity); put it back, so later tests see Python's defaults as a
    fresh process would."""
    import logging

    root, own, hf = logging.getLogger(), logging.getLogger("lmtailor"), logging.getLogger("transformers")
    saved = (list(root.handlers), root.level, own.level, hf.level)  # hf: transformers' verbosity, quieted by the CLI
    yield
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    own.setLevel(saved[2])
    hf.setLevel(saved[3])
