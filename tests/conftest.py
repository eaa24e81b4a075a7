"""Shared fixtures (helpers for running corral live in tests/support.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def app_dir(tmp_path: Path) -> Callable[..., Path]:
    """`app_dir(Procfile="web: ...", **{".env": "..."})` writes files, returns the dir."""

    def make(**files: str) -> Path:
        for name, content in files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        return tmp_path

    return make
