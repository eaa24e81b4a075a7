"""The multiplexer: many children's output in, one ordered stream out.

Owns line splitting, prefixes, colour, JSON lines and the write side of
stdout.  Knows nothing of processes or signals: the supervisor hands it raw
chunks (`feed`), end-of-stream (`close`) and its own notices (`notice`).

Built for throughput and for losing nothing:

* per chunk, not per line: a chunk is split with C-level `bytes` operations,
  the prefix is built once (one timestamp per chunk: the time it was read),
  and all its lines are joined into one buffer;
* every formatted line goes into one output buffer that is written with as
  few `write` calls as possible, so a line is never torn, nor interleaved with
  another process's line;
* bytes are passed through as bytes in text mode: invalid UTF-8 and colour
  codes reach the terminal unchanged;
* `\\n`, `\\r\\n` and a lone `\\r` end a line (honcho splits on `\\r` as
  well), so a progress bar's updates become lines instead of overwriting the
  prefix; a `\\r` ends its line at once, and a `\\n` right after it (even in
  the next chunk) is the rest of a `\\r\\n`.

Lines that do not end (yet).  A line is one record, whatever pauses its
writer makes, with two exceptions that write it in pieces:

* memory: at most `MAX_LINE` bytes of an unfinished line are held per
  stream (the cost is linear in its length); past that the held bytes are
  written as a *fragment* (cut at a UTF-8 character boundary) and the line
  goes on from there;
* `Style.live_partials` (stdout is a terminal): a line that has been silent
  for `PARTIAL_DELAY` (a prompt, a progress bar) is shown as a fragment, so
  the user sees it.  Without it (a pipe, a file, a log collector) there is no
  timer at all: the line is written when its end arrives, or at end of
  stream.

In text, a fragment is written without its newline, and the rest of the line
is appended to it raw when that stream is the next to write; if anything else
must be written first, the open fragment is ended with `\\n` and the rest
comes later as a new prefixed line (lines of different processes never share
an output line).  The terminator of a line already shown never produces an
empty line.  In JSON, each fragment is a record with `"partial": true` and
the piece that ends the line (possibly `""`) a normal record, so a log
shipper can join them (Docker's partial-message convention).

The write side (`Writer`) never changes the mode of the file description
it was given: that description is shared with whoever else writes to the
same stdout (`{ corral start & other; } | reader`), and O_NONBLOCK set there
would make *their* writes fail with EAGAIN.  A pipe is written through a
private non-blocking description of the same pipe (`/proc/self/fd/N`), a
socket with per-call `MSG_DONTWAIT`, a regular file blocking (it never says
EAGAIN); without /proc a pipe is written one `PIPE_BUF` at a time, only when
poll says a slot is free.  Terminals stay blocking.  The output backlog is
bounded by the caller: past a high-water mark the supervisor stops reading
children (they block on their pipes) until stdout catches up.

Write errors: a reader that went away (EPIPE and the like) is reported as
`BrokenPipeError`, any other failure (ENOSPC, EFBIG...) as `OutputError`;
either closes the writer, whose backlog is then discarded.
"""

from __future__ import annotations

import errno
import itertools
import os
import select
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import socket

SYSTEM = "system"
IOV_MAX = 1024  # Linux's limit on the buffers of one writev
PIPE_BUF = 4096  # a pipe write of at most this size fits in one free slot
PARTIAL_DELAY = 0.05  # seconds of silence before a partial line is shown (terminals only)
MAX_LINE = 1 << 16  # bytes of an unfinished line held per stream
# errors that mean nobody reads our output any more
READER_GONE = frozenset((errno.EPIPE, errno.EBADF, errno.EIO, errno.ECONNRESET, errno.ENOTCONN))
# honcho's palette order: cyan, yellow, green, magenta, red, blue, then bright
PALETTE = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")
RESET = b"\033[0m"


