"""Starting one child: its own session, clean signals, its output pipes.

Every child gets back exactly the signal state corral was started with (see
signals.ChildSignals), never what corral set for itself.  Usually exec does
it all: caught signals return to their default, Popen's `restore_signals`
resets the SIGPIPE and SIGXFSZ that Python ignores, and corral blocks
nothing.  When that is not enough (a launcher gave corral a blocked mask, or
corral had to ignore SIGTTOU), a `preexec` hook restores the mask and
dispositions; it costs a fork instead of Popen's vfork, about a millisecond
a child, so it is used only then.  Why not `os.posix_spawn`, which takes a
mask and a default set?  glibc's posix_spawn leaves its own internal signals
(32, 33) ignored in the child, and in Python it cannot change the child's
directory.

`start` children get a new session (as honcho does): each is a process-group
leader, so one `killpg` reaches a shell and everything it started, and has no
controlling terminal, so a Ctrl-C reaches only corral, which then stops
everyone in order.  `corral run` keeps the caller's session and, under a
terminal, hands the command the foreground.

Nothing here ever waits: the reaper owns every `waitpid` (see reaper.py).
Each Popen gets a returncode at once so its own clean-up never waits either.
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

from corral.signals import ChildSignals
from corral.specs import ProcessSpec

STDOUT = "stdout"
STDERR = "stderr"


@dataclass(eq=False)
class Child:
    """A live process we started, until the reaper reports its exit."""

    spec: ProcessSpec
    pid: int
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


def _setup(
    signals: ChildSignals,
    *,
    new_group: bool = False,
    terminal: int | None = None,
    controlling: bool = False,
) -> Callable[[], None]:
    """The preexec hook: runs in the child between fork and exec.

    new_group:   own process group in the caller's session (`run`)
    terminal:    take the foreground of this terminal fd (`run` under a tty);
                 done in the child, as tini does, so the command can never
                 read the terminal before it is in the foreground
    controlling: make stdin (a pty) the controlling terminal of the new
                 session (`--tty`)
    """

    def hook() -> None:
        if new_group:
            os.setpgid(0, 0)
        if terminal is not None:
            signal.signal(signal.SIGTTOU, signal.SIG_IGN)
            try:
                os.tcsetpgrp(terminal, os.getpgrp())
            except OSError as exc:
                if exc.errno not in (errno.ENOTTY, errno.ENXIO, errno.EPERM):
                    raise
        if controlling:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        for signum in signals.default:
            signal.signal(signum, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, signals.mask)

    return hook


def _hook(signals: ChildSignals) -> Callable[[], None] | None:
    """The signal-restoring hook, only when exec alone would not do."""
    return _setup(signals) if signals.needs_hook else None


def _popen(
    args: list[str],
    env: Mapping[str, str],
    cwd: str | None,
    stdio: tuple[int | None, int | None, int | None],
    setup: Callable[[], None] | None,
    new_session: bool = True,
) -> int:
    """fork/exec; without a `setup` hook Popen can use the faster vfork."""
    popen = subprocess.Popen(
        args,
        stdin=stdio[0],
        stdout=stdio[1],
        stderr=stdio[2],
        env=dict(env),
        cwd=cwd,
        start_new_session=new_session,
        restore_signals=True,
        close_fds=True,
        preexec_fn=setup,
    )
    popen.returncode = 0  # the reaper owns its wait (module docstring)
    return popen.pid


def spawn_quiet(
    command: str, env: Mapping[str, str], cwd: str | None, signals: ChildSignals
) -> int:
    """Start a shell command with no input or output (a probe's check); its pid."""
    devnull = subprocess.DEVNULL
    return _popen(["/bin/sh", "-c", command], env, cwd, (devnull,) * 3, _hook(signals))


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    return read, write


def spawn_piped(spec: ProcessSpec, signals: ChildSignals, split_streams: bool = False) -> Child:
    """Start `spec` in a new session with stdin from /dev/null and output on pipes.

    A spec with `tty` set runs on a pseudo-terminal instead (`spawn_pty`).
    """
    if spec.tty:
        return spawn_pty(spec, signals)
    out_r, out_w = _pipe()
    err_r, err_w = _pipe() if split_streams else (out_r, out_w)
    try:
        stdio = (subprocess.DEVNULL, out_w, err_w)
        pid = _popen(spec.args(), spec.env, spec.cwd, stdio, _hook(signals))
    except BaseException:
        for fd in {out_r, err_r}:
            os.close(fd)
        raise
    finally:
        for fd in {out_w, err_w}:
            os.close(fd)
    pipes = {out_r: STDOUT}
    if split_streams:
        pipes[err_r] = STDERR
    return Child(spec, pid, pipes)


def spawn_pty(spec: ProcessSpec, signals: ChildSignals, rows: int = 24, columns: int = 80) -> Child:
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
        setup = _setup(signals, controlling=True)
        pid = _popen(spec.args(), spec.env, spec.cwd, (slave, slave, slave), setup)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return Child(spec, pid, {master: STDOUT})


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


def spawn_inherited(spec: ProcessSpec, signals: ChildSignals) -> Child:
    """Start `spec` with corral's own stdin/stdout/stderr (for `corral run`).

    The command gets its own process group (so signals can be relayed to all
    it starts); if corral owns the terminal, the command becomes its
    foreground group, so job control and Ctrl-C work as if run directly.
    """
    setup = _setup(signals, new_group=True, terminal=foreground_terminal())
    pid = _popen(spec.args(), spec.env, spec.cwd, (None, None, None), setup, new_session=False)
    return Child(spec, pid, {})


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
