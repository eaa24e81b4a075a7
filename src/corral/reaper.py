"""Reaping: the only place corral calls `waitpid`.

Why nothing else may wait: a catch-all `waitpid(-1)` steals the status of any
child, so if `subprocess.Popen.wait()` also ran, one of them would get a wrong
exit code (Popen reports 0 for a pid reaped behind its back).  The supervisor
keeps a pid table and asks `reap()` after every wakeup, as tini and gunicorn do.

As PID 1 the kernel re-parents every orphan in the namespace to corral; as any
other pid we ask for the same with `PR_SET_CHILD_SUBREAPER`, so the daemons
and `setsid` escapees of our children come back to us to be reaped and, at
shutdown, stopped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Iterator

PR_SET_CHILD_SUBREAPER = 36


def reap() -> Iterator[tuple[int, int]]:
    """Yield `(pid, exit_code)` for every child that has exited, without blocking."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, exit_code(status)


def exit_code(status: int) -> int:
    """A wait status as a shell would report it: the code, or 128 + signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def become_subreaper() -> bool:
    """Ask the kernel to re-parent our orphaned descendants to us (Linux >= 3.4)."""
    if os.getpid() == 1:
        return True  # init already gets every orphan of its namespace
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def children() -> list[int]:
    """Pids of our live (not yet reaped) children, direct or adopted.

    Read through `/proc/thread-self`, which is us even when `/proc` belongs
    to another PID namespace (corral as PID 1 of an `unshare --pid` without
    its own /proc mount): that /proc numbers processes its own way, so each
    pid is mapped back to ours through the last field of its `NSpid` line.
    """
    try:
        with open("/proc/thread-self/children") as f:
            listed = [int(p) for p in f.read().split()]
    except OSError:
        listed = _scan_children()
    if _own_proc():
        return listed
    return [pid for pid in (_local_pid(p) for p in listed) if pid is not None]


def _own_proc() -> bool:
    """Does /proc number processes as we do (it belongs to our PID namespace)?"""
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _local_pid(proc_pid: int) -> int | None:
    """`proc_pid` (as /proc numbers it) in our own PID namespace."""
    try:
        with open(f"/proc/{proc_pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except (OSError, ValueError):
        return None  # gone meanwhile
    return proc_pid  # a kernel without NSpid: no namespaces to map


def _scan_children() -> list[int]:
    """Without the `children` file: every process whose parent is us."""
    try:
        me = os.readlink("/proc/thread-self").split("/")[0]
        entries = os.listdir("/proc")
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # the command name may contain spaces and parentheses: split after the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and fields[1] == me:
            found.append(int(entry))
    return found
