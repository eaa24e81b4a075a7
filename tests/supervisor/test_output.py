"""corral's own standard output: when writing fails, when it is closed, and
when its reader stalls.

- A full disk (/dev/full) or a file at its size limit: one line on stderr,
  exit 74 (EX_IOERR), everything stopped, no traceback.
- fd 1 closed (`corral start >&-`): a one-line error, exit 1, nothing
  started; a closed stdin or stderr is fine.
- A reader that stops reading must not delay signals: the loop never blocks
  on a write while children run.  (Before: a SIGTERM was acted on only once
  the reader resumed.)
"""

from __future__ import annotations

import array
import fcntl
import os
import resource
import select
import signal
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.supervisor.apps import cmdline
from tests.support import (
    CORRAL,
    assert_nothing_left,
    base_env,
    marked_pids,
    wait_for,
)

OUTPUT_FAILED = 74  # EX_IOERR


def _popen(
    d: Path,
    *args: str,
    stdout: object,
    stderr: object = subprocess.PIPE,
    preexec: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    assert CORRAL
    return subprocess.Popen(
        [CORRAL, *args],
        cwd=d,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=stderr,
        preexec_fn=preexec,
    )


def _finish(proc: subprocess.Popen[bytes], timeout: float = 20) -> tuple[int, str]:
    """rc and stderr of a corral whose stdout is not ours to read."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"corral still running after {timeout}s; stderr: {err!r}") from None
    return proc.returncode, err.decode(errors="replace")


def _limit_file_size(limit: int) -> Callable[[], None]:
    def hook() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return hook


# -- output errors --------------------------------------------------------------


def test_disk_full_stdout_stops_everything_with_one_line(app_dir, mark):
    d = app_dir(Procfile="web: sleep 1000\n")
    with open("/dev/full", "wb") as full:
        proc = _popen(d, "start", stdout=full)
    rc, err = _finish(proc)
    assert "Traceback" not in err, err
    assert err == "corral: cannot write output: No space left on device; stopping\n", err
    assert rc == OUTPUT_FAILED, (rc, err)
    assert_nothing_left(mark)


def test_stdout_file_at_its_size_limit_stops_everything_with_one_line(app_dir, mark, tmp_path):
    limit = 64 * 1024
    d = app_dir(Procfile="web: yes\n")
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        proc = _popen(d, "start", stdout=out, preexec=_limit_file_size(limit))
    rc, err = _finish(proc)
    assert "Traceback" not in err, err
    assert err == "corral: cannot write output: File too large; stopping\n", err
    assert rc == OUTPUT_FAILED, (rc, err)
    assert 0 < log.stat().st_size <= limit
    assert_nothing_left(mark)


# -- closed standard streams ------------------------------------------------------


def test_closed_stdout_is_a_one_line_error_and_starts_nothing(app_dir, mark):
    d = app_dir(Procfile="web: touch started; exec sleep 1000\n")
    proc = _popen(d, "start", stdout=None, preexec=lambda: os.close(1))
    rc, err = _finish(proc)
    assert "Traceback" not in err, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("corral: error: standard output is closed"), err
    assert rc == 1, (rc, err)
    assert not (d / "started").exists(), "a process was started"
    assert_nothing_left(mark)


@pytest.mark.parametrize("fd", [0, 2], ids=["stdin", "stderr"])
def test_closed_stdin_or_stderr_runs_normally(app_dir, mark, fd):
    d = app_dir(Procfile="web: echo hello from web\n")
    proc = _popen(d, "start", stdout=subprocess.PIPE, stderr=None, preexec=lambda: os.close(fd))
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("corral did not finish") from None
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text
    assert "hello from web" in text, text
    assert "web.1 stopped (rc=0)" in text, text
    assert "Traceback" not in text
    assert_nothing_left(mark)


# -- a stalled reader ----------------------------------------------------------------

FLOOD = "import sys; [sys.stdout.write('f'*99+'\\n') for _ in iter(int,1)]"
ONCE = "import time; time.sleep(1); open('once.done','w').close(); print('once done')"
WEB = (
    "import signal,time,sys; "
    "signal.signal(signal.SIGTERM, "
    "lambda *a: (open('term','w').write(str(time.time())), sys.exit(0))); "
    "open('web.ready','w').close(); time.sleep(100)"
)
STALL = 6.0  # how long we leave corral's output unread after the SIGTERM, at most
SIGNAL_LATENCY = 3.0  # upper bound: SIGTERM to corral -> SIGTERM seen by web


def _unread(fd: int) -> int:
    buf = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, buf)
    return buf[0]


def test_stalled_stdout_reader_does_not_delay_signals(app_dir, mark, tmp_path):
    procfile = [
        f'{name}: python3 -c "{code}"'
        for name, code in [("flood", FLOOD), ("once", ONCE), ("web", WEB)]
    ]
    d = app_dir(Procfile="\n".join(procfile) + "\n")
    with (tmp_path / "err.log").open("wb") as err_file:
        proc = _popen(d, "start", "--oneshot", "once", stdout=subprocess.PIPE, stderr=err_file)
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    try:
        # half a pipe unread: flood (MB/s) has filled it by the time the
        # rest is set up (a full pipe holds less than F_GETPIPE_SZ bytes of
        # short writes: page slots)
        backed_up = fcntl.fcntl(out_fd, 1032) // 2  # F_GETPIPE_SZ
        # we read nothing: corral's stdout pipe fills up (flood), web is set
        # up, and `once` has written its marker and exited
        wait_for(lambda: _unread(out_fd) >= backed_up, timeout=15)
        # `once` sleeps a second before it writes its marker and exits:
        # time enough to find it, then to see corral reap it
        once = wait_for(
            lambda: [p for p in marked_pids(mark) if "once done" in " ".join(cmdline(p))],
            timeout=15,
        )
        assert isinstance(once, list) and len(once) == 1, once
        wait_for(lambda: (d / "web.ready").exists() and (d / "once.done").exists(), timeout=15)
        wait_for(lambda: not os.path.exists(f"/proc/{once[0]}"), timeout=15)
        assert proc.poll() is None, "corral exited early"
        assert _unread(out_fd) >= backed_up
        sent = time.time()
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STALL
        while not (d / "term").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        stalled = _unread(out_fd) >= backed_up  # still nothing read by us
        # now read everything, to the end
        chunks = []
        end = time.monotonic() + 60
        while time.monotonic() < end:
            ready, _, _ = select.select([out_fd], [], [], 1)
            if ready:
                data = os.read(out_fd, 1 << 16)
                if not data:
                    break
                chunks.append(data)
        else:
            raise AssertionError("corral's output did not end")
        rc = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    assert stalled
    seen = float((d / "term").read_text())
    assert seen - sent < SIGNAL_LATENCY, f"web got SIGTERM {seen - sent:.2f}s after corral did"
    out = b"".join(chunks).decode(errors="replace")
    err = (tmp_path / "err.log").read_text(errors="replace")
    assert "Traceback" not in err, err
    assert rc == 143, (rc, err, out[-2000:])
    assert "once.1 completed (rc=0)" in out
    assert_nothing_left(mark)
