"""Signal intake: every signal becomes a byte on a socket the event loop watches.

Why this design (and not the alternatives):

* Handlers are no-ops and `signal.set_wakeup_fd` writes the signal number to a
  non-blocking socketpair; the loop reads the bytes (`drain`) and decides.  So
  nothing runs in handler context, the loop sleeps in one `select` with no
  timeout when idle, and a signal arriving at any moment (even mid-startup) is
  simply queued.  (trio and asyncio use the same trick.)
* We do *not* keep signals blocked and `sigtimedwait` (tini's way) or use
  signalfd: corral's own mask would then have to be undone in every child.
  Instead the signals we handle are *unblocked* for corral (a launcher may
  have blocked them: tini's sigconf case), and each child gets back exactly
  the mask and the ignored set corral was started with (`ChildSignals`).
* A signal that was *ignored* when corral started (`nohup`, `&` in a script)
  is left ignored, as Python does for SIGINT: children then inherit the same
  ignored set corral was given.  SIGCHLD is always caught: the loop needs it.
* SIGTSTP, SIGTTIN and SIGTTOU are caught and dropped: corral must never be
  stopped while its processes run unmanaged.  A caught (rather than
  ignored) signal is reset by exec, so children get the default without a
  preexec step.  One exception: with `stty tostop` on its terminal, a
  background write raises SIGTTOU on every retry, so there SIGTTOU is
  ignored instead (as tini does), and children reset it in a preexec hook.

Every catchable signal whose default action would kill corral is handled, so
that no signal can make corral die and strand its processes: SIGTERM, SIGINT,
SIGPWR and SIGRTMIN+3 (systemd's halt signal, a common STOPSIGNAL) stop the
group; the rest are relayed to the children.

PID 1 note: the kernel delivers to a namespace's init only signals it has a
handler for, so installing a handler is what makes SIGHUP, SIGUSR1 etc. reach
corral at all when it runs as PID 1.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass
from types import FrameType
from typing import Any

_RTMIN, _RTMAX = int(signal.SIGRTMIN), int(signal.SIGRTMAX)
SIGRTMIN_3 = _RTMIN + 3

# Start group termination (a second one skips the grace period).
TERMINATING = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGPWR, SIGRTMIN_3})
# Relayed to every child's process group; corral keeps running.  Beyond the
# ones users send on purpose, every other signal whose default is to terminate.
FORWARDED = frozenset(
    {
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
        signal.SIGALRM,
        signal.SIGVTALRM,
        signal.SIGPROF,
        signal.SIGIO,
        signal.SIGXCPU,
        *(s for s in range(_RTMIN, _RTMAX + 1) if s != SIGRTMIN_3),
    }
)
HANDLED = frozenset({*TERMINATING, *FORWARDED, signal.SIGCHLD})
# Synchronous faults: a handler that returns would re-run the faulting
# instruction forever, so `corral run` relays these (when sent with kill)
# through a signalfd while they stay blocked; a real fault in corral is
# delivered by the kernel whatever the mask, and still kills it.
FAULTS = frozenset({signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL})
# `corral run` relays every signal an init should: everything catchable but
# the job-control signals and the faults above (which come by the signalfd).
RELAYED_BY_RUN = frozenset(
    {
        *HANDLED,
        signal.SIGCONT,
        signal.SIGURG,
        signal.SIGPIPE,
        signal.SIGXFSZ,
        signal.SIGABRT,
        signal.SIGTRAP,
        signal.SIGSYS,
    }
)
# Ignored by corral itself, default again in its children.
JOB_CONTROL = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})
# Python ignores these for itself at start-up; we cannot know what corral was
# given, so children get the default action, as from any shell.
PYTHON_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})

# Set by `corral.boot` when it blocked HANDLED before the slow imports: the
# mask corral was really started with.
early_mask: frozenset[int] | None = None


class Interrupted(BaseException):
    """A stop signal arrived while corral was still loading (no child yet).

    A BaseException, like KeyboardInterrupt, so that no `except Exception`
    on the way swallows it; `cli` turns it into exit 128+N.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def accept_early_stop() -> None:
    """Let the stop signals in while corral loads its files.

    `corral.boot` blocks every handled signal during the imports (as PID 1 one
    arriving then would be dropped).  Loading can then block (a FIFO named as
    the Procfile, a slow network file system): a SIGTERM or Ctrl-C must still
    end it.  So as soon as the imports are done, the stop signals get a handler
    that raises `Interrupted` and are unblocked; one that arrived meanwhile
    is delivered at once.  The other handled signals stay blocked (pending)
    until `SignalPipe` takes over: before any child exists there is nobody
    to relay them to.  A signal ignored at start-up stays ignored.
    """
    for signum in TERMINATING:
        if signal.getsignal(signum) != signal.SIG_IGN:
            signal.signal(signum, _interrupt)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, TERMINATING)


@dataclass(frozen=True)
class ChildSignals:
    """The signal state a child must start with: corral's inherited mask, and
    the signals to reset to their default action (everything corral changed
    for itself that was not ignored when it started)."""

    mask: frozenset[int] = frozenset()
    default: frozenset[int] = PYTHON_IGNORED
    ignored: frozenset[int] = frozenset()  # the ones corral set to SIG_IGN
    blocked: frozenset[int] = frozenset()  # the ones corral blocks for itself (FAULTS)

    @property
    def needs_hook(self) -> bool:
        """Whether exec alone (plus Popen's `restore_signals`, which resets
        SIGPIPE and SIGXFSZ) would leave the child with something else."""
        return bool(self.mask or self.ignored or self.blocked)


