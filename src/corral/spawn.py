"""Starting one child: its own process group, clean signals, its output pipes.

`subprocess.Popen` is used only to *start* a child (it does fork/exec, cwd and
fd plumbing well, with vfork when it can); corral never calls `wait`/`poll` on
it, because the reaper owns every `waitpid` (see reaper.py).  Signal state the
child gets: caught signals are reset to default by exec itself, Popen's
`restore_signals` resets the SIGPIPE/SIGXFSZ that Python ignores for itself,
and corral blocks nothing, so the child sees the mask and ignored set corral
was started with.

`start` children get a new session (as honcho does): they are process-group
leaders, so one `killpg` reaches a shell and everything it started, and they
have no controlling terminal, so a Ctrl-C reaches only corral, which then stops
them in order.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.specs import ProcessSpec

STDOUT = "stdout"
STDERR = "stderr"


@dataclass(eq=False)
class Child:
    """A live process we started, until the reaper reports its exit."""

    spec: ProcessSpec
    pid: int
    popen: subprocess.Popen[bytes]
    # read end of each output pipe -> stream name; emptied as pipes hit EOF
    pipes: dict[int, str] = field(default_factory=dict)
    exit_code: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def __repr__(self) -> str:
        state = "running" if self.exit_code is None else f"exited rc={self.exit_code}"
        return f"<Child {self.name} pid={self.pid} {state}>"

    def reaped(self, code: int) -> None:
        self.exit_code = code
        # Tell Popen the process is gone, so its __del__/_cleanup never waits
        # for a pid that may by now belong to someone else.
        self.popen.returncode = code


def _session(
    args: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    stdin: int,
    stdout: int,
    stderr: int,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.Popen[bytes]:
    """fork/exec `args` as the leader of a new session (and process group)."""
    return subprocess.Popen(
        args,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=dict(env),
        cwd=cwd,
        start_new_session=True,
        restore_signals=True,
        close_fds=True,
        preexec_fn=preexec_fn,
    )


def spawn_quiet(command: str, env: Mapping[str, str], cwd: str | None) -> int:
    """Start a shell command with no input or output (a probe's check); its pid.

    Like every child, it is reaped by the reaper only; the returncode set
    here keeps Popen's own clean-up from ever calling waitpid on it.
    """
    devnull = subprocess.DEVNULL
    popen = _session(["/bin/sh", "-c", command], env, cwd, devnull, devnull, devnull)
    popen.returncode = 0
    return popen.pid


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    return read, write


def spawn_piped(spec: ProcessSpec, split_streams: bool = False) -> Child:
    """Start `spec` in a new session with stdin from /dev/null and output on pipes.

    A spec with `tty` set runs on a pseudo-terminal instead (`spawn_pty`).
    """
    if spec.tty:
        return spawn_pty(spec)
    out_r, out_w = _pipe()
    err_r, err_w = _pipe() if split_streams else (out_r, out_w)
    try:
        popen = _session(spec.args(), spec.env, spec.cwd, subprocess.DEVNULL, out_w, err_w)
    except BaseException:
        for fd in {out_r, out_w, err_r, err_w}:
            os.close(fd)
        raise
    for fd in {out_w, err_w}:
        os.close(fd)
    pipes = {out_r: STDOUT}
    if split_streams:
        pipes[err_r] = STDERR
    return Child(spec, popen.pid, popen, pipes)


def spawn_pty(spec: ProcessSpec, rows: int = 24, columns: int = 80) -> Child:
    """Start `spec` on a new pseudo-terminal, its controlling terminal.

    Programs then see a terminal on stdin/stdout/stderr, so they keep their
    colours and line-buffer their output (hivemind's approach, without tmux).
    stdout and stderr are one stream on a terminal; nobody types on it.
    """
    master, slave = os.openpty()
    with contextlib.suppress(OSError):
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    os.set_blocking(master, False)
    try:
        popen = _session(
            spec.args(), spec.env, spec.cwd, slave, slave, slave, _controlling_terminal
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return Child(spec, popen.pid, popen, {master: STDOUT})


def _controlling_terminal() -> None:
    """preexec hook (after setsid): make stdin, the pty, our controlling terminal."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _take_terminal(fd: int) -> Callable[[], None]:
    """preexec hook: own process group, and the foreground of terminal `fd`.

    Done in the child before exec, as tini does, so the command can never
    read the terminal before it is in the foreground (no SIGTTIN race).
    """

    def hook() -> None:
        os.setpgid(0, 0)
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
        try:
            os.tcsetpgrp(fd, os.getpgrp())
        except OSError as exc:
            if exc.errno not in (errno.ENOTTY, errno.ENXIO, errno.EPERM):
                raise
        finally:
            signal.signal(signal.SIGTTOU, old)

    return hook


def _new_group() -> None:
    """preexec hook: own process group (Popen's `process_group` needs 3.11)."""
    os.setpgid(0, 0)


def foreground_terminal() -> int | None:
    """Stdin's fd if it is a terminal whose foreground group is ours, else None.

    Only then may `run` hand the terminal to its command: a background
    `corral run ... &` must not steal the terminal from the shell.
    """
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


def spawn_inherited(spec: ProcessSpec) -> Child:
    """Start `spec` with corral's own stdin/stdout/stderr (for `corral run`).

    The command gets its own process group (so signals can be relayed to all
    it starts); if corral owns the terminal, the command becomes its
    foreground group, so job control and Ctrl-C work as if run directly.
    """
    tty = foreground_terminal()
    popen = subprocess.Popen(
        spec.args(),
        env=dict(spec.env),
        cwd=spec.cwd,
        restore_signals=True,
        close_fds=True,
        preexec_fn=_take_terminal(tty) if tty is not None else _new_group,
    )
    return Child(spec, popen.pid, popen, {})


def reclaim_terminal() -> None:
    """Give the terminal's foreground back to corral's group after `run`."""
    if not os.isatty(0):
        return
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        os.tcsetpgrp(0, os.getpgrp())
    except OSError:
        pass
    finally:
        signal.signal(signal.SIGTTOU, old)
