"""Shared fixtures (helpers for running corral live in tests/support.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import MARK_VAR, Live, kill_marked


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


@pytest.fixture(autouse=True)
def mark(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique id (`TEST_MARK`) in the environment of everything this test starts.

    On teardown whatever still carries it is killed, so a failing test never
    leaves processes behind (see `tests.support.marked_pids`).
    """
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
