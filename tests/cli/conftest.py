"""Fixtures for the black-box CLI tests (see helpers.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.helpers import MARK_VAR, Live, kill_marked


@pytest.fixture(autouse=True)
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique id in the environment of everything this test starts.

    On teardown whatever still carries it is killed, so a failing test never
    leaves processes behind.
    """
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARK_VAR, value)
    # a predictable child environment whatever pytest was started with
    monkeypatch.delenv("PYTHONUNBUFFERED", raising=False)
    yield value
    kill_marked(value)


@pytest.fixture
def live() -> Iterator[Callable[..., Live]]:
    """`live(*args, cwd=..., env=...)` starts corral in the background."""
    started: list[Live] = []

    def start(*args: str, cwd: Path | str, env: dict[str, str] | None = None) -> Live:
        proc = Live(*args, cwd=cwd, env=env)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.close()
