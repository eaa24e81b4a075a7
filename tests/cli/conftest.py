"""Fixtures for the black-box CLI tests (`mark` and `live` are in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_pythonunbuffered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A predictable child environment whatever pytest was started with."""
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
