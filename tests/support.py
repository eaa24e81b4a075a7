"""Helpers for black-box tests: run the installed `corral` (to completion or
live in the background), wait for conditions, find leftover processes, parse
its output, check one-line errors.

Black-box tests run the `corral` console script installed beside the Python
running pytest (the venv `.ci/run` builds), never the source tree directly.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

BIN_DIR = Path(sys.executable).parent
CORRAL = str(BIN_DIR / "corral") if (BIN_DIR / "corral").exists() else shutil.which("corral")

T = TypeVar("T")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A predictable environment: no colour forcing, no CORRAL_* leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORRAL_") and k not in ("NO_COLOR", "FORCE_COLOR", "PORT", "PROCFILE")
    }
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    if extra:
        env.update(extra)
    return env


def run_corral(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    input: str | None = None,
) -> Result:
    """Run the installed corral to completion; return rc, stdout, stderr."""
    assert CORRAL, "the corral command is not installed"
    proc = subprocess.run(
        [CORRAL, *args],
        cwd=cwd,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def wait_for(
    condition: Callable[[], object], timeout: float = 10, interval: float = 0.02
) -> object:
    """Poll `condition` until truthy or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    assert "Traceback" not in result.out, result.out


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """`fn()` and how long it took, in seconds."""
    t0 = time.monotonic()
    value = fn()
    return value, time.monotonic() - t0


# -- leftovers ----------------------------------------------------------------
#
# Every process a test starts carries `TEST_MARK=<unique id>` in its
# environment (set by the autouse `mark` fixture in conftest.py and copied by
# `base_env`); children inherit it.  That lets a test ask "is anything I
# started still alive?" without matching command lines that other people's
# concurrent test runs may share, and lets teardown kill whatever a failing
# test left behind.  (Not a CORRAL_* name: `base_env` strips those.)

MARK_VAR = "TEST_MARK"


def pids_with_env(var: str, value: str, *, zombies: bool = False) -> list[int]:
    """Processes (but this one) whose environment holds `var=value`; zombies only if asked."""
    needle = f"{var}={value}".encode()
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                environ = f.read()
            if not zombies:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    stat = f.read()
        except OSError:
            continue
        if not zombies and stat[stat.rfind(b")") + 2 :].split()[:1] == [b"Z"]:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry))
    return found


