"""Termination: exit detection, group termination, signals, exit codes, leftovers."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time

import pytest

from tests.support import (
    CORRAL,
    TIME,
    assert_nothing_left,
    base_env,
    entries,
    marked_pids,
    run_corral,
    started_pids,
    wait_for,
)


def system_lines(out: str) -> list[str]:
    """The texts of corral's own lines, in order."""
    found = []
    for line in out.splitlines():
        m = re.fullmatch(TIME + r" system +\| (.*)", line)
        if m:
            found.append(m.group(1))
    return found


def test_exit_detected_by_waitpid_not_pipe_eof(app_dir, mark):
    # the backgrounded sleep keeps bg.1's stdout pipe open for 30 s
    d = app_dir(Procfile="bg: sleep 30 & echo started; exit 0\nweb: sleep 30\n")
    t0 = time.monotonic()
    r = run_corral("start", "-t", "1", cwd=d, timeout=25)
    took = time.monotonic() - t0
    assert r.rc == 0, r
    assert took < 5, f"took {took:.1f}s: exit noticed at pipe EOF?"
    width = 6
    got = entries(r.out, width)
    assert ("bg.1", "started") in got
    texts = [t for _, t in got]
    pids = started_pids(r.out)
    assert texts.index("bg.1 stopped (rc=0)") < texts.index(
        f"sending SIGTERM to web.1 (pid {pids['web.1']})"
    )
    assert "web.1 stopped (rc=143)" in texts
    # the backgrounded sleep (bg.1's process group) is gone too
    assert_nothing_left(mark)


def test_exit_noticed_while_later_processes_are_starting(app_dir, mark):
    # bg.1 exits (holding its pipe open through the backgrounded sleep) while
    # corral is still spawning the 20 processes after it: its SIGCHLD must
    # not be lost, or corral waits for the pipe (30 s) instead of stopping
    d = app_dir(
        Procfile="bg: sleep 30 & exit 4\n" + "".join(f"p{i}: sleep 30\n" for i in range(20))
    )
    t0 = time.monotonic()
    try:
        r = run_corral("start", "-t", "1", cwd=d, timeout=10)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            "bg.1's exit went unnoticed: corral still running after 10 s"
        ) from None
    assert time.monotonic() - t0 < 5
    assert r.rc == 4, r
    lines = system_lines(r.out)
    assert "bg.1 stopped (rc=4)" in lines, r.out
    # its shell is gone; the rest of its process group (the backgrounded
    # sleep) is stopped as bg.1's group, not as if bg.1 still ran
    assert not any(x.startswith("sending SIGTERM to bg.1 (pid") for x in lines), r.out
    assert any(x.startswith("sending SIGTERM to bg.1 (group") for x in lines), r.out
    assert_nothing_left(mark)


def test_first_exit_code_wins_and_everything_gets_sigterm(app_dir, mark):
    d = app_dir(
        Procfile="a: sleep 30\n"
        "b: : > b.ready; sleep 30\n"
        "fail: while [ ! -e b.ready ]; do sleep 0.02; done; exit 42\n"
    )
    r = run_corral("start", "-t", "1", "-c", "a=2", cwd=d, timeout=20)
    assert r.rc == 42, r
    pids = started_pids(r.out)
    lines = system_lines(r.out)
    stop = lines.index("fail.1 stopped (rc=42)")
    for name in ("a.1", "a.2", "b.1"):
        sending = f"sending SIGTERM to {name} (pid {pids[name]})"
        assert sending in lines, r.out
        assert lines.index(sending) > stop
        assert f"{name} stopped (rc=143)" in lines, r.out
    assert "sending SIGTERM to fail.1" not in r.out
    assert_nothing_left(mark)


def test_all_exit_zero(app_dir):
    d = app_dir(Procfile="a: true\n")
    r = run_corral("start", cwd=d)
    assert r.rc == 0, r


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGUSR1, signal.SIGTERM])
def test_child_killed_by_signal_counts_as_128_plus_n(app_dir, signum):
    d = app_dir(Procfile=f"a: kill -{int(signum)} $$\nweb: sleep 30\n")
    r = run_corral("start", "-t", "1", cwd=d, timeout=20)
    assert r.rc == 128 + signum, r
    assert f"a.1 stopped (rc={128 + signum})" in r.out, r.out


