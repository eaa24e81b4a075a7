"""The supervisor: one thread, one loop, owning every child from spawn to reap.

The loop, top to bottom (tini's order, gunicorn's dispatch):

    wait   select() on the signal socket, the children's output pipes and, when
           output is backed up, stdout; the timeout is the nearest deadline
           (grace period, partial-line flush) or none at all when idle;
    react  signals -> stop / forward; readable pipes -> the sink;
    reap   waitpid(-1) until nothing is left: our children's exits decide,
           adopted orphans are reaped quietly;
    decide grace period over -> SIGKILL; everything gone -> leave.

Policy (`start`): the first child to exit, SIGTERM/SIGINT, or the loss of
stdout starts *group termination*: the stop signal to every child's process
group and to every descendant that was re-parented to us, a grace period,
then SIGKILL to whatever is left; a second SIGTERM/SIGINT skips the grace.
corral leaves only when no child and no adopted descendant remains, so a
grandchild that needs a moment to flush gets it (tiny inits exit at once and
let the kernel SIGKILL the rest).  Exit code: the first exiter's code
(128+N if killed by signal N), or 128+N if corral was told to stop by signal N.

Policy (`run`, `relay=True`): every signal is relayed to the one command's
group; its exit ends the run with its code, after the same clean-up of any
descendants it left behind.

The supervisor knows nothing of colours or formats: it reports to a `Sink`.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from corral import reaper
from corral import signals as sig
from corral.signals import SignalPipe
from corral.spawn import Child, spawn_piped
from corral.specs import ProcessSpec

READ_SIZE = 1 << 18
RESCAN_INTERVAL = 0.1  # while stopping: look for newly adopted descendants
DEFAULT_GRACE = 5.0
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE

_SIGNALS = object()
_OUTPUT = object()


class OutputWriter(Protocol):
    @property
    def fd(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def closed(self) -> bool: ...

    def flush(self) -> None: ...
    def finish(self) -> None: ...


class Sink(Protocol):
    """Where the supervisor's observations go (the multiplexer, in practice)."""

    @property
    def writers(self) -> Sequence[OutputWriter]: ...

    def feed(self, name: str, stream: str, data: bytes, now: float | None = None) -> None: ...
    def close(self, name: str, stream: str, now: float | None = None) -> None: ...
    def notice(self, message: str, event: str, **fields: object) -> None: ...
    def next_deadline(self) -> float | None: ...
    def tick(self, now_mono: float) -> None: ...
    def flush_all(self) -> None: ...


