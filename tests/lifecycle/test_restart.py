"""Restart policies: on-failure, always, back-off, limits, with real processes."""

from __future__ import annotations

import itertools
import re
from datetime import datetime

import pytest

from tests.lifecycle.helpers import free_base_port
from tests.support import (
    assert_no_traceback,
    assert_nothing_left,
    count,
    events,
    in_order,
    index,
    run_corral,
    system,
    texts,
    timed,
)

CRASH_LOOP_TOML = (
    "[processes.worker]\n"
    'restart = { policy = "on-failure", delay = 0.05, max_delay = 0.2, limit = 3, window = 60 }\n'
)


def test_crash_loop_hits_its_limit(app_dir, mark):
    base = free_base_port(2)
    d = app_dir(
        Procfile='web: exec sleep 30\nworker: echo "I am $PS on port $PORT"; exit 3\n',
        **{"corral.toml": CRASH_LOOP_TOML},
    )
    r, took = timed(lambda: run_corral("start", "-t", "1", "-p", str(base), cwd=d, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 3, r  # the worker's code
    sys_lines = system(r.out)
    # 1 start + 3 restarts, then the limit
    assert count(sys_lines, "worker.1 started (pid=") == 4, sys_lines
    assert texts(r.out, "worker.1") == [f"I am worker.1 on port {base + 100}"] * 4
    in_order(
        sys_lines,
        "worker.1 exited (rc=3); restarting in 0.1s (attempt 1/3)",
        "worker.1 exited (rc=3); restarting in 0.1s (attempt 2/3)",
        "worker.1 exited (rc=3); restarting in 0.2s (attempt 3/3)",
        "worker.1 exited (rc=3); restart limit reached (3 in 60s); stopping",
        "sending SIGTERM to web.1",
        "web.1 stopped",
    )
    assert count(sys_lines, "restarting in") == 3
    assert not any(line.startswith("worker.2") for line in sys_lines)
    assert count(sys_lines, "web.1 started") == 1  # web was never restarted
    assert took < 6, took
    assert_nothing_left(mark)


def test_restart_keeps_each_instance_name_and_port(app_dir):
    """With two workers, each restart of worker.2 keeps worker.2 and its PORT."""
    base = free_base_port(2)
    d = app_dir(
        Procfile='web: exec sleep 30\nworker: echo "I am $PS on port $PORT"; '
        '[ "$PS" = worker.2 ] && exit 4; exec sleep 30\n',
        **{"corral.toml": CRASH_LOOP_TOML.replace("limit = 3", "limit = 2")},
    )
    r = run_corral("start", "-t", "1", "-p", str(base), "-c", "worker=2", cwd=d, timeout=20)
    assert r.rc == 4, r
    assert texts(r.out, "worker.2") == [f"I am worker.2 on port {base + 101}"] * 3
    assert texts(r.out, "worker.1") == [f"I am worker.1 on port {base + 100}"]
    assert "worker.2 exited (rc=4); restart limit reached (2 in 60s); stopping" in system(r.out)


def test_always_restarts_a_clean_exit(app_dir, mark):
    d = app_dir(
        Procfile="web: exec sleep 30\nworker: echo run $PS; exit 0\n",
        **{
            "corral.toml": "[processes.worker]\n"
            'restart = { policy = "always", delay = 0.05, limit = 2 }\n'
        },
    )
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "worker.1 exited (rc=0); restarting in 0.1s (attempt 1/2)",
        "worker.1 exited (rc=0); restarting in 0.1s (attempt 2/2)",
        "worker.1 exited (rc=0); restart limit reached (2 in 60s); stopping",
        "sending SIGTERM to web.1",
    )
    assert texts(r.out, "worker.1") == ["run worker.1"] * 3
    assert_nothing_left(mark)


def test_on_failure_does_not_restart_a_clean_exit(app_dir):
    d = app_dir(Procfile="web: exec sleep 30\nworker: sleep 0.2; echo worker finished\n")
    r = run_corral("start", "-t", "1", "--restart", "worker=on-failure", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    assert "restarting" not in r.out
    in_order(sys_lines, "worker.1 stopped (rc=0)", "sending SIGTERM to web.1")
    assert count(sys_lines, "worker.1 started") == 1


RESTART_SOURCES = {
    "option": (("--restart", "worker=on-failure"), {}, {}),
    "env": ((), {"CORRAL_RESTART": "worker=on-failure"}, {}),
    "toml": ((), {}, {"corral.toml": '[processes.worker]\nrestart = "on-failure"\n'}),
    "pyproject": (
        (),
        {},
        {"pyproject.toml": '[tool.corral.processes.worker]\nrestart = "on_failure"\n'},
    ),
}


@pytest.mark.parametrize("how", list(RESTART_SOURCES))
def test_on_failure_restarts_a_crash_and_a_signal_death(app_dir, how):
    """The default back-off (1 s) applies; a death by SIGKILL counts as a failure."""
    args, env, files = RESTART_SOURCES[how]
    d = app_dir(
        Procfile="worker: if [ -e once ]; then date +%s.%N > second; echo second run; exit 0; fi; "
        "touch once; echo first run; date +%s.%N > first; kill -KILL $$\n",
        **files,
    )
    r, took = timed(lambda: run_corral("start", *args, cwd=d, env=env, timeout=20))
    assert_no_traceback(r)
    assert r.rc == 0, r
    sys_lines = system(r.out)
    in_order(
        sys_lines,
        "worker.1 exited (rc=137); restarting in 1.0s (attempt 1/5)",
        "worker.1 stopped (rc=0)",
    )
    assert texts(r.out, "worker.1") == ["first run", "second run"]
    # the back-off really was waited for, by the children's own clock: the
    # second run began at least 1 s after the first was about to die
    # (0.02 s: wall clock against corral's monotonic timer)
    gap = float((d / "second").read_text()) - float((d / "first").read_text())
    assert gap >= 1.0 - 0.02, gap
    assert took < 4, took


def test_backoff_doubles_up_to_its_cap(app_dir):
    """The delays double (0.1, 0.2, 0.4) and stop at max_delay; the real gap
    between an exit and the next start is the announced delay."""
    d = app_dir(
        Procfile="worker: date +%s.%N >> starts; exit 1\n",
        **{
            "corral.toml": "[processes.worker]\n"
            'restart = { policy = "on-failure", delay = 0.1, max_delay = 0.4, limit = 5, '
            "reset_after = 60 }\n"
        },
    )
    r = run_corral("start", "--log-format", "json", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 1, r
    evs = [e for e in events(r.out) if e.get("stream") == "system"]
    restarting = [e for e in evs if e.get("event") == "restarting"]
    assert [e["delay"] for e in restarting] == [0.1, 0.2, 0.4, 0.4, 0.4], restarting
    assert [e["attempt"] for e in restarting] == [1, 2, 3, 4, 5]
    assert all(e["process"] == "worker.1" and e["rc"] == 1 for e in restarting)
    assert [e["line"] for e in restarting] == [
        f"worker.1 exited (rc=1); restarting in {delay:.1f}s (attempt {n}/5)"
        for n, delay in zip(range(1, 6), (0.1, 0.2, 0.4, 0.4, 0.4), strict=True)
    ]

    # measured: each restarting event is followed by a start not much later
    # than the delay (corral's own time stamps; an upper bound only) ...
    def at(e):
        return datetime.strptime(str(e["time"]), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()

    for e in restarting:
        nxt = next(x for x in evs[evs.index(e) + 1 :] if x.get("event") == "starting")
        gap = at(nxt) - at(e)
        assert gap < e["delay"] + 0.5, (e, nxt, gap)
    # ... and, by the runs' own clock, never sooner: each run began at least
    # the announced delay after the previous one (which then had to exit)
    starts = [float(x) for x in (d / "starts").read_text().split()]
    assert len(starts) == 6, starts
    for (before, after), e in zip(itertools.pairwise(starts), restarting, strict=True):
        assert after - before >= e["delay"] - 0.02, (e, after - before)
    final = [e for e in evs if "restart limit reached" in str(e.get("line"))]
    assert len(final) == 1 and final[0]["event"] in ("exited", "failed"), final


def test_backoff_resets_after_the_process_stayed_up(app_dir):
    """Runs 1, 2 and 4 crash at once; run 3 stays up past reset_after, so the
    delay after it starts over at the initial one."""
    d = app_dir(
        Procfile="worker: n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; "
        "echo run $n; [ $n = 3 ] && sleep 0.8; [ $n = 5 ] && exit 0; exit 1\n",
        **{
            "corral.toml": "[processes.worker]\n"
            'restart = { policy = "on-failure", delay = 0.1, max_delay = 1.6, '
            "reset_after = 0.5 }\n"
        },
    )
    r = run_corral("start", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    delays = re.findall(r"worker\.1 exited \(rc=1\); restarting in (\S+)s", r.out)
    assert delays == ["0.1", "0.2", "0.1", "0.2"], r.out
    assert texts(r.out, "worker.1") == [f"run {n}" for n in range(1, 6)]


def test_restarts_outside_the_window_are_forgotten(app_dir):
    """limit 1 in a 0.2 s window with 0.3 s between restarts: never reached."""
    d = app_dir(
        Procfile="worker: n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; "
        "echo run $n; [ $n -ge 4 ] && exit 0; exit 1\n",
        **{
            "corral.toml": "[processes.worker]\n"
            'restart = { policy = "on-failure", delay = 0.3, max_delay = 0.3, limit = 1, '
            "window = 0.2 }\n"
        },
    )
    r = run_corral("start", cwd=d, timeout=20)
    assert_no_traceback(r)
    assert r.rc == 0, r
    assert "limit reached" not in r.out, r.out
    assert count(system(r.out), "restarting in 0.3s (attempt 1/1)") == 3, r.out
    assert texts(r.out, "worker.1") == [f"run {n}" for n in range(1, 5)]


def test_restart_json_events(app_dir):
    d = app_dir(
        Procfile="worker: exit 2\n",
        **{
            "corral.toml": "[processes.worker]\n"
            'restart = { policy = "on-failure", delay = 0.05, limit = 1 }\n'
        },
    )
    r = run_corral("start", "--log-format", "json", cwd=d, timeout=20)
    assert r.rc == 2, r
    evs = [e for e in events(r.out) if e.get("stream") == "system"]
    kinds = [e.get("event") for e in evs]
    i = kinds.index("restarting")
    assert evs[i]["process"] == "worker.1"
    assert evs[i]["attempt"] == 1 and evs[i]["rc"] == 2 and evs[i]["delay"] == 0.05
    assert kinds[i + 1] == "starting" and evs[i + 1]["process"] == "worker.1"
    assert kinds[:1] == ["starting"]
    assert index([str(e["line"]) for e in evs], "restart limit reached (1 in 60s)") > i