class LineSplitter:
    """Bytes in, complete lines out, at linear cost and bounded memory.

    Line ends are `\\n`, `\\r\\n` and a lone `\\r`; the terminators are
    dropped.  A `\\r` ends its line at once; a `\\n` at the start of the next
    chunk is then the rest of a `\\r\\n` and is skipped.  The unterminated
    tail is kept as a list of chunks (no copying while it grows); once it
    reaches `MAX_LINE` bytes it is handed out as a fragment.  `continued`
    says whether pieces of the current line have already been handed out.
    """

    __slots__ = ("_cr", "_parts", "continued", "pending")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.pending = 0  # bytes of the current line held
        self._cr = False  # the last byte seen was a \r
        self.continued = False

    def feed(self, data: bytes) -> tuple[list[bytes], bytes]:
        """Complete lines, then a fragment of the next one (`b""` if none)."""
        if self._cr and data:
            self._cr = False
            if data[0] == 10:  # the \n of a \r\n
                data = data[1:]
        if b"\r" in data:
            self._cr = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\n" not in data:
            if data:
                self._parts.append(data)
                self.pending += len(data)
                if self.pending >= MAX_LINE:
                    return [], self._fragment()
            return [], b""
        lines = data.split(b"\n")
        tail = lines.pop()
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = b"".join(self._parts)
        self.continued = False
        if tail:
            self._parts = [tail]
            self.pending = len(tail)
            if self.pending >= MAX_LINE:
                return lines, self._fragment()
        else:
            self._parts = []
            self.pending = 0
        return lines, b""

    def take(self) -> bytes:
        """The held part of the current line, now handed out as a fragment."""
        held = b"".join(self._parts)
        self._parts = []
        self.pending = 0
        if held:
            self.continued = True
        return held

    def end(self) -> tuple[bytes, bool]:
        """End of stream: the held rest of the last line, and whether it was continued."""
        continued = self.continued
        rest = self.take()
        self.continued = self._cr = False
        return rest, continued

    def _fragment(self) -> bytes:
        held = b"".join(self._parts)
        cut = _utf8_boundary(held) or len(held)
        if cut < len(held):
            self._parts = [held[cut:]]
            self.pending = len(held) - cut
            held = held[:cut]
        else:
            self._parts = []
            self.pending = 0
        self.continued = True
        return held


def _utf8_boundary(data: bytes) -> int:
    """`len(data)`, minus an incomplete UTF-8 sequence at its very end."""
    size = len(data)
    for back in range(1, min(4, size + 1)):
        byte = data[size - back]
        if byte < 0x80:
            return size
        if byte >= 0xC0:  # a lead byte: how long is its sequence?
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return size - back if back < needed else size
    return size


@dataclass(frozen=True)
class Style:
    """How lines look: the user's output options, resolved."""

    colour: bool = False
    prefix: bool = True
    timestamp: bool = True
    json: bool = False
    notices: bool = True  # corral's own lines (off for `corral run`)
    # stdout is a terminal: show a line silent for PARTIAL_DELAY before it ends
    live_partials: bool = False


class OutputError(OSError):
    """Writing our output failed for a reason other than the reader leaving
    (ENOSPC, EFBIG, ...): the output is closed, nothing more can be shown."""

    def __init__(self, errno: int, strerror: str) -> None:
        super().__init__(errno, strerror)
        self.errno = errno
        self.strerror = strerror

    def __str__(self) -> str:
        return f"cannot write output: {self.strerror}"


