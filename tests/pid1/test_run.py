"""Scenario 9: `corral run` as init (exit codes, relaying, exec failures,
stdin, cwd, no orphan left), and scenario 12: `run` under a pseudo-terminal
(the command gets the terminal's foreground group: job control works).
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import termios
import time
from pathlib import Path

import pytest

from tests.pid1.harness import (
    Corral,
    CorralFactory,
    describe,
    helper,
    pids_with_arg,
    read_lines,
    unique,
)
from tests.support import wait_for


@pytest.mark.parametrize(
    ("script", "code"),
    [
        ("exit 0", 0),
        ("exit 3", 3),
        ("kill -USR1 $$", 128 + signal.SIGUSR1),
        ("kill -KILL $$", 128 + signal.SIGKILL),
    ],
    ids=["exit0", "exit3", "USR1", "KILL"],
)
def test_exit_code(mode: str, script: str, code: int, corral: CorralFactory, tmp_path) -> None:
    c = corral(mode, "run", "--", "sh", "-c", script, cwd=tmp_path)
    rc = c.wait()
    assert rc == code, f"`{script}`: rc {rc}, expected {code}; stderr: {c.err()!r}"


def _catcher(c_args: list[str]) -> list[str]:
    return [*shlex.split(helper("catcher.py")), *c_args]


def test_sigterm_is_relayed(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    log, ready = tmp_path / "sig.log", tmp_path / "ready"
    argv = _catcher([str(log), "--ready", str(ready), "--exit-on", "TERM=0"])
    c = corral(mode, "run", "--", *argv, cwd=tmp_path)
    wait_for(ready.exists, timeout=10)
    rc = c.stop(signal.SIGTERM)
    assert read_lines(log) == ["15"], "the command did not get SIGTERM"
    assert rc == 0, f"the command exited 0 after SIGTERM, corral rc {rc}; {c.err()!r}"


def test_signals_are_relayed_and_run_keeps_going(
    mode: str, corral: CorralFactory, tmp_path: Path
) -> None:
    log, ready = tmp_path / "sig.log", tmp_path / "ready"
    argv = _catcher([str(log), "--ready", str(ready), "--exit-on", "TERM=0"])
    c = corral(mode, "run", "--", *argv, cwd=tmp_path)
    wait_for(ready.exists, timeout=10)
    expected: list[str] = []
    for signum in (
        signal.SIGUSR1,
        signal.SIGHUP,
        signal.SIGUSR2,
        signal.SIGQUIT,
        signal.SIGWINCH,
        signal.SIGINT,
    ):
        c.kill(signum)
        expected.append(str(int(signum)))
        try:
            wait_for(lambda: read_lines(log) == expected, timeout=5)
        except AssertionError:
            raise AssertionError(
                f"after {signal.Signals(signum).name}: log {read_lines(log)}, "
                f"expected {expected}; corral alive: {c.alive()}"
            ) from None
        assert c.alive(), f"corral exited after {signal.Signals(signum).name}"
    rc = c.stop(signal.SIGTERM)
    assert rc == 0, f"rc {rc}; {c.err()!r}"
    assert read_lines(log) == [*expected, "15"]


@pytest.mark.parametrize(
    ("path", "code"), [("/nonexistent", 127), ("/etc", 126)], ids=["missing", "directory"]
)
def test_exec_failure(mode: str, path: str, code: int, corral: CorralFactory, tmp_path) -> None:
    c = corral(mode, "run", "--", path, cwd=tmp_path)
    rc = c.wait()
    err = c.err()
    assert rc == code, f"rc {rc}, expected {code}; stderr: {err!r}"
    assert "Traceback" not in err, err
    assert path in err, f"the message does not name {path}: {err!r}"
    if code == 127:
        assert "not found" in err.lower() or "no such file" in err.lower(), err


@pytest.mark.parametrize("code", [0, 7])
def test_stdin_reaches_the_command(mode: str, code: int, corral: CorralFactory, tmp_path) -> None:
    c = corral(mode, "run", "--", "sh", cwd=tmp_path, stdin=subprocess.PIPE)
    assert c.popen.stdin is not None
    c.popen.stdin.write(f"exit {code}\n".encode())
    c.popen.stdin.close()
    rc = c.wait()
    assert rc == code, f"rc {rc}; stderr: {c.err()!r}"


def test_command_runs_in_callers_cwd(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    work = tmp_path / "some dir"
    work.mkdir()
    c = corral(mode, "run", "--", "sh", "-c", "readlink /proc/$$/cwd", cwd=work)
    rc = c.wait()
    assert rc == 0, c.err()
    assert c.out().strip() == str(work.resolve())


def test_stop_leaves_no_orphan(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    """SIGTERM: the command dies of it; what it started (even in another session) goes too."""
    escapee, fg = unique(), unique()
    c = corral(mode, "run", "--", "sh", "-c", f"setsid sleep {escapee} & sleep {fg}", cwd=tmp_path)
    wait_for(lambda: pids_with_arg(escapee) and pids_with_arg(fg), timeout=10)
    rc = c.stop(signal.SIGTERM)
    assert rc == 143, f"rc {rc}; {c.err()!r}"
    left = pids_with_arg(escapee) + pids_with_arg(fg) + c.leftovers()
    assert left == [], f"left behind after corral exited:\n{describe(set(left))}"


def test_command_exit_leaves_no_daemon(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    daemon = unique()
    c = corral(mode, "run", "--", "sh", "-c", f"sleep {daemon} & exit 4", cwd=tmp_path)
    rc = c.wait()
    assert rc == 4, f"rc {rc}; {c.err()!r}"
    left = pids_with_arg(daemon) + c.leftovers()
    assert left == [], f"left behind after corral exited:\n{describe(set(left))}"


# -- under a pseudo-terminal -----------------------------------------------------------


BASH = shutil.which("bash")
SHELL = BASH or "sh"


class Pty:
    """corral's stdin/stdout/stderr are a pty slave that is its controlling
    terminal (as under `docker run -it`): new session, then TIOCSCTTY."""

    def __init__(self, corral: CorralFactory, mode: str, argv: list[str], cwd: Path, **kw) -> None:
        self.master, slave = os.openpty()

        def take_tty() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        try:
            self.c: Corral = corral(
                mode,
                "run",
                "--",
                *argv,
                cwd=cwd,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                preexec=take_tty,
                **kw,
            )
        finally:
            os.close(slave)
        self.output = b""

    def read_until(self, pattern: bytes, timeout: float = 10) -> bytes:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.output):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{pattern!r} not seen on the terminal: {self.output!r}")
            r, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # EIO: every slave fd closed
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"terminal closed before {pattern!r}: {self.output!r}")
                self.output += chunk
        return self.output

    def drain(self, timeout: float = 10) -> bytes:
        """Read until the slave side is closed by everyone (or timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                self.output += chunk
            elif self.c.popen.poll() is not None:
                break
        return self.output

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        os.close(self.master)


def test_pty_job_control_noninteractive(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    t = Pty(corral, mode, [SHELL, "-m", "-c", "echo flags=$-"], tmp_path)
    try:
        t.read_until(rb"flags=\w+")
        rc = t.c.wait()
        out = t.drain().decode(errors="replace")
    finally:
        t.close()
    assert rc == 0, out
    flags = re.search(r"flags=(\w+)", out)
    assert flags and "m" in flags.group(1), f"job control is off: {out!r}"
    assert "no job control" not in out and "terminal process group" not in out, out


def test_pty_interactive_shell(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    prompt = "corral-pty-prompt$ "
    argv = [BASH, "--norc", "--noprofile", "-i"] if BASH else ["sh", "-i"]
    t = Pty(corral, mode, argv, tmp_path, env={"PS1": prompt, "TERM": "dumb"})
    try:
        t.read_until(re.escape(prompt.encode()))
        t.write(b"echo flags=$-; exit 0\n")
        t.read_until(rb"flags=\w+")
        rc = t.c.wait()
        out = t.drain().decode(errors="replace")
    finally:
        t.close()
    assert rc == 0, out
    flags = re.search(r"flags=(\w+)", out)
    assert flags and "m" in flags.group(1) and "i" in flags.group(1), out
    assert "no job control" not in out and "terminal process group" not in out, out


def test_pty_command_is_the_foreground_group(
    mode: str, corral: CorralFactory, tmp_path: Path
) -> None:
    """The command's process group is the terminal's foreground group (tpgid)."""
    t = Pty(corral, mode, ["cat", "/proc/self/stat"], tmp_path)
    try:
        rc = t.c.wait()
        out = t.drain().decode(errors="replace")
    finally:
        t.close()
    assert rc == 0, out
    stat = out.strip().splitlines()[-1]
    fields = stat[stat.rfind(")") + 2 :].split()
    pid, pgrp, tpgid = int(stat.split()[0]), int(fields[2]), int(fields[5])
    assert pgrp == pid, f"the command does not lead its own group: {stat}"
    assert tpgid == pgrp, f"foreground group {tpgid}, command's group {pgrp}: {stat}"
