"""Stop signals, grace periods and shutdown order, observed by the children."""

from __future__ import annotations

import re
import signal

import pytest

from tests.lifecycle.helpers import wait_files
from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    in_order,
    index,
    run_corral,
    system,
    timed,
)

# worker reports the signal it gets; stopper ends the run once worker is set up
STOP_PROCFILE = (
    "worker: exec python3 child.py worker\n"
    f"stopper: {wait_files('worker.ready')}; sleep 0.1; exit 0\n"
)

STOP_SIGNAL_CASES = {
    "default": ((), {}, {}, "SIGTERM"),
    "option-INT": (("--stop-signal", "worker=INT"), {}, {}, "SIGINT"),
    "option-SIGUSR1": (("--stop-signal", "worker=SIGUSR1"), {}, {}, "SIGUSR1"),
    "option-number": (("--stop-signal", f"worker={int(signal.SIGHUP)}"), {}, {}, "SIGHUP"),
    "toml-QUIT": (
        (),
        {},
        {"corral.toml": '[processes.worker]\nstop_signal = "QUIT"\n'},
        "SIGQUIT",
    ),
    "pyproject-QUIT": (
        (),
        {},
        {"pyproject.toml": '[tool.corral.processes.worker]\nstop_signal = "quit"\n'},
        "SIGQUIT",
    ),
    "env-INT": ((), {"CORRAL_STOP_SIGNAL": "worker=INT"}, {}, "SIGINT"),
    "option-beats-toml": (
        ("--stop-signal", "worker=INT"),
        {},
        {"corral.toml": '[processes.worker]\nstop_signal = "QUIT"\n'},
        "SIGINT",
    ),
    "env-beats-toml": (
        (),
        {"CORRAL_STOP_SIGNAL": "worker=USR2"},
        {"corral.toml": '[processes.worker]\nstop_signal = "QUIT"\n'},
        "SIGUSR2",
    ),
}