class Writer:
    """The write side of one fd, with a bounded-by-caller buffer.

    With `nonblocking` (anything but a terminal), `flush` never blocks and
    the loop registers `fd` for writability while `pending` is non-zero;
    the shared file description itself is left as it is (see the module
    docstring for how each kind of file is written).  `fd` is the
    descriptor written to (a private one, for a pipe).  After a write error
    the writer is `closed` and discards everything.
    """

    def __init__(self, fd: int, nonblocking: bool) -> None:
        self.fd = fd
        self.closed = False
        self.error: BrokenPipeError | OutputError | None = None
        self._unreported: BrokenPipeError | OutputError | None = None
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of the first chunk already written
        self.pending = 0
        self._own_fd = False  # `fd` is a description this writer opened
        self._socket: socket.socket | None = None
        self._send_flags = 0
        self._poll: select.poll | None = None
        self._write: Callable[[list[bytes | memoryview]], int] = self._writev
        if nonblocking:
            self._choose_method(fd)

    def _choose_method(self, fd: int) -> None:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            return  # flush reports the error
        if stat.S_ISFIFO(mode):
            private = _reopen_nonblocking(fd)
            if private is not None:
                self.fd = private
                self._own_fd = True
            else:
                self._poll = select.poll()
                self._poll.register(fd, select.POLLOUT)
                self._write = self._write_polled
        elif stat.S_ISSOCK(mode):
            import socket

            try:
                copy = os.dup(fd)
            except OSError:
                return
            try:
                own = socket.socket(fileno=copy)
            except OSError:
                os.close(copy)
                return
            if own.type != socket.SOCK_STREAM:  # datagrams: keep writes as they were
                own.close()
                return
            self._socket = own
            self._send_flags = socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL
            self._write = self._send
        # regular files, devices: blocking writes (no EAGAIN from those)

    def append(self, data: bytes) -> None:
        if not self.closed and data:
            self._chunks.append(data)
            self.pending += len(data)

    def flush(self) -> None:
        """Write what the fd takes now.

        Raises, once, `BrokenPipeError` if the reader is gone or `OutputError`
        for any other write error (also one that `finish` met); either way the
        writer is then closed.  One `writev` over the queued chunks: nothing is
        joined or copied, so a backed-up buffer costs no more per call than the
        bytes written.
        """
        if self._unreported is not None:
            failure, self._unreported = self._unreported, None
            raise failure
        chunks = self._chunks
        while chunks and not self.closed:
            first = memoryview(chunks[0])[self._offset :] if self._offset else chunks[0]
            batch = [first, *itertools.islice(chunks, 1, IOV_MAX)]
            try:
                written = self._write(batch)
            except BlockingIOError:
                return
            except OSError as exc:
                raise self._fail(exc) from None
            self.pending -= written
            written += self._offset
            while chunks and written >= len(chunks[0]):
                written -= len(chunks.popleft())
            self._offset = written

    def finish(self) -> None:
        """Write everything left, waiting for the reader as long as it takes.

        Never raises: an error is kept and raised by the next `flush`, and
        stays in `error`.
        """
        try:
            self.flush()
            while self.pending and not self.closed:
                poll = select.poll()
                poll.register(self.fd, select.POLLOUT)
                poll.poll()
                self.flush()
        except (BrokenPipeError, OutputError) as exc:
            self._unreported = exc

    def close(self) -> None:
        """Discard the backlog and release what this writer opened (not `fd` it was given)."""
        self._discard()
        if self._own_fd:
            self._own_fd = False
            os.close(self.fd)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _writev(self, batch: list[bytes | memoryview]) -> int:
        return os.writev(self.fd, batch)

    def _send(self, batch: list[bytes | memoryview]) -> int:
        assert self._socket is not None
        return self._socket.sendmsg(batch, (), self._send_flags)

    def _write_polled(self, batch: list[bytes | memoryview]) -> int:
        """A pipe we must not make non-blocking: write only what fits now.

        Writable means one free slot: `PIPE_BUF` bytes fit in it.  An empty
        pipe takes its whole size.  (A neighbour writing at the same moment
        can still make this wait, but only until the reader reads.)
        """
        import fcntl
        import termios

        assert self._poll is not None
        if not self._poll.poll(0):
            raise BlockingIOError(errno.EAGAIN, "pipe full")
        room = PIPE_BUF
        try:
            if not int.from_bytes(fcntl.ioctl(self.fd, termios.FIONREAD, bytes(4)), "little"):
                room = fcntl.fcntl(self.fd, fcntl.F_GETPIPE_SZ)
        except OSError:
            pass
        fits: list[bytes | memoryview] = []
        for chunk in batch:
            if len(chunk) >= room:
                fits.append(chunk[:room])
                break
            fits.append(chunk)
            room -= len(chunk)
        return os.writev(self.fd, fits)

    def _fail(self, exc: OSError) -> BrokenPipeError | OutputError:
        self._discard()
        code = exc.errno or errno.EIO
        failure: BrokenPipeError | OutputError
        if code in READER_GONE:
            failure = BrokenPipeError(code, exc.strerror)
        else:
            failure = OutputError(code, exc.strerror or os.strerror(code))
        self.error = failure
        return failure

    def _discard(self) -> None:
        self.closed = True
        self._chunks.clear()
        self._offset = 0
        self.pending = 0


