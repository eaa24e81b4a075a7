"""Fixtures for the PID 1 / init-behaviour tests (see harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pid1.harness import MODES, UNSHARE, CorralFactory


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """Every scenario runs twice: corral as PID 1, and corral as a subreaper."""
    if request.param == "pid1":
        # Not a skip: without unshare(1) the PID 1 half of the suite cannot run.
        assert UNSHARE, "unshare(1) is required for the PID 1 tests and was not found"
    return str(request.param)


@pytest.fixture
def corral(tmp_path: Path) -> Iterator[CorralFactory]:
    """Start corral processes; every one (and all it started) is killed afterwards."""
    logdir = tmp_path / "corral-logs"
    logdir.mkdir()
    factory = CorralFactory(logdir)
    try:
        yield factory
    finally:
        factory.cleanup()