def name(signum: int) -> str:
    """`SIGTERM` for 15, `SIGRTMIN+3` for 37; `signal N` if Python has no name."""
    if _RTMIN < signum <= _RTMAX:
        return f"SIGRTMIN+{signum - _RTMIN}"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def _tostop() -> bool:
    """Is stdout or stderr a terminal that stops background writers?"""
    import termios

    for fd in (1, 2):
        try:
            if termios.tcgetattr(fd)[3] & termios.TOSTOP:
                return True
        except (termios.error, OSError):
            continue
    return False


def _noop(signum: int, frame: FrameType | None) -> None:
    """Signal handler: does nothing; the wakeup fd carries the signal."""


class SignalPipe:
    """Installs no-op handlers for `HANDLED` and routes them to `fileno()`.

    Use as a context manager: on exit the previous handlers, mask and wakeup
    fd are restored.  `drain()` returns the signal numbers received since the
    last call, in arrival order; `children` is the state to give children.
    """

    def __init__(self, relay_all: bool = False) -> None:
        self.relay_all = relay_all  # `corral run`: RELAYED_BY_RUN, and FAULTS by `faults`
        self.faults: FaultPipe | None = None
        self._read, self._write = socket.socketpair()
        self._read.setblocking(False)
        self._write.setblocking(False)
        self._saved: dict[int, Any] = {}
        self._saved_fd = -1
        self._saved_mask: set[int] = set()
        self.children = ChildSignals()

    def __enter__(self) -> SignalPipe:
        self._saved_fd = signal.set_wakeup_fd(self._write.fileno(), warn_on_full_buffer=False)
        reset: set[int] = set(PYTHON_IGNORED)
        ignore = {signal.SIGTTOU} if _tostop() else set()
        handled = RELAYED_BY_RUN if self.relay_all else HANDLED
        for signum in sorted(handled | JOB_CONTROL):
            previous = signal.getsignal(signum)
            ours = signum == signal.SIGCHLD or (self.relay_all and signum in PYTHON_IGNORED)
            if previous == signal.SIG_IGN and not ours:
                continue  # ignored by whoever started us: keep it so (see module doc)
            self._saved[signum] = previous
            signal.signal(signum, signal.SIG_IGN if signum in ignore else _noop)
            reset.add(signum)
        # Only now, with handlers in place, let the signals in: one that
        # arrived while they were blocked (by a launcher, or by corral.boot
        # during the imports) is delivered here and lands in the socket.
        current = set(signal.pthread_sigmask(signal.SIG_BLOCK, []))
        inherited = early_mask if early_mask is not None else current
        self._saved_mask = set(signal.pthread_sigmask(signal.SIG_SETMASK, set(inherited) - handled))
        blocked: frozenset[int] = frozenset()
        if self.relay_all:
            self.faults = FaultPipe.open()
            if self.faults is not None:
                blocked = FAULTS - frozenset(inherited)
        self.children = ChildSignals(
            frozenset(inherited), frozenset(reset), frozenset(ignore & reset), blocked
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.faults is not None:
            self.faults.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, self._saved_mask)
        for signum, previous in self._saved.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._saved_fd)
        self._read.close()
        self._write.close()

    def fileno(self) -> int:
        return self._read.fileno()

    def drain(self) -> list[int]:
        """The signals that arrived since the last call (may be empty)."""
        received: list[int] = []
        while True:
            try:
                data = self._read.recv(4096)
            except (BlockingIOError, InterruptedError):
                return received
            if not data:
                return received
            received.extend(data)


class FaultPipe:
    """FAULTS blocked and read through a signalfd (Linux), for `corral run`.

    Blocked, a SIGSEGV sent with kill() waits in the signalfd, from which the
    loop reads and relays it; a real fault is forced through by the kernel
    (a blocked synchronous fault is delivered with its default action), so
    corral still crashes on a bug of its own instead of looping on it.
    """

    SIGINFO_SIZE = 128  # struct signalfd_siginfo
    SFD_NONBLOCK, SFD_CLOEXEC = 0o4000, 0o2000000

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def open(cls) -> FaultPipe | None:
        """Block FAULTS and make their signalfd; None where there is none."""
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            signalfd = libc.signalfd
        except (OSError, AttributeError):
            return None
        words = (ctypes.c_ulong * (1024 // (8 * ctypes.sizeof(ctypes.c_ulong))))()
        bits = 8 * ctypes.sizeof(ctypes.c_ulong)
        for signum in FAULTS:
            words[(signum - 1) // bits] |= 1 << ((signum - 1) % bits)
        signal.pthread_sigmask(signal.SIG_BLOCK, FAULTS)
        fd = signalfd(-1, ctypes.byref(words), cls.SFD_NONBLOCK | cls.SFD_CLOEXEC)
        if fd < 0:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, FAULTS)
            return None
        return cls(fd)

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> list[int]:
        received: list[int] = []
        while True:
            try:
                info = os.read(self.fd, self.SIGINFO_SIZE)
            except (BlockingIOError, InterruptedError):
                return received
            if len(info) < 4:
                return received
            received.append(int.from_bytes(info[:4], sys.byteorder))

    def close(self) -> None:
        os.close(self.fd)


def send(target: int, signum: int, group: bool) -> bool:
    """kill/killpg that tolerates a target already gone; True if sent."""
    try:
        if group:
            os.killpg(target, signum)
        else:
            os.kill(target, signum)
    except (ProcessLookupError, PermissionError):
        return False
    return True
