"""`corral run` relays every signal an init should (dumb-init's set), and a
real fault inside corral still crashes it instead of looping on it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import CORRAL, base_env, wait_for

# The command logs each signal it gets and its signal mask, then exits once
# it has seen them all.
RECEIVER = textwrap.dedent(
    """
    import os, signal, sys, time
    want = set(int(s) for s in sys.argv[1:])
    got = []
    for s in signal.valid_signals():
        if s in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            continue
        try:
            signal.signal(s, lambda n, f: got.append(n))
        except OSError:
            pass
    with open("/proc/self/status") as f:
        blocked = [l.split()[1] for l in f if l.startswith("SigBlk:")][0]
    open("ready", "w").write(blocked)
    deadline = time.monotonic() + 20
    while not want <= set(got) and time.monotonic() < deadline:
        time.sleep(0.02)
    print(" ".join(str(n) for n in got), flush=True)
    """
)

SENT = [
    signal.SIGCONT,
    signal.SIGURG,
    signal.SIGPIPE,
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGABRT,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGUSR1,
    signal.SIGHUP,
]


def test_every_catchable_signal_reaches_the_command(tmp_path: Path) -> None:
    assert CORRAL
    (tmp_path / "receiver.py").write_text(RECEIVER)
    wanted = [str(int(s)) for s in SENT]
    proc = subprocess.Popen(
        [CORRAL, "run", "--", sys.executable, "receiver.py", *wanted],
        cwd=tmp_path,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (tmp_path / "ready").exists() and (tmp_path / "ready").read_text())
        # corral blocks the faults for itself; the command must not inherit that
        assert int((tmp_path / "ready").read_text(), 16) == 0
        for signum in SENT:
            os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, err
    got = {int(n) for n in out.split()}
    missing = [signal.Signals(s).name for s in SENT if int(s) not in got]
    assert not missing, (missing, err)


@pytest.mark.parametrize("fault", ["segv", "abort"])
def test_a_real_fault_in_corral_still_crashes_it(fault: str) -> None:
    """With the faults blocked for the signalfd, a fault of corral's own is
    still delivered by the kernel: the process dies of it, it does not hang."""
    crash = "import ctypes; ctypes.string_at(0)" if fault == "segv" else "import os; os.abort()"
    code = textwrap.dedent(
        f"""
        from corral.signals import SignalPipe
        with SignalPipe(relay_all=True) as pipe:
            assert pipe.faults is not None
            {crash}
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=30, env=base_env()
    )
    expected = signal.SIGSEGV if fault == "segv" else signal.SIGABRT
    assert proc.returncode == -expected, proc.stderr
