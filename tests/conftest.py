"""Shared fixtures (helpers for running corral live in tests/support.py)."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import MARK_VAR, Live, kill_marked


def _ignore_quietly(signum: int, frame: object) -> None:
    """Stands in for an inherited SIG_IGN: exec resets it to the default."""


def pytest_configure(config: pytest.Config) -> None:
    """Every process the tests start gets the default action for every signal,
    however the run itself was launched.

    A signal ignored when corral starts stays ignored, by design (`nohup`,
    `&`); a suite started under `nohup` or as a background job of a script
    (SIGINT and SIGQUIT ignored) would then see corral deaf to SIGHUP or
    SIGINT and fail.  So an inherited SIG_IGN becomes a handler that does
    nothing: this run still survives the signal, and exec gives every child
    the default.  (SIGPIPE and SIGXFSZ are Python's own; subprocess restores
    them.  The tests that give corral ignored signals set them on purpose.)
    """
    for signum in signal.valid_signals():
        if signum in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGKILL, signal.SIGSTOP):
            continue
        if signal.getsignal(signum) == signal.SIG_IGN:
            handler = signal.default_int_handler if signum == signal.SIGINT else _ignore_quietly
            signal.signal(signum, handler)


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
