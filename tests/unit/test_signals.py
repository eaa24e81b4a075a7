from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import termios

from corral.signals import HANDLED, TERMINATING, ChildSignals, SignalPipe, name


def test_a_signal_becomes_a_byte_on_the_pipe() -> None:
    with SignalPipe() as pipe:
        assert pipe.drain() == []
        os.kill(os.getpid(), signal.SIGUSR1)
        os.kill(os.getpid(), signal.SIGHUP)
        assert pipe.drain() == [signal.SIGUSR1, signal.SIGHUP]
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL  # restored


def test_every_signal_that_would_kill_corral_is_handled() -> None:
    deadly = {
        signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2,
        signal.SIGALRM, signal.SIGTERM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGIO,
        signal.SIGPWR, signal.SIGXCPU, *range(signal.SIGRTMIN, signal.SIGRTMAX + 1),
    }  # fmt: skip
    assert deadly <= HANDLED
    assert {signal.SIGTERM, signal.SIGINT, signal.SIGPWR, signal.SIGRTMIN + 3} == TERMINATING
    assert name(signal.SIGRTMIN + 3) == "SIGRTMIN+3" and name(15) == "SIGTERM"


PROBE = """
import signal
from corral.signals import SignalPipe
with SignalPipe() as pipe:
    c = pipe.children
    ints = lambda signals: sorted(map(int, signals))
    print(ints(c.ignored), c.needs_hook, ints(c.mask), signal.SIGTTOU in c.default)
"""


def run_probe(stdout: int | None = None, preexec: object = None) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=preexec,  # type: ignore[arg-type]
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout or ""


def test_children_need_no_hook_in_the_usual_case() -> None:
    assert run_probe().strip() == "[] False [] True"


def test_a_blocked_launcher_mask_is_handed_to_children() -> None:
    def block() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGUSR2})

    out = run_probe(preexec=block).strip()
    assert out == f"[] True {sorted([int(signal.SIGTERM), int(signal.SIGUSR2)])} True"


def test_tostop_terminal_makes_corral_ignore_sigttou() -> None:
    master, slave = pty.openpty()
    try:
        attrs = termios.tcgetattr(slave)
        attrs[3] |= termios.TOSTOP
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        run_probe(stdout=slave)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                data = os.read(master, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    assert out.decode().strip() == f"[{int(signal.SIGTTOU)}] True [] True"


def test_child_signals_defaults() -> None:
    assert not ChildSignals().needs_hook
    assert ChildSignals(mask=frozenset({signal.SIGTERM})).needs_hook
