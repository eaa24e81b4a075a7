"""The `corral` command's entry point: hold signals while Python imports corral.

Importing corral takes tens of milliseconds before any handler exists; as
PID 1 a SIGTERM arriving then would be dropped by the kernel (PID 1 has no
default actions), so an early `docker stop` would wait for its SIGKILL.  So the
very first thing the command does, before the heavy imports, is block the
signals corral will handle: a blocked signal stays pending, even for PID 1,
and is delivered the moment `SignalPipe` installs the handlers and unblocks
them.  The mask corral was really started with is recorded, so children still
get exactly that one.

The block uses `_signal`, the C module under `signal`: importing `signal`
itself first imports `enum` and `functools`, which took longer than the
whole rest of the way from exec to here.  What remains unguarded is the
interpreter's own start-up and the console script's `import sys` (see
README, "Signals", for the measured window).
"""

from __future__ import annotations

import _signal as _sig  # type: ignore[import-not-found,unused-ignore]  # no stubs
import os

# Synchronous faults must keep their default action; SIGKILL/SIGSTOP cannot
# be blocked anyway.
_KEEP = {
    _sig.SIGSEGV,
    _sig.SIGBUS,
    _sig.SIGFPE,
    _sig.SIGILL,
    _sig.SIGABRT,
    _sig.SIGTRAP,
    _sig.SIGSYS,
    _sig.SIGKILL,
    _sig.SIGSTOP,
}


def main() -> int:
    inherited = _sig.pthread_sigmask(_sig.SIG_BLOCK, _sig.valid_signals() - _KEEP)
    _fill_closed_std_fds()
    from corral import cli, signals

    signals.early_mask = frozenset(inherited)
    try:
        code = cli.main()
    except signals.Interrupted as stop:  # came between the command's end and here
        code = 128 + stop.signum
    # Done: a stop signal from now on must not kill corral by signal and
    # change its exit code (Python's finalization puts the default action
    # back for every handler it installed).  Blocked, it dies with us; one
    # already on its way runs its handler inside this call.
    import contextlib  # loaded long since: free here, not before the early block

    with contextlib.suppress(signals.Interrupted):
        _sig.pthread_sigmask(_sig.SIG_BLOCK, signals.TERMINATING)
    return code


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
