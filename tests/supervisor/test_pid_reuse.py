"""corral never signals a process group by its number alone.

Once an instance's group has emptied, its number is free: in a PID namespace
(corral as PID 1 of a container) the next process can take it, and a
`killpg` on the old number would hit that stranger.  Corral now signals only
groups that still have members among its own children.

The scenario: corral is PID 1 of a fresh PID namespace; `release` runs and
exits (its pid, say 2, is free again); from outside we enter the namespace
and make the next pid 2 (`/proc/sys/kernel/ns_last_pid`), then start a
stranger there as the leader of its own group 2, a child of our shell, not
of corral.  On SIGTERM corral must leave the stranger alone.  (Before:
`release.1`'s group "was still alive" on the stop, so the stranger got
SIGTERM.)  The stranger logs every signal it gets; web drains for a second,
so a SIGTERM sent to the stranger is logged long before corral exits and the
namespace goes away with it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pid1.harness import CorralFactory, descendants, running
from tests.supervisor.apps import cmdline, stat_fields
from tests.support import base_env, started_pids, wait_for

NSENTER = shutil.which("nsenter")
ATTEMPTS = 5  # another process of the namespace could take the pid first


@pytest.fixture
def corral(tmp_path: Path) -> Iterator[CorralFactory]:
    logdir = tmp_path / "corral-logs"
    logdir.mkdir()
    factory = CorralFactory(logdir)
    try:
        yield factory
    finally:
        factory.cleanup()


def _ns_pid(pid: int) -> int | None:
    """The pid of host process `pid` in its own (innermost) namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        return None
    return None


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the nsenter process and whatever it started."""
    for p in [*descendants(proc.pid), None]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid if p is None else p.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def test_stop_never_signals_a_stranger_that_reused_a_group_number(app, corral):
    assert NSENTER, "nsenter(1) is required and was not found"
    d = app(Procfile="release: true\nweb: python3 drain.py web 1\n")
    c = corral("pid1", "start", cwd=d)
    wait_for(lambda: "web up" in c.out(), timeout=15)
    out = c.out()
    assert "release.1 completed (rc=0)" in out, out
    release = started_pids(out)["release.1"]  # as corral (PID 1 inside) sees it
    assert release > 1, out

    stranger = -1
    helpers: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(ATTEMPTS):
            (d / "stranger.ready").unlink(missing_ok=True)
            script = (
                f"cd {d} && echo {release - 1} > /proc/sys/kernel/ns_last_pid && "
                "{ setsid python3 child.py stranger ignore & wait; }"
            )
            helper = subprocess.Popen(
                [NSENTER, "--target", str(c.pid), "--pid", "--mount", "sh", "-c", script],
                env=base_env(),
                stdin=subprocess.DEVNULL,
            )
            helpers.append(helper)
            wait_for(lambda: (d / "stranger.ready").exists(), timeout=15)
            found = [
                p.pid
                for p in descendants(helper.pid)
                if "child.py" in cmdline(p.pid) and "stranger" in cmdline(p.pid)
            ]
            assert len(found) == 1, found
            if _ns_pid(found[0]) == release:
                stranger = found[0]
                break
            _stop(helper)  # someone else took the pid: try again
        assert stranger > 0, f"no stranger got pid {release} in {ATTEMPTS} attempts"
        # it leads its own group, whose number is release.1's old pid
        assert int(stat_fields(stranger)[2]) == stranger, stat_fields(stranger)
        # and it is not corral's child (corral would rightly stop an adoptee)
        assert int(stat_fields(stranger)[1]) != c.pid

        c.kill(signal.SIGTERM)
        wait_for(lambda: "web drained" in c.out() or not c.alive(), timeout=15)
        # while corral was stopping, the stranger ran on, unsignalled
        assert running(stranger), "the stranger was killed while corral stopped"
        rc = c.wait()
    finally:
        for helper in helpers:
            if helper.poll() is None:
                _stop(helper)
    out = c.out()
    assert rc == 143, (rc, out, c.err())
    assert "Traceback" not in c.err(), c.err()
    assert not (d / "stranger.sig").exists(), (
        f"the stranger (group {release} inside) got {(d / 'stranger.sig').read_text()!r}\n{out}"
    )
    assert not re.search(r"sending \S+ to release\.1", out), out
