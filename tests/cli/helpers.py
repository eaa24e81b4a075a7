"""Helpers for the black-box CLI tests: live corral processes, a pty, leftovers.

Every process a test starts carries `CLITEST_MARK=<unique id>` in its
environment (set by the autouse fixture in conftest.py and copied by
`tests.support.base_env`); children inherit it.  That lets a test ask "is
anything I started still alive?" without matching command lines that other
people's concurrent test runs may share, and lets teardown kill whatever a
failing test left behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pty
import re
import select
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import CORRAL, Result, base_env

MARK_VAR = "CLITEST_MARK"

TIME = r"\d\d:\d\d:\d\d"
PID_RE = re.compile(r"\(pid[= ](\d+)\)")


# -- leftovers ----------------------------------------------------------------


def marked_pids(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `mark`."""
    needle = f"{MARK_VAR}={mark}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        state = stat[stat.rfind(b")") + 2 :].split()[:1]
        if state == [b"Z"]:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def describe(pids: Sequence[int]) -> list[str]:
    out = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            out.append(f"{pid}: {cmdline}")
        except OSError:
            out.append(f"{pid}: (gone)")
    return out


def kill_marked(mark: str) -> list[str]:
    """SIGKILL everything carrying `mark`; return what was found."""
    leftovers: list[str] = []
    for _ in range(20):
        pids = marked_pids(mark)
        if not pids:
            break
        leftovers.extend(describe(pids))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return leftovers


def assert_nothing_left(mark: str, timeout: float = 3.0) -> None:
    """Within `timeout`, no process started by this test is alive."""
    deadline = time.monotonic() + timeout
    while True:
        pids = marked_pids(mark)
        if not pids:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left behind: {describe(pids)}")
        time.sleep(0.02)


# -- a corral running in the background ---------------------------------------


class Live:
    """`corral ARGS` started in the background, its output collected by threads.

    stdout is a pipe (not a terminal); `lines` grows as corral writes.
    """

    def __init__(
        self,
        *args: str,
        cwd: Path | str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        assert CORRAL, "the corral command is not installed"
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [CORRAL, *args],
            cwd=cwd,
            env=base_env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.lines: list[str] = []
        self.line_times: list[float] = []
        self._err: list[bytes] = []
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._read_out, daemon=True),
            threading.Thread(target=self._read_err, daemon=True),
        ]
        for t in self._threads:
            t.start()
        self.ended_at: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.line_times.append(time.monotonic())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            self._err.append(raw)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def wait_line(self, predicate: str | Callable[[str], bool], timeout: float = 10) -> float:
        """Wait for a line containing `predicate` (or matching it); return when it came."""
        test = (lambda line: predicate in line) if isinstance(predicate, str) else predicate

        def seen() -> float | None:
            with self._lock:
                for line, when in zip(self.lines, self.line_times, strict=True):
                    if test(line):
                        return when
            if self.proc.poll() is not None:
                # exited: one last look after the reader drained the pipe
                self._threads[0].join(timeout=2)
                with self._lock:
                    for line, when in zip(self.lines, self.line_times, strict=True):
                        if test(line):
                            return when
                raise AssertionError(
                    f"corral exited (rc={self.proc.returncode}) without printing a line "
                    f"matching {predicate!r}; output:\n" + "\n".join(self.lines)
                )
            return None

        try:
            return float(_wait(seen, timeout))  # type: ignore[arg-type]
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}\nno line matching {predicate!r}; output so far:\n"
                + "\n".join(self.snapshot())
            ) from None

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 10) -> Result:
        """Wait for corral to exit (fail after `timeout`), return its Result."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(
                f"corral still running after {timeout}s; output:\n" + "\n".join(self.snapshot())
            ) from None
        self.ended_at = time.monotonic()
        for t in self._threads:
            t.join(timeout=5)
        return Result(
            self.proc.returncode,
            "".join(line + "\n" for line in self.snapshot()),
            b"".join(self._err).decode("utf-8", "replace"),
        )

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


def _wait(condition: Callable[[], object], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.01)


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


# -- output lines -------------------------------------------------------------


def split_line(line: str, width: int, timestamp: bool = True) -> tuple[str, str]:
    """Check `HH:MM:SS name | text` with the name padded to `width`; return (name, text)."""
    if timestamp:
        m = re.fullmatch(TIME + r" (.*)", line)
        assert m, f"line does not start with HH:MM:SS and a space: {line!r}"
        line = m.group(1)
    field, sep, text = line[:width], line[width : width + 3], line[width + 3 :]
    assert sep == " | ", f"prefix is not padded to width {width}: {line!r}"
    name = field.rstrip(" ")
    assert name and " " not in name, f"bad name field in {line!r}"
    return name, text


def entries(out: str, width: int, timestamp: bool = True) -> list[tuple[str, str]]:
    return [split_line(line, width, timestamp) for line in out.splitlines()]


def texts(out: str, name: str, width: int, timestamp: bool = True) -> list[str]:
    return [t for n, t in entries(out, width, timestamp) if n == name]


def started_pids(out: str) -> dict[str, int]:
    """`web.1 started (pid=N)` lines -> {"web.1": N}."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\S+) started \(pid=(\d+)\)", out)}


def elapsed(fn: Callable[[], object]) -> tuple[object, float]:
    t0 = time.monotonic()
    value = fn()
    return value, time.monotonic() - t0


# -- errors -------------------------------------------------------------------


def assert_one_error(result: Result, *fragments: str, prefix: str = "corral: error: ") -> str:
    """Exactly one stderr line `corral: error: ...`, rc != 0, no traceback, no stdout."""
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    assert result.rc != 0, f"expected a failure, got rc=0; out={result.out!r} err={result.err!r}"
    assert result.err.endswith("\n") and result.err.count("\n") == 1, (
        f"expected one line on stderr, got {result.err!r}"
    )
    line = result.err.rstrip("\n")
    assert line.startswith(prefix), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert result.out == "", f"nothing should be started: {result.out!r}"
    return line
