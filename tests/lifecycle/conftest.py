"""Fixtures for the lifecycle tests (`mark` and `live` are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lifecycle.helpers import CHILD


@pytest.fixture
def app(app_dir: Callable[..., Path]) -> Callable[..., Path]:
    """Like `app_dir`, with the signal-reporting `child.py` always present."""

    def make(**files: str) -> Path:
        return app_dir(**{"child.py": CHILD, **files})

    return make
