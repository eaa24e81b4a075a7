"""Black-box: corral shares its stdout with other writers without harming them.

O_NONBLOCK belongs to the open file description, which every process that
inherited the same stdout shares: set there, it makes a neighbour's write to
a full pipe fail with EAGAIN (`{ corral start & cat big; } | slow-reader`
used to lose cat's output).  corral must leave that description as it is.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import CORRAL, base_env, wait_for

PAYLOAD = 1_000_000
APP = {"Procfile": "app: echo hello; touch ready; sleep 30\n"}


def in_pipe(fd: int) -> int:
    """Bytes waiting in the pipe `fd` is an end of."""
    return int.from_bytes(fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"), "little")


@pytest.fixture
def cleanup() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        with contextlib.suppress(OSError):
            proc.kill()
        proc.wait()


def start_corral(root: Path, stdout: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [CORRAL, "start", "--no-colour", "--no-timestamp", "-t", "1"],
        cwd=root,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.DEVNULL,
    )


def test_a_neighbour_on_the_same_stdout_pipe_loses_nothing(
    app_dir: Callable[..., Path], cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """`{ corral start & head -c 1000000 /dev/zero | cat; } | slow reader`."""
    root = app_dir(**APP)
    r, w = os.pipe()
    try:
        corral = start_corral(root, w)
        cleanup.append(corral)
        wait_for(lambda: (root / "ready").exists(), timeout=20)
        # our `w` is the very file description corral's stdout is
        assert os.get_blocking(w), "corral made the shared stdout non-blocking"
        neighbour = subprocess.Popen(
            ["sh", "-c", f"head -c {PAYLOAD} /dev/zero | cat"],
            stdout=w,
            stderr=subprocess.PIPE,
        )
        cleanup.append(neighbour)
        os.close(w)
        w = -1
        # nobody reads until the pipe is full: cat must wait, not fail
        wait_for(lambda: in_pipe(r) >= 60_000 or neighbour.poll() is not None, timeout=20)
        with contextlib.suppress(subprocess.TimeoutExpired):
            neighbour.wait(timeout=0.3)  # a failing cat gives up at once
        received = b""
        while neighbour.poll() is None or select.select([r], [], [], 0)[0]:
            if select.select([r], [], [], 0.1)[0]:
                received += os.read(r, 1 << 16)
        _, err = neighbour.communicate(timeout=20)
        assert neighbour.returncode == 0, err.decode(errors="replace")
        corral.send_signal(signal.SIGTERM)
        while chunk := os.read(r, 1 << 16):  # to EOF: corral has exited
            received += chunk
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    assert received.count(b"\0") == PAYLOAD  # every byte of the neighbour's output
    text = received.replace(b"\0", b"")
    assert b"app.1  | hello\n" in text  # and corral's lines, whole
    assert corral.wait(timeout=20) == 128 + signal.SIGTERM


def test_a_socket_stdout_stays_blocking(
    app_dir: Callable[..., Path], cleanup: list[subprocess.Popen[bytes]]
) -> None:
    """systemd and some log collectors give a socket as stdout."""
    root = app_dir(Procfile="app: echo hello; touch ready; sleep 30\n")
    ours, theirs = socket.socketpair()
    with ours, theirs:
        corral = start_corral(root, theirs.fileno())
        cleanup.append(corral)
        wait_for(lambda: (root / "ready").exists(), timeout=20)
        assert os.get_blocking(theirs.fileno()), "corral made the shared stdout non-blocking"
        received = b""
        deadline = time.monotonic() + 20
        while b"app.1  | hello\n" not in received and time.monotonic() < deadline:
            if select.select([ours], [], [], 0.1)[0]:
                received += ours.recv(1 << 16)
        assert b"app.1  | hello\n" in received
        corral.send_signal(signal.SIGTERM)
        assert corral.wait(timeout=20) == 128 + signal.SIGTERM
