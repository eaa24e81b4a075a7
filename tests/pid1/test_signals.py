"""Signals sent to corral from outside (for PID 1: from the parent namespace).

Scenarios 2 (SIGTERM/SIGINT stop everything, 128+N), 3 (HUP, USR1, USR2,
QUIT, WINCH reach every child and its group; corral keeps running) and 10 (a
second SIGTERM skips the grace period).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.pid1.harness import CorralFactory, describe, helper, pids_with_arg, read_lines, unique
from tests.support import wait_for

FORWARDED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGQUIT, signal.SIGWINCH)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_stop_signal_stops_everything(mode: str, stop: int, corral: CorralFactory, app_dir) -> None:
    a, b, gc = unique(), unique(), unique()
    app = app_dir(
        Procfile=(
            f"web: exec sleep {a}\n"
            # a grandchild in the worker's group, and the worker shell itself
            f"worker: sleep {gc} & sleep {b}; wait\n"
        )
    )
    c = corral(mode, "start", "-t", "5", cwd=app)
    wait_for(lambda: all(pids_with_arg(m) for m in (a, b, gc)), timeout=10)
    began = time.monotonic()
    rc = c.stop(stop)
    took = time.monotonic() - began
    assert rc == 128 + stop, f"rc {rc}; stderr: {c.err()!r}"
    # every process here dies of the stop signal: no SIGKILL, no grace needed
    assert took < 4, f"stopping took {took:.1f}s (grace is 5s)"
    left = [p for m in (a, b, gc) for p in pids_with_arg(m)] + c.leftovers()
    assert left == [], describe(left)


def test_forwarded_signals_reach_every_child(
    mode: str, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    logs = {n: tmp_path / f"{n}.log" for n in ("a", "b", "b_gc")}
    ready = {n: tmp_path / f"{n}.ready" for n in logs}

    def catcher(n: str) -> str:
        return f"{helper('catcher.py')} {logs[n]} --ready {ready[n]} --exit-on TERM=0"

    app = app_dir(
        Procfile=(
            f"a: exec {catcher('a')}\n"
            # b's grandchild shares b's process group: group delivery reaches it
            f"b: {catcher('b_gc')} & exec {catcher('b')}\n"
        )
    )
    c = corral(mode, "start", "-t", "1", cwd=app)
    wait_for(lambda: all(r.exists() for r in ready.values()), timeout=10)

    expected: list[str] = []
    for signum in FORWARDED:
        c.kill(signum)
        expected.append(str(int(signum)))
        try:
            wait_for(lambda: all(read_lines(p) == expected for p in logs.values()), timeout=5)
        except AssertionError:
            got = {n: read_lines(p) for n, p in logs.items()}
            raise AssertionError(
                f"after {signal.Signals(signum).name}: expected {expected} in every log, "
                f"got {got}; corral alive: {c.alive()}"
            ) from None
        assert c.alive(), f"corral exited after {signal.Signals(signum).name}: rc {c.rc}"

    rc = c.stop(signal.SIGTERM)
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    for n, p in logs.items():
        assert read_lines(p) == [*expected, "15"], n
    assert c.leftovers() == [], describe(c.leftovers())


def test_second_sigterm_skips_grace(
    mode: str, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    log, ready = tmp_path / "stubborn.log", tmp_path / "stubborn.ready"
    s = unique()
    app = app_dir(
        Procfile=(
            f"deaf: trap '' TERM; exec sleep {s}\n"
            # catches TERM, records it and keeps running: tells us when the
            # first TERM has been handled (so the second is not merged with it)
            f"stubborn: exec {helper('catcher.py')} {log} --ready {ready}\n"
        )
    )
    c = corral(mode, "start", "-t", "30", cwd=app)
    wait_for(lambda: ready.exists() and pids_with_arg(s), timeout=10)
    c.kill(signal.SIGTERM)
    wait_for(lambda: read_lines(log) == ["15"], timeout=5)
    # corral says, a second into its grace period, whom it still waits for
    try:
        wait_for(lambda: "still waiting for" in c.out() or not c.alive(), timeout=10)
    except AssertionError:
        raise AssertionError(f"no `still waiting for` notice:\n{c.out()}") from None
    assert c.alive(), f"corral exited although the grace period (30s) is not over:\n{c.out()}"
    began = time.monotonic()
    rc = c.stop(signal.SIGTERM, timeout=15)
    took = time.monotonic() - began
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    assert took < 10, f"the second SIGTERM took {took:.1f}s to stop corral (grace 30s)"
    left = pids_with_arg(s) + c.leftovers()
    assert left == [], describe(left)
