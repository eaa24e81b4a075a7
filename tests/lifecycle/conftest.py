"""Fixtures for the lifecycle tests: a per-test mark for clean-up, live corral runs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.lifecycle.helpers import CHILD, MARK_VAR, Live, kill_marked


@pytest.fixture(autouse=True)
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique id in the environment of everything the test starts; on
    teardown whatever still carries it is killed."""
    value = uuid.uuid4().hex
    monkeypatch.setenv(MARK_VAR, value)
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


@pytest.fixture
def app(app_dir: Callable[..., Path]) -> Callable[..., Path]:
    """Like `app_dir`, with the signal-reporting `child.py` always present."""

    def make(**files: str) -> Path:
        return app_dir(**{"child.py": CHILD, **files})

    return make
