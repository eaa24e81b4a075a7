"""A stopped (SIGSTOP) child still shuts down: its stop signal is followed by
SIGCONT.  And SIGKILL is sent at most once per instance.

(Before: a SIGSTOPped child never ran its handler until the grace ran out
and SIGKILL came; the per-instance kill and the overall kill could both
report `sending SIGKILL` for the same instance.)
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.supervisor.apps import stat_fields
from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    count,
    in_order,
    started_pids,
    system,
    timed,
    wait_for,
)


def _stop(pid: int) -> None:
    """SIGSTOP `pid` and wait until it is really stopped."""
    os.kill(pid, signal.SIGSTOP)
    wait_for(lambda: stat_fields(pid)[:1] == ["T"], timeout=10)


def _events(d: Path) -> list[str]:
    try:
        return [line.split()[1] for line in (d / "events.log").read_text().splitlines()]
    except FileNotFoundError:
        return []


def test_sigstopped_child_runs_its_stop_handler_without_waiting_for_the_grace(app, live, mark):
    # child.py logs the signal, then exits 3
    d = app(Procfile="web: python3 child.py web exit 0 3\n")
    c = live("start", "-t", "20", cwd=d)
    c.wait_line("web ready")
    web = started_pids("\n".join(c.snapshot()))["web.1"]
    _stop(web)
    c.send(signal.SIGTERM)
    # the grace is 20 s: only the SIGCONT after SIGTERM lets it end sooner
    r, took = timed(lambda: c.finish(timeout=10))
    assert took < 10, took
    assert_no_traceback(r)
    assert r.rc == 143, r
    assert _events(d) == ["SIGTERM", "exit"], _events(d)
    lines = system(r.out)
    in_order(lines, f"sending SIGTERM to web.1 (pid {web})", "web.1 stopped (rc=3)")
    assert "SIGKILL" not in r.out, r.out
    assert_nothing_left(mark)


@pytest.mark.parametrize("stopped", [False, True], ids=["running", "sigstopped"])
def test_child_ignoring_its_stop_signal_gets_exactly_one_sigkill(app, live, mark, stopped):
    d = app(Procfile="web: python3 child.py web ignore\n")
    c = live("start", "-t", "1", cwd=d)
    c.wait_line("web ready")
    web = started_pids("\n".join(c.snapshot()))["web.1"]
    if stopped:
        _stop(web)
    c.send(signal.SIGTERM)
    r = c.finish(timeout=15)
    assert_no_traceback(r)
    assert r.rc == 143, r
    lines = system(r.out)
    assert count(lines, "sending SIGKILL") == 1, "\n".join(lines)
    in_order(
        lines,
        f"sending SIGTERM to web.1 (pid {web})",
        f"sending SIGKILL to web.1 (pid {web})",
        "web.1 stopped (rc=",
    )
    assert count(lines, "web.1 stopped") == 1, "\n".join(lines)
    # it was running again (SIGCONT) and saw the SIGTERM it ignores
    assert _events(d) == ["SIGTERM"], _events(d)
    assert_nothing_left(mark)
