"""Fixtures for the supervisor tests (`mark`, `live`, `app_dir` are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.supervisor.apps import SCRIPTS


@pytest.fixture
def app(app_dir: Callable[..., Path]) -> Callable[..., Path]:
    """Like `app_dir`, with drain.py, stubborn.py and child.py always present."""

    def make(**files: str) -> Path:
        return app_dir(**{**SCRIPTS, **files})

    return make
