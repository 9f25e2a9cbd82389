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
