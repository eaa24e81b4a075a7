"""What corral waits for and what it leaves behind.

Scenario 4: an adopted orphan's exit is not an app exit.
Scenario 5: `setsid` escapees (another session: killpg misses them) are gone
            once corral has exited, after a stop and after a first exit.
Scenario 7: corral waits for the whole tree: a grandchild that needs 1 s to
            shut down cleanly finishes before corral exits (tini/dumb-init
            exit at once and the kernel SIGKILLs it).
Scenario 8: a launcher that forks a daemon and exits counts as that process
            exiting; the daemon is stopped too.
Scenario 11: stdout closed by the reader (`corral start | head -n 1`).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.pid1.harness import (
    CorralFactory,
    describe,
    exists,
    helper,
    idle_in_loop,
    pids_with_arg,
    read_stat,
    running,
    unique,
)
from tests.support import wait_for


def test_adopted_orphan_exit_does_not_stop_the_app(
    mode: str, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    info = tmp_path / "orphan.info"
    launcher_sleep, web_sleep = unique(), unique()
    app = app_dir(
        Procfile=(
            # orphan.py leaves an orphan (own session) that exits 7 a second later
            f"launcher: {helper('orphan.py')} {info} --delay 1 --code 7; "
            f"exec sleep {launcher_sleep}\n"
            f"web: exec sleep {web_sleep}\n"
        )
    )
    c = corral(mode, "start", "-t", "1", cwd=app)
    wait_for(info.exists, timeout=10)
    orphan_pid_inner, new_parent = (int(x) for x in info.read_text().split())
    assert new_parent == c.inner_pid, (
        f"the orphan was re-parented to {new_parent}, not to corral ({c.inner_pid})"
    )
    # find the orphan in our namespace: corral's child that is not a group leader
    orphans = [p for p in c.tree() if p.ppid == c.pid and p.pgid != p.pid]
    assert len(orphans) == 1, describe(p.pid for p in c.tree())
    orphan = orphans[0].pid
    if mode == "subreaper":
        assert orphan == orphan_pid_inner
    # it exits (code 7) and is reaped: gone from the process table, not a zombie
    wait_for(lambda: not exists(orphan), timeout=10)
    # corral reacted to that reap, whatever it did, once it is idle again; a
    # corral that took it for an app exit would be stopping (grace timer)
    # or gone
    try:
        wait_for(lambda: idle_in_loop(c.pid) or not c.alive(), timeout=10)
    except AssertionError:
        raise AssertionError(f"corral did not go idle after the reap:\n{c.out()}") from None
    assert c.alive(), f"corral stopped after an adopted orphan exited: rc {c.popen.poll()}"
    assert "stopped" not in c.out() and "sending" not in c.out(), c.out()
    for marker in (launcher_sleep, web_sleep):
        assert pids_with_arg(marker), f"app process `sleep {marker}` is gone:\n{c.out()}"
    rc = c.stop(signal.SIGTERM)
    assert rc == 143, f"rc {rc} (the orphan's 7 must not count); stderr: {c.err()!r}"
    assert c.leftovers() == [], describe(c.leftovers())


@pytest.mark.parametrize("how", ["sigterm", "first-exit"])
def test_setsid_escapees_are_gone_after_exit(
    mode: str, how: str, corral: CorralFactory, app_dir
) -> None:
    escapee, web = unique(), unique()
    if how == "sigterm":
        esc_line = f"escapee: setsid sleep {escapee} & exec sleep {unique()}\n"
    else:
        # the escapee's parent exits after starting it: the first exit stops the app
        esc_line = f"escapee: setsid sleep {escapee} & sleep 0.5; exit 0\n"
    app = app_dir(Procfile=esc_line + f"web: exec sleep {web}\n")
    c = corral(mode, "start", "-t", "1", cwd=app)
    if how == "sigterm":
        pids = wait_for(lambda: pids_with_arg(escapee), timeout=10)
        assert isinstance(pids, list)
        p = read_stat(pids[0])
        assert p is not None and p.sid == p.pid, "the escapee did not get its own session"
        rc = c.stop(signal.SIGTERM)
        assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    else:
        rc = c.wait(timeout=10)
        assert rc == 0, f"rc {rc}; stderr: {c.err()!r}"
    # corral has exited: nothing of the app may survive it, not even for a moment
    left = pids_with_arg(escapee) + pids_with_arg(web) + c.leftovers()
    assert left == [], f"left behind after corral exited:\n{describe(set(left))}"


@pytest.mark.parametrize("detached", [False, True], ids=["same-group", "own-session"])
def test_waits_for_grandchild_clean_shutdown(
    mode: str, detached: bool, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    """The service leader dies at once on SIGTERM; its grandchild needs 1 s."""
    ready, marker = tmp_path / "gc.ready", tmp_path / "gc.clean"
    prefix = "setsid " if detached else ""
    leader = unique()
    app = app_dir(
        Procfile=(
            f"svc: {prefix}{helper('slowstop.py')} {ready} {marker} --delay 1 & "
            f"exec sleep {leader}\n"
        )
    )
    c = corral(mode, "start", "-t", "10", cwd=app)
    wait_for(lambda: ready.exists() and pids_with_arg(leader), timeout=10)
    gc = int(ready.read_text()) if mode == "subreaper" else None
    began = time.monotonic()
    rc = c.stop(signal.SIGTERM, timeout=15)
    took = time.monotonic() - began
    assert marker.exists(), (
        "the grandchild was killed before it could finish its clean shutdown "
        f"(corral exited after {took:.1f}s, rc {rc})"
    )
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    # it took ~1 s: nowhere near the 10 s grace (no SIGKILL wait needed)
    assert took < 8, f"stopping took {took:.1f}s"
    if gc is not None:
        assert not running(gc)
    assert c.leftovers() == [], describe(c.leftovers())


def test_launcher_that_daemonises_counts_as_exit(mode: str, corral: CorralFactory, app_dir) -> None:
    daemon, web = unique(), unique()
    app = app_dir(Procfile=f"daemon: sh -c 'sleep {daemon} &'\nweb: exec sleep {web}\n")
    c = corral(mode, "start", "-t", "1", cwd=app)
    rc = c.wait(timeout=10)  # corral stops by itself: the launcher exited 0
    assert rc == 0, f"rc {rc}; stdout: {c.out()!r} stderr: {c.err()!r}"
    left = pids_with_arg(daemon) + pids_with_arg(web) + c.leftovers()
    assert left == [], f"left behind after corral exited:\n{describe(set(left))}"


def test_closed_stdout_stops_everything(mode: str, corral: CorralFactory, app_dir) -> None:
    """`corral start | head -n 1`, with the pipe under our control."""
    tag, web = f"chatty-{unique()}", unique()
    app = app_dir(
        Procfile=(
            f"chatty: exec sh -c 'while true; do echo hi; sleep 0.01; done' {tag}\n"
            f"web: exec sleep {web}\n"
        )
    )
    c = corral(mode, "start", "-t", "1", cwd=app, stdout=subprocess.PIPE)
    pipe = c.popen.stdout
    assert pipe is not None
    fd = pipe.fileno()
    got = b""
    deadline = time.monotonic() + 10
    while b"\n" not in got:
        assert time.monotonic() < deadline, f"no output line from corral: {got!r}"
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 1)  # like head: read no further than one line
            assert chunk, "corral closed its stdout before writing a line"
            got += chunk
    wait_for(lambda: pids_with_arg(tag), timeout=10)
    pipe.close()  # `head` exits
    rc = c.wait(timeout=10)
    err = c.err()
    assert "Traceback" not in err, err
    assert "BrokenPipeError" not in err and "Exception ignored" not in err, err
    left = pids_with_arg(tag) + pids_with_arg(web) + c.leftovers()
    assert left == [], f"rc {rc}; left behind:\n{describe(set(left))}"