class Supervisor:
    """Runs `specs` until they are all gone; `run()` returns the exit code."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        sink: Sink,
        *,
        grace: float = DEFAULT_GRACE,
        spawn: Callable[[ProcessSpec], Child] = spawn_piped,
        relay: bool = False,
        high_water: int = 1 << 20,
        low_water: int = 1 << 16,
    ) -> None:
        self.specs = list(specs)
        self.sink = sink
        self.grace = grace
        self.spawn = spawn
        self.relay = relay
        self.high_water = high_water
        self.low_water = low_water
        self.exit_code: int | None = None
        self.children: dict[int, Child] = {}  # pid -> live app child
        self.started: list[Child] = []
        self.stopping = False
        self.deadline: float | None = None  # end of the grace period
        self.killing = False  # SIGKILL phase: kill anything that shows up
        self._signalled: set[int] = set()  # descendants sent the stop signal
        self._pipes: dict[int, tuple[Child, str]] = {}
        self._reading = True
        self._writing: set[int] = set()  # output fds waiting to be writable
        self._selector = selectors.DefaultSelector()

    # -- the loop -----------------------------------------------------------

    def run(self) -> int:
        with SignalPipe() as signals:
            self._selector.register(signals, selectors.EVENT_READ, _SIGNALS)
            reaper.become_subreaper()
            self._spawn_all(signals)
            while not self._finished():
                for key, _ in self._selector.select(self._timeout()):
                    if key.data is _SIGNALS:
                        for signum in signals.drain():
                            self.handle_signal(signum)
                    elif key.data is not _OUTPUT:
                        self._read(key.fd)
                self._reap()
                now = time.monotonic()
                self.sink.tick(now)
                self._check_deadline(now)
                self._write_output()
            self._drain(list(self._pipes), to_eof=True)
            self.sink.flush_all()
            for writer in self.sink.writers:
                writer.finish()
            self._selector.close()
        return 0 if self.exit_code is None else self.exit_code

    def _timeout(self) -> float | None:
        deadlines = [d for d in (self.deadline, self.sink.next_deadline()) if d is not None]
        if self.stopping:
            deadlines.append(time.monotonic() + RESCAN_INTERVAL)
        if not deadlines:
            return None  # idle: sleep until a signal or some output
        return max(0.0, min(deadlines) - time.monotonic())

    def _finished(self) -> bool:
        """True once no app child and no adopted descendant is left.

        Once the app children are gone this also sweeps: descendants still
        around get the stop signal (or SIGKILL, past the grace period).
        """
        if self.children:
            return False
        if not self.stopping:
            # every child is gone without any exit having triggered a stop
            # (only possible with nothing to run): still sweep descendants.
            self._begin_stop()
        remaining = self._descendants()
        if not remaining:
            return True
        self._stop_descendants(remaining)
        return False

    # -- spawning -------------------------------------------------------------

    def _spawn_all(self, signals: SignalPipe) -> None:
        for spec in self.specs:
            # A signal during start-up is handled now, not after the last spawn.
            for signum in signals.drain():
                self.handle_signal(signum)
            if self.stopping:
                return
            try:
                child = self.spawn(spec)
            except OSError as exc:
                self._notice(
                    f"{spec.name} failed to start: {exc.strerror or exc}",
                    "failed",
                    process=spec.name,
                )
                self._set_exit(exec_failure_code(exc))
                self._begin_stop()
                return
            self.children[child.pid] = child
            self.started.append(child)
            for fd, stream in child.pipes.items():
                self._pipes[fd] = (child, stream)
                if self._reading:
                    self._selector.register(fd, selectors.EVENT_READ, stream)
            self._notice(
                f"{child.name} started (pid={child.pid})",
                "started",
                process=child.name,
                pid=child.pid,
            )
        self._write_output()

    # -- reacting -------------------------------------------------------------

    def handle_signal(self, signum: int) -> None:
        """Dispatch one received signal (called from the loop, never a handler)."""
        if signum == signal.SIGCHLD:
            return  # the reap after every wakeup does the work
        if self.relay:
            self._forward(signum)
            return
        if signum in sig.TERMINATING:
            self._notice(f"{sig.name(signum)} received", "signal", signal=sig.name(signum))
            if self.stopping:
                self._kill_all()  # a second one: no more patience
            else:
                self._set_exit(128 + signum)
                self._begin_stop()
            return
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        live = list(self.children.values())
        if not self.relay:
            names = ", ".join(c.name for c in live) or "nobody"
            self._notice(
                f"{sig.name(signum)} received, forwarding to {names}",
                "signal",
                signal=sig.name(signum),
            )
        for child in live:
            sig.send(child.pid, signum, group=True)

    def _read(self, fd: int) -> None:
        child, stream = self._pipes[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.sink.feed(child.name, stream, data)
            return
        self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        child, stream = self._pipes.pop(fd)
        if self._reading:
            self._selector.unregister(fd)
        os.close(fd)
        del child.pipes[fd]
        self.sink.close(child.name, stream)

    def _drain(self, fds: list[int], to_eof: bool) -> None:
        """Read `fds` until they are empty (`to_eof`: until closed) and pass it on.

        Used when a child is reaped, so everything it wrote comes before its
        `stopped` line, and at the very end, so nothing in a pipe is lost.
        """
        for fd in fds:
            child, stream = self._pipes[fd]
            while True:
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    # empty but still open: at the end, only a process outside
                    # our tree can hold it, and we do not wait for strangers
                    if to_eof:
                        self._close_pipe(fd)
                    break
                except OSError:
                    data = b""
                if not data:
                    self._close_pipe(fd)
                    break
                self.sink.feed(child.name, stream, data)
                if self._pending() > self.high_water:
                    for writer in self.sink.writers:
                        writer.finish()

    def _reap(self) -> None:
        for pid, code in reaper.reap():
            child = self.children.pop(pid, None)
            self._signalled.discard(pid)
            if child is None:
                continue  # an adopted orphan: reaped quietly, never an app exit
            child.reaped(code)
            self._drain(list(child.pipes), to_eof=False)
            self._notice(
                f"{child.name} stopped (rc={code})", "stopped", process=child.name, rc=code
            )
            self._set_exit(code)
            self._begin_stop()

    # -- stopping -------------------------------------------------------------

    def _set_exit(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        self.deadline = time.monotonic() + self.grace
        for child in self.children.values():
            stop = child.spec.stop_signal
            if not self.relay:
                self._notice(
                    f"sending {sig.name(stop)} to {child.name} (pid {child.pid})",
                    "stopping",
                    process=child.name,
                    signal=sig.name(stop),
                )
            sig.send(child.pid, stop, group=True)
        # groups whose leader already exited may still have members
        # (`sh -c 'daemon &'`): they get the stop signal too.
        for child in self.started:
            if child.exit_code is not None and _group_alive(child.pid):
                sig.send(child.pid, child.spec.stop_signal, group=True)
        self._stop_descendants(self._descendants())

    def _descendants(self) -> list[int]:
        return [p for p in reaper.children() if p not in self.children]

    def _stop_descendants(self, pids: list[int]) -> None:
        """Adopted orphans get the stop signal once, or SIGKILL once we are killing."""
        for pid in pids:
            if self.killing:
                # its own children are re-parented to us when it dies, and
                # the next rescan finds them
                sig.send(pid, signal.SIGKILL, group=False)
            elif pid not in self._signalled:
                self._signalled.add(pid)
                sig.send(pid, signal.SIGTERM, group=False)

    def _check_deadline(self, now: float) -> None:
        if self.deadline is not None and now >= self.deadline and not self.killing:
            self._kill_all()

    def _kill_all(self) -> None:
        self.killing = True
        self.deadline = None
        for child in self.children.values():
            self._notice(
                f"sending SIGKILL to {child.name} (pid {child.pid})",
                "killing",
                process=child.name,
                signal="SIGKILL",
            )
            sig.send(child.pid, signal.SIGKILL, group=True)
        for child in self.started:
            if child.exit_code is not None and _group_alive(child.pid):
                sig.send(child.pid, signal.SIGKILL, group=True)
        self._stop_descendants(self._descendants())

    # -- output ---------------------------------------------------------------

    def _notice(self, message: str, event: str, **fields: object) -> None:
        self.sink.notice(message, event, **fields)

    def _pending(self) -> int:
        return sum(w.pending for w in self.sink.writers)

    def _write_output(self) -> None:
        for writer in self.sink.writers:
            try:
                writer.flush()
            except BrokenPipeError:
                # Nobody reads our output any more (`corral start | head`): stop.
                self._set_exit(EXIT_OUTPUT_CLOSED)
                self._begin_stop()
            backed_up = writer.pending > 0 and not writer.closed
            if backed_up and writer.fd not in self._writing:
                self._selector.register(writer.fd, selectors.EVENT_WRITE, _OUTPUT)
                self._writing.add(writer.fd)
            elif not backed_up and writer.fd in self._writing:
                self._selector.unregister(writer.fd)
                self._writing.discard(writer.fd)
        # Backpressure: stop reading while the output is far behind, so a fast
        # child blocks on its pipe instead of growing our memory.
        pending = self._pending()
        if self._reading and pending > self.high_water:
            for fd in self._pipes:
                self._selector.unregister(fd)
            self._reading = False
        elif not self._reading and pending <= self.low_water:
            for fd, (_, stream) in self._pipes.items():
                self._selector.register(fd, selectors.EVENT_READ, stream)
            self._reading = True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def exec_failure_code(exc: OSError) -> int:
    """The shell's convention: 127 command not found, 126 not executable."""
    if isinstance(exc, FileNotFoundError):
        return 127
    if isinstance(exc, PermissionError):
        return 126
    return 1