@pytest.mark.parametrize(
    "signum, code, name",
    [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "SIGINT")],
)
def test_signal_to_corral_stops_everything(live, app_dir, mark, signum, code, name):
    d = app_dir(Procfile="web: sleep 30\nworker: sh -c 'sleep 300.77 & wait'\n")
    proc = live("start", "-t", "1", cwd=d)
    proc.wait_line("web.1 started")
    proc.wait_line("worker.1 started")
    proc.send(signum)
    r = proc.finish(timeout=10)
    assert r.rc == code, r
    lines = system_lines(r.out)
    pids = started_pids(r.out)
    received = lines.index(f"{name} received")
    for child in ("web.1", "worker.1"):
        sending = f"sending SIGTERM to {child} (pid {pids[child]})"
        assert sending in lines and lines.index(sending) > received, r.out
        assert any(x.startswith(f"{child} stopped (rc=") for x in lines), r.out
    # nothing took the SIGKILL path: the grace period was not needed
    assert "SIGKILL" not in r.out
    assert_nothing_left(mark)


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_startup_stops_everything(live, app_dir, mark, signum, code):
    n = 40
    d = app_dir(Procfile="".join(f"p{i}: sleep 33.{i}\n" for i in range(n)))
    proc = live("start", "-t", "1", cwd=d)

    def first_child_running() -> bool:
        # a command of ours is running (not just corral's own start-up),
        # exec'd (`sleep\x0033.0`) or still its shell (`sh -c "sleep 33.0"`)
        for pid in marked_pids(mark):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"sleep 33." in f.read().replace(b"\0", b" "):
                        return True
            except OSError:
                pass
        return proc.proc.poll() is not None

    # poll fast: the signal is meant to land while corral is still spawning
    wait_for(first_child_running, timeout=10, interval=0.001)
    proc.send(signum)
    t0 = time.monotonic()
    r = proc.finish(timeout=10)
    assert r.rc == code, r
    assert time.monotonic() - t0 < 5
    started = re.findall(r"(\S+) started \(pid=\d+\)", r.out)
    stopped = re.findall(r"(\S+) stopped \(rc=\d+\)", r.out)
    assert started, r.out
    assert sorted(started) == sorted(stopped), r.out
    assert_nothing_left(mark)


# Survives SIGTERM (its sleep dies of it: the group gets the signal) and logs
# each one it got to stub.log: still alive to log it, so not killed before.
# The trap runs at once: a trapped signal interrupts `wait` (a foreground
# `sleep` started just after the signal would delay the trap until it ends).
LOGS_TERM = (
    "stub: trap 'echo TERM >> stub.log' TERM; : > stub.ready; while :; do sleep 30 & wait; done\n"
)


def test_child_ignoring_term_gets_sigkill_after_timeout(live, app_dir, mark):
    d = app_dir(
        Procfile=LOGS_TERM + "quick: until [ -e stub.ready ]; do sleep 0.02; done; exit 7\n"
    )
    proc = live("start", "-t", "1", cwd=d)
    term = proc.wait_line("sending SIGTERM to stub.1")
    r = proc.finish(timeout=6)
    took = proc.ended_at - term
    assert r.rc == 7, r
    assert took < 3, f"{took:.2f}s between SIGTERM and exit (grace 1s)"
    pids = started_pids(r.out)
    lines = system_lines(r.out)
    kill = f"sending SIGKILL to stub.1 (pid {pids['stub.1']})"
    assert kill in lines, r.out
    assert lines.index(kill) > lines.index(f"sending SIGTERM to stub.1 (pid {pids['stub.1']})")
    assert lines.index("stub.1 stopped (rc=137)") > lines.index(kill), r.out
    # the SIGKILL came after the stub had handled its SIGTERM, not at once
    assert (d / "stub.log").read_text() == "TERM\n", r.out
    assert_nothing_left(mark)