def _reopen_nonblocking(fd: int) -> int | None:
    """A new, non-blocking, write-only file description of the pipe `fd` is
    open on, or None (no /proc, a FIFO without reader, a foreign /proc)."""
    try:
        private = os.open(f"/proc/self/fd/{fd}", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        mine, theirs = os.fstat(private), os.fstat(fd)
        if (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
            return private
    except OSError:
        pass
    os.close(private)
    return None


class Mux:
    """Formats children's output and corral's notices into one `Writer`."""

    def __init__(
        self,
        names: Sequence[str],
        writer: Writer,
        style: Style,
        quiet: Iterable[str] = (),
        err_writer: Writer | None = None,
    ) -> None:
        self.writer = writer
        # children's stderr goes here when given (text mode, --split-stderr)
        self.err_writer = err_writer
        self.writers = [writer] if err_writer is None else [writer, err_writer]
        self.style = style
        self.quiet = frozenset(quiet)
        self.width = max([len(SYSTEM), *(len(n) for n in names)])
        self._colours = {n: PALETTE[i % len(PALETTE)].encode() for i, n in enumerate(names)}
        self._splitters: dict[tuple[str, str], LineSplitter] = {}
        self._partial_since: dict[tuple[str, str], float] = {}
        # text: the stream whose fragment ends the output (no newline yet), and where
        self._open: tuple[str, str] | None = None
        self._open_writer = writer
        self._stamp_second = -1
        self._stamp = b""

    # -- input ------------------------------------------------------------

    def feed(self, name: str, stream: str, data: bytes, now: float | None = None) -> None:
        """A chunk of a child's output, read at wall-clock time `now`."""
        key = (name, stream)
        splitter = self._splitters.get(key)
        if splitter is None:
            splitter = self._splitters[key] = LineSplitter()
        continued = splitter.continued
        lines, fragment = splitter.feed(data)
        if self.style.live_partials:
            if splitter.pending:
                self._partial_since[key] = time.monotonic()
            else:
                self._partial_since.pop(key, None)
        if (lines or fragment) and name not in self.quiet:
            now = time.time() if now is None else now
            self._emit(name, stream, lines, now, continued, fragment)

    def close(self, name: str, stream: str, now: float | None = None) -> None:
        """End of a child's stream: its unfinished last line ends here."""
        self._end_line((name, stream), time.time() if now is None else now)
        self._splitters.pop((name, stream), None)

    def notice(self, message: str, event: str = "notice", **fields: object) -> None:
        """One of corral's own lines (`web.1 started (pid=42)`)."""
        if not self.style.notices:
            return
        now = time.time()
        if self.style.json:
            record: dict[str, object] = {
                "time": _iso(now),
                "process": SYSTEM,
                "stream": "system",
                "event": event,
                "line": message,
            }
            record.update(fields)
            line = _json().dumps(record, ensure_ascii=False)
            self.writer.append(line.encode() + b"\n")
            return
        self._emit(SYSTEM, "system", [message.encode()], now)

    # -- partial lines ----------------------------------------------------

    def next_deadline(self) -> float | None:
        """Monotonic time at which a partial line is due, or None (always
        None unless `live_partials`)."""
        if not self._partial_since:
            return None
        return min(self._partial_since.values()) + PARTIAL_DELAY

    def due(self, now_mono: float) -> list[tuple[str, str]]:
        """The (name, stream) whose partial line has had no data for `PARTIAL_DELAY`.

        The caller checks that the stream really is silent (its pipe empty:
        while output is backed up corral reads nothing, and a producer
        blocked mid-line is not silent) before `show_partial`.
        """
        return [k for k, t in self._partial_since.items() if t + PARTIAL_DELAY <= now_mono]

    def show_partial(self, name: str, stream: str) -> None:
        """Show a partial line now, as a fragment the rest of the line continues."""
        key = (name, stream)
        self._partial_since.pop(key, None)
        splitter = self._splitters.get(key)
        if splitter is None:
            return
        continued = splitter.continued
        fragment = splitter.take()
        if fragment and name not in self.quiet:
            self._emit(name, stream, [], time.time(), continued, fragment)

    def flush_all(self) -> None:
        """At exit: every unfinished line ends, whatever its age."""
        wall = time.time()
        for key in list(self._splitters):
            self._end_line(key, wall)

    def _end_line(self, key: tuple[str, str], now: float) -> None:
        self._partial_since.pop(key, None)
        splitter = self._splitters.get(key)
        if splitter is None:
            return
        rest, continued = splitter.end()
        if (rest or continued) and key[0] not in self.quiet:
            self._emit(key[0], key[1], [rest], now, continued)

    # -- output -----------------------------------------------------------

    def _emit(
        self,
        name: str,
        stream: str,
        lines: list[bytes],
        now: float,
        continued: bool = False,
        fragment: bytes = b"",
    ) -> None:
        """`lines` (the first one ending a line already begun if `continued`),
        then a `fragment` of the next line."""
        if self.style.json:
            self.writer.append(self._json_lines(name, stream, lines, now, fragment))
            return
        writer = self.err_writer if stream == "stderr" and self.err_writer else self.writer
        prefix = self._prefix(name, now)
        if self._open is None and not continued and not fragment:  # the usual case
            writer.append(prefix + (b"\n" + prefix).join(lines) + b"\n")
            return
        key = (name, stream)
        if self._open is not None and (self._open != key or not continued):
            self._open_writer.append(b"\n")  # end the open fragment first
            self._open = None
        out = []
        if lines:
            if continued and (self._open == key or not lines[0]):
                if self._open == key:
                    out.append(lines[0] + b"\n")  # the rest of the open fragment
                # else: the fragment was ended already; no empty line for its end
                lines = lines[1:]
            self._open = None
            if lines:
                out.append(prefix + (b"\n" + prefix).join(lines) + b"\n")
        if fragment:
            out.append(fragment if self._open == key else prefix + fragment)
            self._open, self._open_writer = key, writer
        writer.append(b"".join(out))

    def _prefix(self, name: str, now: float) -> bytes:
        style = self.style
        if not style.prefix:
            return b""
        text = name.ljust(self.width).encode() + b" | "
        if style.timestamp:
            text = self._timestamp(now) + b" " + text
        colour = self._colours.get(name) if style.colour else None
        if colour is not None:
            return RESET + b"\033[" + colour + b"m" + text + RESET
        return text

    def _timestamp(self, now: float) -> bytes:
        second = int(now)
        if second != self._stamp_second:
            self._stamp_second = second
            self._stamp = time.strftime("%H:%M:%S", time.localtime(now)).encode()
        return self._stamp

    def _json_lines(
        self, name: str, stream: str, lines: list[bytes], now: float, fragment: bytes = b""
    ) -> bytes:
        dumps = _json().dumps
        head = f'{{"time": "{_iso(now)}", "process": {dumps(name)}, "stream": "{stream}", "line": '
        records = [
            head + dumps(line.decode("utf-8", "backslashreplace"), ensure_ascii=False) + "}\n"
            for line in lines
        ]
        if fragment:
            text = dumps(fragment.decode("utf-8", "backslashreplace"), ensure_ascii=False)
            records.append(head + text + ', "partial": true}\n')
        return "".join(records).encode("utf-8", "surrogateescape")


def _json() -> ModuleType:
    """json, imported on first use: text mode never pays for it."""
    import json

    return json


def _iso(now: float) -> str:
    """ISO 8601, UTC, milliseconds: `2026-11-29T09:05:25.123Z`."""
    seconds = int(now)
    millis = int((now - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
