"""Wait for the test's go, set an exact signal state, then exec the real command.

    gate.py FD IGNORED BLOCKED -- COMMAND ARGS...

In pid1 mode the harness runs `unshare --pid --fork --mount-proc gate.py ...`:
the gate is PID 1 of the new namespace and stays there, blocked reading FD,
until the harness has found it by its pid and checked it is PID 1 inside.
Without the gate a command that exits at once (`corral run -- sh -c 'exit 4'`)
could be gone, and `unshare` with it, before the harness ever saw it.

When FD reads EOF (the harness closed the other end), the gate closes FD (the
command must not inherit it), gives every signal its default action, ignores
exactly IGNORED and blocks exactly BLOCKED (comma-separated numbers, possibly
empty): the state the harness promises the command, undoing what Python's
own start-up changed (it ignores SIGPIPE and SIGXFSZ).  Then it execs COMMAND
in place: same pid, so the command is PID 1.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def numbers(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> None:
    fd, ignored, blocked = int(sys.argv[1]), numbers(sys.argv[2]), numbers(sys.argv[3])
    assert sys.argv[4] == "--", sys.argv
    command = sys.argv[5:]
    while os.read(fd, 1):
        pass
    os.close(fd)
    for num in range(1, signal.NSIG):
        if num in (signal.SIGKILL, signal.SIGSTOP):
            continue
        with contextlib.suppress(OSError, ValueError):
            signal.signal(num, signal.SIG_DFL)
    for num in ignored:
        signal.signal(num, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
