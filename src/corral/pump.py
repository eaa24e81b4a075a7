"""The output pump: children's pipes in, the multiplexer's writers out.

Owns reading the children's output fds, stdout's writability, backpressure
and the drains; knows no signals and no policy.  The rules:

* read a pipe only while the output backlog is under the high-water mark;
  past it, stop reading every pipe (children then block on their pipes
  instead of growing our memory) until the backlog falls to the low-water
  mark;
* never block while children run: stdout is written when the reactor says
  it is writable.  After a child exits, what is left in its pipe (at most a
  full pipe) is read so its last lines come before its `stopped` line, even
  past the high-water mark, but never written out blocking: the loop stays
  free for signals, grace timers and probes when the reader of stdout stalls;
* only `finish()`, called when every child is gone, may block: it reads the
  pipes to their end and writes everything out;
* a partial line is shown only when its stream is really silent: its pipe is
  read once more, whatever the backlog, before `show_partial`.
"""

from __future__ import annotations

import os
import selectors
from collections.abc import Callable, Sequence
from typing import Protocol

from corral.reactor import Reactor

READ_SIZE = 1 << 16  # a default pipe's whole buffer
MAX_PIPE_READS = 16  # 1 MiB: /proc/sys/fs/pipe-max-size's default


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
    """Where output goes: the multiplexer, in practice."""

    @property
    def writers(self) -> Sequence[OutputWriter]: ...

    def feed(self, name: str, stream: str, data: bytes, now: float | None = None) -> None: ...
    def close(self, name: str, stream: str, now: float | None = None) -> None: ...
    def notice(self, message: str, event: str, **fields: object) -> None: ...
    def next_deadline(self) -> float | None: ...
    def due(self, now_mono: float) -> list[tuple[str, str]]: ...
    def show_partial(self, name: str, stream: str) -> None: ...
    def flush_all(self) -> None: ...


class Pump:
    def __init__(
        self,
        reactor: Reactor,
        sink: Sink,
        *,
        high_water: int = 1 << 18,
        low_water: int = 1 << 16,
        on_data: Callable[[str, bytes], None] | None = None,
    ) -> None:
        self.reactor = reactor
        self.sink = sink
        self.high_water = high_water
        self.low_water = low_water
        self.on_data = on_data  # every chunk read, by instance name (log probes)
        self._pipes: dict[int, tuple[str, str]] = {}  # fd -> (instance name, stream)
        self._reading = True
        self._writing: set[int] = set()  # output fds waiting to be writable

    # -- pipes ------------------------------------------------------------------

    def add(self, name: str, pipes: dict[int, str]) -> None:
        """Start reading a new child's output fds (fd -> stream name)."""
        for fd, stream in pipes.items():
            self._pipes[fd] = (name, stream)
            if self._reading:
                self._watch(fd)

    def fds_of(self, name: str) -> list[int]:
        return [fd for fd, (owner, _) in self._pipes.items() if owner == name]

    def _watch(self, fd: int) -> None:
        def readable(mask: int) -> None:
            self.read(fd)

        self.reactor.watch(fd, selectors.EVENT_READ, readable)

    def read(self, fd: int, force: bool = False) -> bool:
        """Read one chunk of a child's output into the sink; True if data came."""
        if not force and self.pending > self.high_water:
            return False  # stdout is behind: leave it in the pipe (see flush)
        name, stream = self._pipes[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close(fd)  # shows its partial line
            return True
        self._feed(name, stream, data)
        return True

    def _feed(self, name: str, stream: str, data: bytes) -> None:
        self.sink.feed(name, stream, data)
        if self.on_data is not None:
            self.on_data(name, data)

    def _close(self, fd: int) -> None:
        name, stream = self._pipes.pop(fd)
        if self._reading:
            self.reactor.unwatch(fd)
        os.close(fd)
        self.sink.close(name, stream)

    def drain(self, fds: list[int]) -> None:
        """Read what is in `fds` now (a child was reaped: its last lines come
        before its `stopped` line).  At most a full pipe each: a descendant
        that keeps writing to an inherited pipe must not keep us here."""
        for fd in fds:
            self._empty(fd, MAX_PIPE_READS)

    def _empty(self, fd: int, reads: int | None, final: bool = False) -> None:
        """Read `fd` until it is empty (at most `reads` chunks), closing it at
        its end.  `final`: every child is gone; close it when empty too (only
        a stranger could still hold it) and write out as we go, blocking."""
        name, stream = self._pipes[fd]
        while reads is None or reads > 0:
            if reads is not None:
                reads -= 1
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                if final:
                    self._close(fd)
                return
            except OSError:
                data = b""
            if not data:
                self._close(fd)
                return
            self._feed(name, stream, data)
            if final and self.pending > self.high_water:
                for writer in self.sink.writers:
                    writer.finish()

    def show_idle_partials(self, now: float) -> None:
        """Partial lines (a prompt, a progress bar) whose stream went silent.

        Silent means its pipe is empty now, not just that we have not read
        it: under backpressure we stop reading, and the rest of the line may
        be waiting in the pipe.  So read once more, whatever the backlog,
        and show the partial line only if nothing came.
        """
        due = self.sink.due(now)
        if not due:
            return
        fds = {key: fd for fd, key in self._pipes.items()}
        for name, stream in due:
            fd = fds.get((name, stream))
            if fd is None or not self.read(fd, force=True):
                self.sink.show_partial(name, stream)

    def next_deadline(self) -> float | None:
        return self.sink.next_deadline()

    # -- stdout -----------------------------------------------------------------

    @property
    def pending(self) -> int:
        return sum(w.pending for w in self.sink.writers)

    def flush(self) -> OSError | None:
        """Write what stdout takes now; keep reading or stop (backpressure).

        Returns the error that ended the output, if one did: BrokenPipeError
        when the reader left (`corral start | head`), another OSError when
        writing failed (mux.OutputError: a full disk, a file too large).
        """
        lost: OSError | None = None
        for writer in self.sink.writers:
            try:
                writer.flush()
            except OSError as exc:
                lost = lost or exc
            backed_up = writer.pending > 0 and not writer.closed
            if backed_up and writer.fd not in self._writing:
                # stdout became writable: the flush at the end of the loop pass does the work
                self.reactor.watch(writer.fd, selectors.EVENT_WRITE, _no_op)
                self._writing.add(writer.fd)
            elif not backed_up and writer.fd in self._writing:
                self.reactor.unwatch(writer.fd)
                self._writing.discard(writer.fd)
        pending = self.pending
        if self._reading and pending > self.high_water:
            for fd in self._pipes:
                self.reactor.unwatch(fd)
            self._reading = False
        elif not self._reading and pending <= self.low_water:
            for fd in self._pipes:
                self._watch(fd)
            self._reading = True
        return lost

    def finish(self) -> None:
        """Every child is gone: read each pipe to its end, write everything.

        May block on stdout now (nothing else is left to serve).  A pipe
        still open but empty is held only by a process outside our tree, and
        we do not wait for strangers.
        """
        for writer in self.sink.writers:
            if writer.fd in self._writing:
                self.reactor.unwatch(writer.fd)
        self._writing.clear()
        for fd in list(self._pipes):
            self._empty(fd, None, final=True)
        self.sink.flush_all()
        for writer in self.sink.writers:
            writer.finish()


def _no_op(mask: int) -> None:
    """stdout became writable: the flush at the end of the loop pass does the work."""