def test_external_sigterm_escalates_to_sigkill(live, app_dir, mark):
    # honcho never escalates after an external signal; corral must
    d = app_dir(Procfile="stub: trap '' TERM; touch stub.ready; sleep 30\n")
    proc = live("start", "-t", "1", cwd=d)
    proc.wait_line("stub.1 started")
    wait_for((d / "stub.ready").exists, timeout=10)
    proc.send(signal.SIGTERM)
    r = proc.finish(timeout=6)
    assert r.rc == 143, r
    assert "sending SIGKILL to stub.1" in r.out, r.out
    assert_nothing_left(mark)


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_second_signal_skips_the_grace_period(live, app_dir, mark, second):
    d = app_dir(Procfile="stub: trap '' TERM INT; touch stub.ready; sleep 30\nweb: sleep 30\n")
    proc = live("start", "-t", "30", cwd=d)
    wait_for((d / "stub.ready").exists, timeout=10)
    proc.wait_line("web.1 started")
    proc.send(signal.SIGTERM)
    proc.wait_line("sending SIGTERM to stub.1")
    proc.wait_line("web.1 stopped")
    t0 = time.monotonic()
    proc.send(second)
    r = proc.finish(timeout=8)
    assert time.monotonic() - t0 < 3
    assert r.rc == 143, r
    assert "sending SIGKILL to stub.1" in r.out, r.out
    assert "stub.1 stopped (rc=137)" in r.out, r.out
    assert_nothing_left(mark)


def test_grandchildren_in_the_group_get_term(app_dir, mark):
    d = app_dir(
        Procfile="tree: sh -c 'sleep 300.77 & wait'\n"
        "tree2: sh -c 'sleep 300.78 & sleep 300.79 & wait'; echo never\n"
        "quick: sleep 0.3; exit 5\n"
    )
    t0 = time.monotonic()
    r = run_corral("start", "-t", "10", cwd=d, timeout=30)
    assert r.rc == 5, r
    # everything went on SIGTERM: no need to wait for the 10 s grace
    assert time.monotonic() - t0 < 5, r.out
    assert "SIGKILL" not in r.out
    assert_nothing_left(mark, timeout=1)


def test_grandchild_term_is_observed(app_dir):
    # the grandchild itself reports the TERM it got from the group signal
    d = app_dir(
        Procfile='tree: sh -c \'trap "echo grandchild got TERM; exit 0" TERM; '
        "touch gc.ready; while :; do sleep 0.05; done' & wait\n"
        "quick: while [ ! -e gc.ready ]; do sleep 0.02; done; exit 5\n"
    )
    r = run_corral("start", "-t", "5", cwd=d, timeout=30)
    assert r.rc == 5, r
    assert "grandchild got TERM" in r.out, r.out


def test_children_are_not_left_when_corral_exits_normally(app_dir, mark):
    d = app_dir(Procfile="web: sleep 300.81 & sleep 300.82 & echo up; sleep 0.2\n")
    r = run_corral("start", "-t", "1", cwd=d)
    assert r.rc == 0, r
    assert_nothing_left(mark)


def test_leftover_check_can_fail(mark):
    # the helper that the tests above rely on does see a live process of ours
    sleeper = subprocess.Popen(["sleep", "30"], env=base_env())
    try:
        assert sleeper.pid in marked_pids(mark)
        with pytest.raises(AssertionError):
            assert_nothing_left(mark, timeout=0.1)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert_nothing_left(mark)


def test_exit_code_143_even_if_children_exit_zero_on_term(live, app_dir):
    d = app_dir(Procfile="web: trap 'echo bye; exit 0' TERM; touch up; sleep 30 & wait\n")
    proc = live("start", "-t", "1", cwd=d)
    proc.wait_line("web.1 started")
    wait_for((d / "up").exists, timeout=10)
    proc.send(signal.SIGTERM)
    r = proc.finish()
    assert "bye" in r.out and "web.1 stopped (rc=0)" in r.out, r.out
    assert r.rc == 143, r


def test_ctrl_c_on_a_terminal(app_dir, mark):
    """`corral start` in a terminal: Ctrl-C stops everything, rc 130."""
    d = app_dir(Procfile="web: sleep 30\nworker: sleep 30\n")
    master, slave = pty.openpty()

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(
        [CORRAL, "start", "-t", "1"],
        cwd=d,
        env=base_env(),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        preexec_fn=controlling_terminal,
    )
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + 15
    try:
        while True:
            assert time.monotonic() < deadline, out
            if not sent and b"worker.1 started" in out and b"web.1 started" in out:
                os.write(master, b"\x03")  # Ctrl-C
                sent = True
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno == errno.EIO:
                    break
                raise
            if not data:
                break
            out += data
        rc = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert sent, text
    assert rc == 130, text
    assert "SIGINT received" in text
    assert "sending SIGTERM to web.1" in text and "sending SIGTERM to worker.1" in text
    assert_nothing_left(mark)
