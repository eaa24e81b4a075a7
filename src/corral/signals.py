"""Signal intake: every signal becomes a byte on a socket the event loop watches.

Why this design (and not the alternatives):

* Handlers are no-ops and `signal.set_wakeup_fd` writes the signal number to a
  non-blocking socketpair; the loop reads the bytes (`drain`) and decides.  So
  nothing runs in handler context, the loop sleeps in one `select` with no
  timeout when idle, and a signal arriving at any moment (even mid-startup) is
  simply queued.  (trio and asyncio use the same trick.)
* We do *not* block signals and `sigtimedwait` (tini's way) or use signalfd:
  a blocked mask is inherited by children through fork/exec, and Python's
  `subprocess` cannot reset it; with handlers, exec resets caught signals to
  their default action in the child by itself.
* A signal that was *ignored* when corral started (`nohup`, `&` in a script)
  is left ignored, as Python does for SIGINT: children then inherit the same
  ignored set corral was given.  SIGCHLD is always caught: the loop needs it.

PID 1 note: the kernel delivers to a namespace's init only signals it has a
handler for, so installing a handler is what makes SIGHUP, SIGUSR1 etc. reach
corral at all when it runs as PID 1.
"""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterable
from types import FrameType
from typing import Any

# Start group termination (a second one skips the grace period).
TERMINATING = (signal.SIGTERM, signal.SIGINT)
# Relayed to every child's process group; corral keeps running.
FORWARDED = (
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
HANDLED = (*TERMINATING, *FORWARDED, signal.SIGCHLD)


def name(signum: int) -> str:
    """`SIGTERM` for 15; `signal 99` for numbers Python has no name for."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def parse(text: str) -> int:
    """Parse `TERM`, `SIGTERM` or `15` into a signal number (ValueError if not)."""
    text = text.strip().upper()
    if text.isdigit():
        number = int(text)
        signal.Signals(number)  # ValueError if unknown
        return number
    if not text.startswith("SIG"):
        text = "SIG" + text
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise ValueError(f"unknown signal {text!r}") from None


def _noop(signum: int, frame: FrameType | None) -> None:
    """Signal handler: does nothing; the wakeup fd carries the signal."""


class SignalPipe:
    """Installs no-op handlers for `signums` and routes them to `fileno()`.

    Use as a context manager: on exit the previous handlers and wakeup fd are
    restored.  `drain()` returns the signal numbers received since the last
    call, in arrival order.
    """

    def __init__(self, signums: Iterable[int] = HANDLED) -> None:
        self._signums = list(signums)
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._saved: dict[int, Any] = {}
        self._saved_fd = -1
        self.caught: frozenset[int] = frozenset()

    def __enter__(self) -> SignalPipe:
        self._saved_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        caught = set()
        for signum in self._signums:
            previous = signal.getsignal(signum)
            if previous == signal.SIG_IGN and signum != signal.SIGCHLD:
                continue  # ignored by whoever started us: keep it so (see module doc)
            self._saved[signum] = previous
            signal.signal(signum, _noop)
            caught.add(signum)
        self.caught = frozenset(caught)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, previous in self._saved.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._saved_fd)
        self._read.close()
        self._write.close()

    def fileno(self) -> int:
        return self._read.fileno()

    def drain(self) -> list[int]:
        """The signals that arrived since the last call (may be empty)."""
        received: list[int] = []
        while True:
            try:
                data = self._read.recv(4096)
            except (BlockingIOError, InterruptedError):
                return received
            if not data:
                return received
            received.extend(data)


def send(target: int, signum: int, group: bool) -> bool:
    """kill/killpg that tolerates a target already gone; True if sent."""
    try:
        if group:
            os.killpg(target, signum)
        else:
            os.kill(target, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True
