"""A SIGTERM sent while corral is still importing must not be lost.

As PID 1 the kernel drops a signal PID 1 has no handler for, and importing
corral takes tens of milliseconds before any handler exists.  corral.boot
blocks the signals first, so one arriving then stays pending until the
handlers are in place.  The test waits until corral's signal mask is no
longer empty (boot has run) and sends SIGTERM at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.support import CORRAL, base_env, wait_for


def blocked_mask(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("SigBlk:"):
            return int(line.split()[1], 16)
    return 0


def test_sigterm_during_start_up_is_not_lost_as_pid1(tmp_path: Path) -> None:
    assert CORRAL
    (tmp_path / "Procfile").write_text("web: sleep 300.314\n")
    for _ in range(3):
        outer = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", CORRAL, "start"],
            cwd=tmp_path,
            env=base_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            inner = wait_for(lambda o=outer: _child_of(o.pid), timeout=10)
            assert isinstance(inner, int)
            wait_for(lambda i=inner: blocked_mask(i) != 0, timeout=10, interval=0.0005)
            os.kill(inner, signal.SIGTERM)
            started = time.monotonic()
            rc = outer.wait(timeout=10)
            assert rc == 143, outer.stderr.read() if outer.stderr else ""
            assert time.monotonic() - started < 8
        finally:
            if outer.poll() is None:
                outer.kill()
                outer.wait()
            if outer.stderr:
                outer.stderr.close()


def _child_of(pid: int) -> int | None:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return None
    return int(text[0]) if text else None