@pytest.mark.parametrize("case", list(STOP_SIGNAL_CASES))
def test_stop_signal_observed_by_the_child(app, mark, case):
    args, env, files, expected = STOP_SIGNAL_CASES[case]
    d = app(Procfile=STOP_PROCFILE, **files)
    r = run_corral("start", "-t", "2", *args, cwd=d, env=env, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert (d / "worker.sig").read_text() == expected + "\n", r.out
    sys_lines = system(r.out)
    in_order(sys_lines, "stopper.1 stopped (rc=0)", f"sending {expected} to worker.1 (pid ")
    assert "SIGKILL" not in r.out
    assert "worker.1 stopped (rc=0)" in sys_lines
    assert_nothing_left(mark)


def test_each_group_gets_its_own_signal(app, mark):
    """One shutdown, three processes, three signals."""
    d = app(
        Procfile="a: exec python3 child.py a\nb: exec python3 child.py b\n"
        "c: exec python3 child.py c\n"
        f"stopper: {wait_files('a.ready', 'b.ready', 'c.ready')}; exit 0\n",
        **{"corral.toml": '[processes.b]\nstop_signal = "QUIT"\n'},
    )
    r = run_corral("start", "-t", "2", "--stop-signal", "a=INT", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert (d / "a.sig").read_text() == "SIGINT\n"
    assert (d / "b.sig").read_text() == "SIGQUIT\n"
    assert (d / "c.sig").read_text() == "SIGTERM\n"
    assert_nothing_left(mark)


def test_stop_signal_used_on_corral_sigterm(app, live, mark):
    """corral told to stop (SIGTERM) still sends each process its own signal."""
    d = app(Procfile="worker: exec python3 child.py worker\nweb: exec python3 child.py web\n")
    proc = live("start", "-t", "2", "--stop-signal", "worker=INT", cwd=d)
    proc.wait_line("worker ready")
    proc.wait_line("web ready")
    proc.send(signal.SIGTERM)
    r = proc.finish(timeout=10)
    assert r.rc == 128 + signal.SIGTERM, r
    assert (d / "worker.sig").read_text() == "SIGINT\n"
    assert (d / "web.sig").read_text() == "SIGTERM\n"
    assert_nothing_left(mark)


# -- shutdown order ------------------------------------------------------------


def _events(d):
    """events.log lines as (name, what, time)."""
    out = []
    for line in (d / "events.log").read_text().splitlines():
        name, what, when = line.split()
        out.append((name, what, float(when)))
    return out


def test_shutdown_order_web_before_db(app, live, mark):
    """web depends on db: on SIGTERM web is stopped first, and db gets its
    signal only once web has exited (web needs ~0.5 s to exit)."""
    d = app(
        Procfile="db: exec python3 child.py db exit 0\nweb: exec python3 child.py web exit 0.5\n"
    )
    proc = live("start", "-t", "5", "--after", "web:db", cwd=d)
    proc.wait_line("web ready")
    proc.send(signal.SIGTERM)
    r = proc.finish(timeout=15)
    assert_no_traceback(r)
    assert r.rc == 143, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "SIGTERM received",
        "sending SIGTERM to web.1",
        "web.1 stopped (rc=0)",
        "sending SIGTERM to db.1",
        "db.1 stopped (rc=0)",
    )
    assert "SIGKILL" not in r.out
    ev = _events(d)
    assert [(n, w) for n, w, _ in ev] == [
        ("web", "SIGTERM"),
        ("web", "exit"),
        ("db", "SIGTERM"),
        ("db", "exit"),
    ], ev
    web_exit = ev[1][2]
    db_term = ev[2][2]
    assert db_term >= web_exit, ev
    assert ev[1][2] - ev[0][2] >= 0.45  # web really took its time
    assert_nothing_left(mark)


def test_shutdown_says_whom_it_still_waits_for(app, live, mark):
    """web takes ~1.6 s to stop: corral says it is still waiting for web.1,
    and db (which web depends on) is told only afterwards."""
    d = app(
        Procfile="db: exec python3 child.py db exit 0\n"
        "web: exec python3 child.py web exit 1.6\n"
        "cache: exec python3 child.py cache exit 0\n",
    )
    proc = live("start", "-t", "5", "--after", "web:db+cache", cwd=d)
    proc.wait_line("web ready")
    proc.send(signal.SIGTERM)
    r = proc.finish(timeout=15)
    assert_no_traceback(r)
    assert r.rc == 143, r
    sys_lines = system(r.out)
    web_pid = re.search(r"web\.1 started \(pid=(\d+)\)", r.out).group(1)
    waiting = [line for line in sys_lines if line.startswith("still waiting for")]
    assert waiting, sys_lines
    assert f"web.1 (pid {web_pid})" in waiting[0], waiting
    in_order(
        sys_lines,
        "sending SIGTERM to web.1",
        "still waiting for",
        "web.1 stopped",
        "sending SIGTERM to db.1",
    )
    assert index(sys_lines, "sending SIGTERM to cache.1") > index(sys_lines, "web.1 stopped")
    assert "SIGKILL" not in r.out
    assert_nothing_left(mark)


def test_shutdown_order_on_a_crash(app, mark):
    """The same order when a process exit (not a signal) stops the group."""
    d = app(
        Procfile="db: exec python3 child.py db exit 0\n"
        "web: exec python3 child.py web exit 0.3\n"
        f"job: {wait_files('web.ready')}; exit 3\n"
    )
    r = run_corral("start", "-t", "5", "--after", "web:db,job:db", cwd=d, timeout=20)
    assert r.rc == 3, r
    in_order(
        system(r.out),
        "job.1 stopped (rc=3)",
        "sending SIGTERM to web.1",
        "web.1 stopped",
        "sending SIGTERM to db.1",
    )
    ev = _events(d)
    assert [(n, w) for n, w, _ in ev][:3] == [
        ("web", "SIGTERM"),
        ("web", "exit"),
        ("db", "SIGTERM"),
    ]
    assert_nothing_left(mark)


def test_shutdown_of_stubborn_chain_is_bounded(app, live, mark):
    """web and db both ignore SIGTERM (-t 0.5): web is killed after its grace,
    then db gets its signal and is killed after its own; all well bounded."""
    d = app(Procfile="db: exec python3 child.py db ignore\nweb: exec python3 child.py web ignore\n")
    proc = live("start", "-t", "0.5", "--after", "web:db", cwd=d)
    proc.wait_line("web ready")
    proc.send(signal.SIGTERM)
    r = proc.finish(timeout=10)
    assert r.rc == 143, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "sending SIGTERM to web.1",
        "sending SIGKILL to web.1",
        "web.1 stopped (rc=137)",
        "sending SIGTERM to db.1",
        "sending SIGKILL to db.1",
        "db.1 stopped (rc=137)",
    )
    # each got its SIGTERM and was still alive to log it: not SIGKILLed at once
    assert [(n, w) for n, w, _ in _events(d)] == [("web", "SIGTERM"), ("db", "SIGTERM")]
    # upper bounds only (lines can arrive late, never early): 0.5 s graces
    term_web = proc.time_of("sending SIGTERM to web.1")
    kill_web = proc.time_of("sending SIGKILL to web.1")
    term_db = proc.time_of("sending SIGTERM to db.1")
    kill_db = proc.time_of("sending SIGKILL to db.1")
    assert kill_web - term_web < 1.5, kill_web - term_web
    assert kill_db - term_db < 1.5, kill_db - term_db
    assert kill_db - term_web < 3
    assert_nothing_left(mark)


