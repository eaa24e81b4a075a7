"""A stop signal ends corral while it is still loading its files.

A FIFO named as the Procfile blocks the open until someone writes to it.
(Before: corral.boot held every signal blocked until the supervisor took
over, so `corral start` and `corral check` hung there for good.)
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.supervisor.apps import wchan
from tests.support import assert_no_traceback, assert_nothing_left, timed, wait_for

STOP_BOUND = 5.0  # upper bound, SIGTERM -> exit


@pytest.mark.parametrize("command", ["start", "check"])
def test_sigterm_while_blocked_opening_a_fifo_procfile(tmp_path, live, mark, command):
    os.mkfifo(tmp_path / "Procfile")
    c = live(command, cwd=tmp_path)
    # corral sleeps in open(2), waiting for a writer to the FIFO
    # (fifo_open's wait), for the other end to open
    wait_for(lambda: c.proc.poll() is not None or wchan(c.pid) == "wait_for_partner", timeout=15)
    assert c.proc.poll() is None, f"corral exited with {c.proc.returncode}"
    c.send(signal.SIGTERM)
    r, took = timed(lambda: c.finish(timeout=STOP_BOUND))
    assert took < STOP_BOUND
    assert_no_traceback(r)
    assert r.rc == 143, r
    assert "started (pid=" not in r.out, r.out
    assert_nothing_left(mark)
