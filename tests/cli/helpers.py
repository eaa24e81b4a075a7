"""Helpers for the black-box CLI tests: a corral on a pseudo-terminal.

The shared helpers (live corral runs, leftovers, output lines, one-line
errors) are in tests/support.py.
"""

from __future__ import annotations

import errno
import os
import pty
import select
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.support import CORRAL, base_env

# -- a corral on a terminal ---------------------------------------------------


@dataclass
class PtyResult:
    rc: int
    out: str  # what corral wrote to the terminal, CRs removed
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def run_in_pty(
    *args: str,
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    timeout: float = 15,
) -> PtyResult:
    """Run corral with stdout on a fresh pseudo-terminal (stderr on a pipe)."""
    assert CORRAL, "the corral command is not installed"
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [CORRAL, *args],
            cwd=cwd,
            env=base_env(env),
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=subprocess.PIPE,
        )
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                so_far = b"".join(chunks)
                raise AssertionError(f"corral on a pty still running after {timeout}s: {so_far!r}")
            ready, _, _ = select.select([master], [], [], min(remaining, 0.5))
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError as exc:
                if exc.errno == errno.EIO:  # every slave fd closed: corral is done
                    break
                raise
            if not data:
                break
            chunks.append(data)
        proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        assert proc.stderr is not None
        err = proc.stderr.read().decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
        if proc.stderr is not None:
            proc.stderr.close()
    out = b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
    return PtyResult(proc.returncode, out, err)