# -- per-process grace ------------------------------------------------------------

STOP_TIMEOUT_CASES = {
    "option": (("--stop-timeout", "worker=0.5"), {}, {}),
    "env": ((), {"CORRAL_STOP_TIMEOUT": "worker=0.5"}, {}),
    "toml": ((), {}, {"corral.toml": "[processes.worker]\nstop_timeout = 0.5\n"}),
}


@pytest.mark.parametrize("case", list(STOP_TIMEOUT_CASES))
def test_per_process_stop_timeout(app, live, mark, case):
    """worker ignores SIGTERM and has a 0.5 s grace: SIGKILL ~0.5 s after its
    SIGTERM; other needs 1.2 s to stop and keeps the default (-t 4) grace."""
    args, env, files = STOP_TIMEOUT_CASES[case]
    d = app(
        Procfile="worker: exec python3 child.py worker ignore\n"
        "other: exec python3 child.py other exit 1.2 3\n",
        **files,
    )
    proc = live("start", "-t", "4", *args, cwd=d, env=env)
    proc.wait_line("worker ready")
    proc.wait_line("other ready")
    proc.send(signal.SIGTERM)
    r, took = timed(lambda: proc.finish(timeout=15))
    assert_no_traceback(r)
    assert r.rc == 143, r
    sys_lines = system(r.out)
    in_order(sys_lines, "sending SIGTERM to worker.1", "sending SIGKILL to worker.1")
    term = proc.time_of("sending SIGTERM to worker.1")
    kill = proc.time_of("sending SIGKILL to worker.1")
    assert kill - term < 1.2, kill - term  # its own 0.5 s, not the global 4 s
    assert "worker.1 stopped (rc=137)" in sys_lines
    assert "sending SIGKILL to other.1" not in r.out, r.out
    assert "other.1 stopped (rc=3)" in sys_lines, sys_lines  # it finished on its own
    # worker got its SIGTERM and was still alive to log it: not SIGKILLed at once
    assert (d / "worker.sig").read_text() == "SIGTERM\n"
    assert took < 4, took
    assert_nothing_left(mark)
