"""Who corral supervises, and when an instance counts as stopped.

A simple Procfile command runs as `/bin/sh -c 'exec CMD'`: the app itself is
corral's child, so a stop signal reaches it and corral waits for *its* exit.
A compound command runs under the shell; the instance then counts as stopped
only once its whole process group is gone, whatever the shell did.  Either
way a dependency (`after = ["db"]`) is stopped only after its dependent has
drained.  (Before: dash forked the app; on SIGTERM the shell died at once,
corral printed `web.1 stopped (rc=143)` while the app was still draining,
and stopped db under it.)
"""

from __future__ import annotations

import re
import signal

import pytest

from tests.supervisor.apps import cmdline, is_python, stat_fields
from tests.support import (
    Live,
    assert_no_traceback,
    assert_nothing_left,
    count,
    in_order,
    index,
    marked_pids,
    started_pids,
    system,
)

AFTER_DB = '[processes.web]\nafter = ["db"]\n'

# web drains for 1 s, db for 0.5 s; both print `NAME drained` when done
STOP_ORDER = (
    "web drained",
    "web.1 stopped (rc=0)",
    "sending SIGTERM to db.1",
    "db drained",
    "db.1 stopped (rc=0)",
)


def _start(live, d, *args: str) -> Live:
    c = live("start", *args, cwd=d)
    c.wait_line("db up")
    c.wait_line("web up")
    return c


def _check_stop_order(lines: list[str]) -> None:
    in_order(lines, "SIGTERM received", *STOP_ORDER)
    # the dependency gets its stop signal only once web's stop is reported
    assert count(lines, "sending SIGTERM to db.1") == 1, "\n".join(lines)
    assert not any(re.search(r"web\.1 stopped \(rc=(?!0\))", line) for line in lines), lines


def test_simple_command_is_corral_s_own_child_and_drains_before_its_dependency(app, live, mark):
    d = app(
        Procfile="db: python3 drain.py db 0.5\nweb: python3 drain.py web 1\n",
        **{"corral.toml": AFTER_DB},
    )
    c = _start(live, d)
    pids = started_pids("\n".join(c.snapshot()))
    for name in ("db.1", "web.1"):
        pid = pids[name]
        # the reported pid is the app itself (exec'd by its shell), not `sh`
        assert is_python(pid), f"{name} pid {pid} runs {cmdline(pid)}"
        assert "drain.py" in cmdline(pid), cmdline(pid)
        assert int(stat_fields(pid)[1]) == c.pid, f"{name} is not corral's child"
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    lines = r.out.splitlines()
    _check_stop_order(lines)
    in_order(lines, f"sending SIGTERM to web.1 (pid {pids['web.1']})", "web drained")
    assert "SIGKILL" not in r.out, r.out
    assert_nothing_left(mark)


COMPOUND_WEB = {
    "and-list": "cd . && python3 drain.py web 1",
    "pipeline": "true | python3 drain.py web 1",
    "assignment": "FOO=1 python3 drain.py web 1",
}


@pytest.mark.parametrize("case", list(COMPOUND_WEB))
def test_compound_command_counts_as_stopped_when_its_group_is_gone(app, live, mark, case):
    d = app(
        Procfile=f"db: python3 drain.py db 0.5\nweb: {COMPOUND_WEB[case]}\n",
        **{"corral.toml": AFTER_DB},
    )
    c = _start(live, d)
    web = started_pids("\n".join(c.snapshot()))["web.1"]
    # the shell runs it (dash forks for a compound command): the shell is the
    # instance's process and leads the group the app is in
    assert not is_python(web), cmdline(web)
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    lines = r.out.splitlines()
    _check_stop_order(lines)
    # while the app drains after its shell died, corral names the group
    for line in system(r.out):
        if "still waiting for" in line and "web.1" in line:
            assert re.search(rf"web\.1 \((?:pid|group) {web}\)", line), line
    assert "SIGKILL" not in r.out, r.out
    assert_nothing_left(mark)


def test_compound_command_whose_app_ignores_sigterm_gets_one_group_sigkill(app, live, mark):
    d = app(Procfile="web: cd . && python3 stubborn.py web\n")
    c = live("start", "-t", "1", cwd=d)
    c.wait_line("web up")
    web = started_pids("\n".join(c.snapshot()))["web.1"]
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    lines = system(r.out)
    # the shell died of SIGTERM, the app lived on: the group is killed
    in_order(
        lines,
        f"sending SIGTERM to web.1 (pid {web})",
        f"sending SIGKILL to web.1 (group {web})",
        "web.1 stopped (rc=",
    )
    assert count(lines, "sending SIGKILL") == 1, "\n".join(lines)
    assert count(lines, "web.1 stopped") == 1, "\n".join(lines)
    assert_nothing_left(mark)


def test_leftover_daemon_of_a_completed_oneshot_is_stopped_with_it(app, live, mark):
    d = app(Procfile="daemon: sh -c 'sleep 300 &'\nweb: sleep 1000\n")
    c = live("start", "--oneshot", "daemon", cwd=d)
    c.wait_line("daemon.1 completed (rc=0)")
    c.wait_line("web.1 started")
    daemon = started_pids("\n".join(c.snapshot()))["daemon.1"]
    # the daemon sleep is still running, in the one-shot's process group
    assert pids_in_group(mark, daemon), (
        "the one-shot left no daemon behind: the scenario did not happen"
    )
    c.send(signal.SIGTERM)
    r = c.finish(timeout=20)
    assert_no_traceback(r)
    assert r.rc == 143, r
    lines = system(r.out)
    i = index(lines, "SIGTERM received")
    index(lines, f"sending SIGTERM to daemon.1 (group {daemon})", i)
    assert "SIGKILL" not in r.out, r.out
    assert_nothing_left(mark)


def pids_in_group(mark: str, pgid: int) -> list[int]:
    """This test's live processes in process group `pgid`."""
    return [p for p in marked_pids(mark) if (f := stat_fields(p)) and int(f[2]) == pgid]
