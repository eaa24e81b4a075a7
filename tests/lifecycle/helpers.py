"""Helpers for the lifecycle black-box tests: live corral runs, output lines,
child scripts, leftovers.

Every process a test starts carries `LIFECYCLE_MARK=<unique id>` in its
environment (set by the autouse fixture in conftest.py, copied by
`tests.support.base_env`, inherited by every child), so teardown can kill
exactly what this test left behind and a test can assert nothing is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.support import CORRAL, Result, base_env

MARK_VAR = "LIFECYCLE_MARK"

# `HH:MM:SS name | text` (the time is optional: --no-timestamp)
LINE_RE = re.compile(r"^(?:\d\d:\d\d:\d\d )?(\S+) *\| (.*)$")

# A child that reports the signals it gets.  Usage:
#   python3 child.py NAME [exit|ignore] [LINGER] [CODE]
# It installs handlers, writes NAME.ready, then idles.  On a signal it appends
# `NAME SIGNAME <time>` to events.log and writes the name to NAME.sig; in
# `exit` mode it then lingers LINGER seconds, logs `NAME exit <time>` and exits
# CODE; in `ignore` mode it carries on.
CHILD = r"""
import os, signal, sys, time
name = sys.argv[1]
mode = sys.argv[2] if len(sys.argv) > 2 else "exit"
linger = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
code = int(sys.argv[4]) if len(sys.argv) > 4 else 0
exiting = False

def log(text):
    fd = os.open("events.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, f"{name} {text} {time.time():.6f}\n".encode())
    os.close(fd)

def handler(signum, frame):
    global exiting
    signame = signal.Signals(signum).name
    log(signame)
    with open(name + ".sig", "a") as f:
        f.write(signame + "\n")
    if mode == "exit" and not exiting:
        exiting = True
        time.sleep(linger)
        log("exit")
        os._exit(code)

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
          signal.SIGUSR1, signal.SIGUSR2):
    signal.signal(s, handler)
open(name + ".ready", "w").close()
print(f"{name} ready", flush=True)
while True:
    time.sleep(0.05)
"""


# `wait_files a b ...`: a Procfile snippet that waits (bounded, 10 s) for files.
def wait_files(*names: str) -> str:
    cond = " && ".join(f"[ -e {n} ]" for n in names)
    return f"i=0; until {cond}; do i=$((i+1)); [ $i -gt 500 ] && exit 99; sleep 0.02; done"


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


def kill_marked(mark: str) -> None:
    for _ in range(20):
        pids = marked_pids(mark)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def wait_no_leftovers(mark: str, timeout: float = 3) -> None:
    """Assert every process this test started is gone (allowing `timeout`)."""
    deadline = time.monotonic() + timeout
    while True:
        pids = marked_pids(mark)
        if not pids:
            return
        if time.monotonic() > deadline:
            cmds = []
            for pid in pids:
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                    cmds.append(f"{pid}: {cmdline}")
                except OSError:
                    cmds.append(f"{pid}: (gone)")
            raise AssertionError("processes left behind:\n" + "\n".join(cmds))
        time.sleep(0.05)


# -- ports --------------------------------------------------------------------


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base_port(types: int = 3) -> int:
    """A base port such that base + 100*i (i < types) are all free now."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 40000)
        if all(_port_free(base + 100 * i) for i in range(types)):
            return base
    raise AssertionError("no free ports found")


# -- a corral running in the background ----------------------------------------


class Live:
    """corral in the background; stdout lines collected with arrival times."""

    def __init__(self, *args: str, cwd: Path | str, env: dict[str, str] | None = None) -> None:
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

    def time_of(self, fragment: str) -> float:
        """Arrival time of the first line containing `fragment` (must exist)."""
        with self._lock:
            for line, when in zip(self.lines, self.times, strict=True):
                if fragment in line:
                    return when
        raise AssertionError(f"no line containing {fragment!r}:\n" + "\n".join(self.lines))

    def wait_line(self, fragment: str, timeout: float = 10) -> float:
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for line, when in zip(self.lines, self.times, strict=True):
                    if fragment in line:
                        return when
            if self.proc.poll() is not None:
                self._threads[0].join(timeout=2)
                with self._lock:
                    for line, when in zip(self.lines, self.times, strict=True):
                        if fragment in line:
                            return when
                raise AssertionError(
                    f"corral exited (rc={self.proc.returncode}) without a line containing "
                    f"{fragment!r}:\n"
                    + "\n".join(self.snapshot())
                    + "\nstderr:\n"
                    + b"".join(self._err).decode(errors="replace")
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"no line containing {fragment!r} within {timeout}s:\n"
                    + "\n".join(self.snapshot())
                )
            time.sleep(0.01)

    def send(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def finish(self, timeout: float = 10) -> Result:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise AssertionError(
                f"corral still running after {timeout}s:\n" + "\n".join(self.snapshot())
            ) from None
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


# -- output -------------------------------------------------------------------


def parsed(out: str) -> list[tuple[str, str]]:
    """`(name, text)` for every prefixed line of text output."""
    result = []
    for line in out.splitlines():
        m = LINE_RE.match(line)
        assert m, f"not a prefixed output line: {line!r}"
        result.append((m.group(1), m.group(2)))
    return result


def system(out: str) -> list[str]:
    """The texts of corral's own `system` lines, in order."""
    return [text for name, text in parsed(out) if name == "system"]


def texts(out: str, name: str) -> list[str]:
    """What the instance `name` (e.g. `web.1`) printed, in order."""
    return [text for n, text in parsed(out) if n == name]


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


def assert_one_error(result: Result, *fragments: str) -> str:
    """One `corral: error: ...` line on stderr, rc != 0, no traceback, nothing started."""
    assert "Traceback" not in result.err and "Traceback" not in result.out, result.err
    assert result.rc != 0, f"expected a failure, got rc=0; out={result.out!r} err={result.err!r}"
    assert result.err.endswith("\n") and result.err.count("\n") == 1, (
        f"expected exactly one line on stderr, got {result.err!r} (stdout {result.out!r})"
    )
    line = result.err.rstrip("\n")
    assert line.startswith("corral: error: "), line
    for fragment in fragments:
        assert fragment in line, (fragment, line)
    assert "started (pid=" not in result.out, f"nothing should start: {result.out!r}"
    return line


def timed(fn: Callable[[], Result]) -> tuple[Result, float]:
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0