def marked_pids(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries `mark`."""
    return pids_with_env(MARK_VAR, mark)


def describe(pids: Sequence[int]) -> list[str]:
    """`PID: command line` for each pid (`PID: (gone)` if it has gone)."""
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
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    return leftovers


def assert_nothing_left(mark: str, timeout: float = 3.0) -> None:
    """Within `timeout`, no process started by this test is alive."""
    left: list[int] = []

    def gone() -> bool:
        left[:] = marked_pids(mark)
        return not left

    try:
        wait_for(gone, timeout)
    except AssertionError:
        raise AssertionError("processes left behind:\n" + "\n".join(describe(left))) from None


# -- a corral running in the background ---------------------------------------


class Live:
    """`corral ARGS` started in the background, its output collected by threads.

    stdout is a pipe (not a terminal); `lines` grows as corral writes, and
    `times` holds when each line arrived (time.monotonic()).
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
        self.times: list[float] = []
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
                self.times.append(time.monotonic())

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        for raw in iter(self.proc.stderr.readline, b""):
            self._err.append(raw)

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def _first(self, test: Callable[[str], bool]) -> float | None:
        with self._lock:
            for line, when in zip(self.lines, self.times, strict=True):
                if test(line):
                    return when
        return None

    def time_of(self, fragment: str) -> float:
        """Arrival time of the first line containing `fragment` (must exist)."""
        when = self._first(lambda line: fragment in line)
        if when is None:
            raise AssertionError(f"no line containing {fragment!r}:\n" + "\n".join(self.snapshot()))
        return when

    def wait_line(self, predicate: str | Callable[[str], bool], timeout: float = 10) -> float:
        """Wait for a line containing `predicate` (or matching it); return when it came."""
        test = (lambda line: predicate in line) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while True:
            when = self._first(test)
            if when is not None:
                return when
            if self.proc.poll() is not None:
                # exited: one last look after the reader drained the pipe
                self._threads[0].join(timeout=2)
                when = self._first(test)
                if when is not None:
                    return when
                raise AssertionError(
                    f"corral exited (rc={self.proc.returncode}) without printing a line "
                    f"matching {predicate!r}; output:\n"
                    + "\n".join(self.snapshot())
                    + "\nstderr:\n"
                    + b"".join(self._err).decode(errors="replace")
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no line matching {predicate!r} within {timeout}s; output so far:\n"
                    + "\n".join(self.snapshot())
                )
            time.sleep(0.01)

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


# -- output lines -------------------------------------------------------------

TIME = r"\d\d:\d\d:\d\d"

# `HH:MM:SS name | text` (the time is optional: --no-timestamp)
LINE_RE = re.compile(r"^(?:\d\d:\d\d:\d\d )?(\S+) *\| (.*)$")


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
    """`(name, text)` for every line, each checked by `split_line`."""
    return [split_line(line, width, timestamp) for line in out.splitlines()]


def parsed(out: str) -> list[tuple[str, str]]:
    """`(name, text)` for every prefixed line of text output (any padding, time optional)."""
    result = []
    for line in out.splitlines():
        m = LINE_RE.match(line)
        assert m, f"not a prefixed output line: {line!r}"
        result.append((m.group(1), m.group(2)))
    return result


def texts(out: str, name: str, width: int | None = None, timestamp: bool = True) -> list[str]:
    """What the instance `name` (e.g. `web.1`) printed, in order.

    With `width`, every line must be exactly `split_line`'s format (prefix
    padded to `width`, a time unless `timestamp` is false); without, `parsed`'s.
    """
    lines = parsed(out) if width is None else entries(out, width, timestamp)
    return [text for n, text in lines if n == name]


def system(out: str) -> list[str]:
    """The texts of corral's own `system` lines, in order."""
    return [text for name, text in parsed(out) if name == "system"]


def started_pids(out: str) -> dict[str, int]:
    """`web.1 started (pid=N)` lines -> {"web.1": N}."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"(\S+) started \(pid=(\d+)\)", out)}


def index(lines: Sequence[str], fragment: str, start: int = 0) -> int:
    """Index of the first line (from `start`) containing `fragment`; fails if none."""
    for i in range(start, len(lines)):
        if fragment in lines[i]:
            return i
    raise AssertionError(f"no line containing {fragment!r}:\n" + "\n".join(lines))


def count(lines: Sequence[str], fragment: str) -> int:
    return sum(fragment in line for line in lines)


def in_order(lines: Sequence[str], *fragments: str) -> None:
    """Each fragment appears (first occurrence) after the previous one."""
    positions = [index(lines, f) for f in fragments]
    assert positions == sorted(positions), (
        "out of order: "
        + ", ".join(f"{f!r}@{p}" for f, p in zip(fragments, positions, strict=True))
        + "\n"
        + "\n".join(lines)
    )


def events(out: str) -> list[dict[str, object]]:
    """JSON-log lines as objects."""
    return [json.loads(line) for line in out.splitlines() if line.strip()]


# -- errors -------------------------------------------------------------------


def assert_one_error(
    result: Result,
    *fragments: str,
    prefix: str = "corral: error: ",
    allow_stdout: bool = False,
) -> str:
    """Exactly one stderr line `corral: error: ...` (holding every fragment), rc != 0,
    no traceback; nothing on stdout, or with `allow_stdout` at least nothing started."""
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    assert result.rc != 0, f"expected a failure, got rc=0; out={result.out!r} err={result.err!r}"
    assert result.err.endswith("\n") and result.err.count("\n") == 1, (
        f"expected exactly one line on stderr, got {result.err!r} (stdout {result.out!r})"
    )
    line = result.err.rstrip("\n")
    assert line.startswith(prefix), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    if allow_stdout:
        assert "started (pid=" not in result.out, f"nothing should start: {result.out!r}"
    else:
        assert result.out == "", f"nothing should be started: {result.out!r}"
    return line
