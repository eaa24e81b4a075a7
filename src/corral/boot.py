"""The `corral` command's entry point: hold signals while Python imports corral.

Importing corral takes tens of milliseconds before any handler exists; as
PID 1 a SIGTERM arriving then would be dropped by the kernel (PID 1 has no
default actions), so an early `docker stop` would wait for its SIGKILL.  So the
very first thing the command does, before the heavy imports, is block the
signals corral will handle: a blocked signal stays pending, even for PID 1,
and is delivered the moment `SignalPipe` installs the handlers and unblocks
them.  The mask corral was really started with is recorded, so children still
get exactly that one.  Only the interpreter's own start-up remains unguarded.
"""

from __future__ import annotations

import os
import signal

# Synchronous faults must keep their default action; SIGKILL/SIGSTOP cannot
# be blocked anyway.
_KEEP = {
    signal.SIGSEGV,
    signal.SIGBUS,
    signal.SIGFPE,
    signal.SIGILL,
    signal.SIGABRT,
    signal.SIGTRAP,
    signal.SIGSYS,
    signal.SIGKILL,
    signal.SIGSTOP,
}


def main() -> int:
    inherited = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals() - _KEEP)
    _fill_closed_std_fds()
    from corral import cli, signals

    signals.early_mask = frozenset(inherited)
    return cli.main()


def _fill_closed_std_fds() -> None:
    """Put /dev/null on a closed stdin, stdout or stderr (`corral start >&-`).

    Otherwise the next file corral opens (a child's output pipe, the signal
    socket) would take fd 0, 1 or 2 and be mistaken for it.  Python has then
    set `sys.stdout` (or stdin, stderr) to None, which is how `start` knows
    that its output was closed.
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
