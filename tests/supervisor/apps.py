"""Scripts the supervisor tests run as Procfile commands, and small /proc helpers.

drain.py NAME SECONDS   prints `NAME up` (and writes NAME.ready); on SIGTERM it
                        takes SECONDS to shut down, prints `NAME drained` and
                        exits 0: an app that drains its work before it exits.
stubborn.py NAME        prints `NAME up` (and writes NAME.ready), then ignores
                        SIGTERM for good: only SIGKILL ends it.

The signal-reporting child of the lifecycle tests (tests/lifecycle/helpers.CHILD,
`child.py`) is written beside them too.
"""

from __future__ import annotations

import os

from tests.lifecycle.helpers import CHILD

DRAIN = r"""
import signal, sys, time
name, seconds = sys.argv[1], float(sys.argv[2])

def drain(signum, frame):
    time.sleep(seconds)
    print(f"{name} drained", flush=True)
    sys.exit(0)

signal.signal(signal.SIGTERM, drain)
open(name + ".ready", "w").close()
print(f"{name} up", flush=True)
while True:
    time.sleep(1)
"""

STUBBORN = r"""
import signal, sys, time
name = sys.argv[1]
signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(name + ".ready", "w").close()
print(f"{name} up", flush=True)
while True:
    time.sleep(1)
"""

SCRIPTS = {"drain.py": DRAIN, "stubborn.py": STUBBORN, "child.py": CHILD}


def cmdline(pid: int) -> list[str]:
    """argv of a live process ([] once it has gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat from field 3 (state) on; [] once it has gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return []
    return stat[stat.rfind(")") + 2 :].split()


def wchan(pid: int) -> str:
    """Where in the kernel the process sleeps (`do_epoll_wait`, `wait_for_partner`...)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return f.read()
    except OSError:
        return ""


def is_python(pid: int) -> bool:
    """The process runs a Python interpreter (not a shell)."""
    argv = cmdline(pid)
    return bool(argv) and os.path.basename(argv[0]).startswith("python")
