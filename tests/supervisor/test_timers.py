"""Extreme timer settings do not crash the event loop.

- Restart back-off: `delay * 2**streak` overflowed a float after 1,024
  consecutive restarts (OverflowError traceback).
- A timer further away than epoll can wait (~24.8 days: a one-shot
  `timeout`, a restart `delay`) made the first wait fail with
  "timeout is too large".
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.supervisor.apps import wchan
from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    count,
    started_pids,
    wait_for,
)

# The doubling overflows a float at the 1,025th consecutive restart
# (streak 1024); a margin past it.
RESTARTS = 1050

FAST_RESTARTS = (
    "[processes.w]\n"
    'restart = { policy = "always", delay = 0.001, max_delay = 0.002, '
    "limit = 100000, window = 1 }\n"
)


def test_more_than_a_thousand_consecutive_restarts(app_dir, live, mark):
    d = app_dir(Procfile="w: true\n", **{"corral.toml": FAST_RESTARTS})
    c = live("start", cwd=d)
    # each restart prints `w.1 exited (rc=0); restarting in ...`; `true`
    # exits at once, so the streak never resets.  A generous bound: a
    # loaded 2-core machine manages ~50 restarts a second.
    wait_for(
        lambda: c.proc.poll() is not None or count(c.snapshot(), "restarting in") >= RESTARTS,
        timeout=120,
        interval=0.1,
    )
    assert c.proc.poll() is None, f"corral exited: {c.finish().err}"
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r.err
    assert count(r.out.splitlines(), "restarting in") >= RESTARTS
    assert_nothing_left(mark)


FAR_TIMERS = {
    # a month-long run timeout for a one-shot that is still running
    "oneshot-timeout": ("x: sleep 1000\n", "[processes.x]\noneshot = true\ntimeout = 3000000\n"),
    # a ~25-day back-off after the first failure
    "restart-delay": (
        "x: exit 1\n",
        '[processes.x]\nrestart = { policy = "on-failure", delay = 2200000, '
        "max_delay = 2200000 }\n",
    ),
}


@pytest.mark.parametrize("case", list(FAR_TIMERS))
def test_timer_further_than_epoll_can_wait(app_dir, live, mark, case):
    procfile, toml = FAR_TIMERS[case]
    d = app_dir(Procfile=procfile, **{"corral.toml": toml})
    c = live("start", cwd=d)
    c.wait_line("x.1 started")
    x = started_pids("\n".join(c.snapshot()))["x.1"]
    if case == "restart-delay":
        # corral has reaped it (its pid is gone): the back-off timer is set
        wait_for(lambda: not os.path.exists(f"/proc/{x}"), timeout=10)
    # the next wait is the one with the far timer: corral must get into it
    # (a wait seen now started after the timer was set), and stay there
    wait_for(lambda: c.proc.poll() is not None or "epoll" in wchan(c.pid), timeout=10)
    assert c.proc.poll() is None, f"corral exited with {c.proc.returncode}"
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    if case == "restart-delay":
        assert "x.1 exited (rc=1); restarting in 2200000.0s" in r.out, r.out
    assert_nothing_left(mark)


def test_exit_reaped_at_start_up_is_reported_at_once(app_dir, live, mark):
    """A child that exits while the others are still being spawned: its
    restart notice is shown then, not at the next wakeup (here the restart,
    60 s later).  Twenty spawns after it give it time to exit first."""
    d = app_dir(
        Procfile="x: exit 1\nidle: sleep 1000\n",
        **{"corral.toml": '[processes.x]\nrestart = { policy = "on-failure", delay = 60 }\n'},
    )
    c = live("start", "-c", "idle=20", cwd=d)
    c.wait_line("idle.20 started")
    c.wait_line("x.1 exited (rc=1); restarting in")
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    assert_nothing_left(mark)
