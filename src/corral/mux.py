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
* a line without a newline (a prompt, a progress bar) is shown after
  `PARTIAL_DELAY` of silence; the rest of it follows as a new line;
* `\\r` and `\\r\\n` end a line too (honcho splits on `\\r` as well), so a
  progress bar's updates become lines instead of overwriting the prefix;
* the buffer is bounded: past a high-water mark of pending bytes the supervisor stops
  reading children (they block on their pipes) until stdout catches up.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType

SYSTEM = "system"
IOV_MAX = 1024  # Linux's limit on the buffers of one writev
PARTIAL_DELAY = 0.05  # seconds of silence before a partial line is shown
# honcho's palette order: cyan, yellow, green, magenta, red, blue, then bright
PALETTE = ("36", "33", "32", "35", "31", "34", "36;1", "33;1", "32;1", "35;1", "31;1", "34;1")
RESET = b"\033[0m"


class LineSplitter:
    """Bytes in, complete lines out; keeps the unterminated tail.

    Line ends are `\\n`, `\\r\\n` and a lone `\\r`; the terminators are dropped.
    A `\\r` at the very end of a chunk is held back, since the next chunk may
    start with the `\\n` of a `\\r\\n`.
    """

    __slots__ = ("pending",)

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[bytes]:
        buf = self.pending + data if self.pending else data
        if b"\r" in buf:
            held = b""
            if buf.endswith(b"\r"):
                buf, held = buf[:-1], b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            end = buf.rfind(b"\n")
            if end < 0:
                self.pending = buf + held
                return []
            self.pending = buf[end + 1 :] + held
            return buf[:end].split(b"\n")
        end = buf.rfind(b"\n")
        if end < 0:
            self.pending = buf
            return []
        self.pending = buf[end + 1 :]
        return buf[:end].split(b"\n")

    def flush(self) -> bytes | None:
        """The partial line, if any (its trailing `\\r` dropped), and forget it."""
        tail, self.pending = self.pending, b""
        if tail.endswith(b"\r"):
            tail = tail[:-1]
            return tail  # a lone trailing \r still ended a (possibly empty) line
        return tail or None


@dataclass(frozen=True)
class Style:
    """How lines look: the user's output options, resolved."""

    colour: bool = False
    prefix: bool = True
    timestamp: bool = True
    json: bool = False
    notices: bool = True  # corral's own lines (off for `corral run`)


class Writer:
    """The write side of one fd, with a bounded-by-caller buffer.

    Non-blocking when `nonblocking` (pipes, files): the loop registers the fd
    for writability while `pending` is non-zero.  Blocking for terminals, whose
    file description is shared with the user's shell.  After EPIPE (reader
    gone) it is `closed` and discards everything.
    """

    def __init__(self, fd: int, nonblocking: bool) -> None:
        self.fd = fd
        self.closed = False
        self._chunks: deque[bytes] = deque()
        self._offset = 0  # bytes of the first chunk already written
        self.pending = 0
        self._restore: bool | None = None
        if nonblocking:
            with contextlib.suppress(OSError):
                if os.get_blocking(fd):
                    os.set_blocking(fd, False)
                    self._restore = True

    def append(self, data: bytes) -> None:
        if not self.closed and data:
            self._chunks.append(data)
            self.pending += len(data)

    def flush(self) -> None:
        """Write as much as the fd takes now; raise BrokenPipeError once if it is gone.

        One `writev` over the queued chunks: nothing is joined or copied, so
        a backed-up buffer costs no more per call than the bytes written.
        """
        chunks = self._chunks
        while chunks and not self.closed:
            first = memoryview(chunks[0])[self._offset :] if self._offset else chunks[0]
            batch = [first, *itertools.islice(chunks, 1, IOV_MAX)]
            try:
                written = os.writev(self.fd, batch)
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EBADF, errno.EIO, errno.ECONNRESET):
                    self._close()
                    raise BrokenPipeError(exc.errno, exc.strerror) from None
                raise
            self.pending -= written
            written += self._offset
            while chunks and written >= len(chunks[0]):
                written -= len(chunks.popleft())
            self._offset = written

    def finish(self) -> None:
        """Write everything left, blocking, and restore the fd's mode."""
        if self._restore:
            with contextlib.suppress(OSError):
                os.set_blocking(self.fd, True)
            self._restore = None
        with contextlib.suppress(BrokenPipeError):
            self.flush()

    def _close(self) -> None:
        self.closed = True
        self._chunks.clear()
        self._offset = 0
        self.pending = 0


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
        self._stamp_second = -1
        self._stamp = b""

    # -- input ------------------------------------------------------------

    def feed(self, name: str, stream: str, data: bytes, now: float | None = None) -> None:
        """A chunk of a child's output, read at wall-clock time `now`."""
        key = (name, stream)
        splitter = self._splitters.get(key)
        if splitter is None:
            splitter = self._splitters[key] = LineSplitter()
        lines = splitter.feed(data)
        now = time.time() if now is None else now
        if splitter.pending:
            self._partial_since[key] = time.monotonic()
        else:
            self._partial_since.pop(key, None)
        if lines and name not in self.quiet:
            self._emit(name, stream, lines, now)

    def close(self, name: str, stream: str, now: float | None = None) -> None:
        """End of a child's stream: show its partial last line."""
        self._flush_partial((name, stream), time.time() if now is None else now)
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
        """Monotonic time at which a partial line is due, or None."""
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
        """Show a partial line now; the rest of it will follow as a new line."""
        self._flush_partial((name, stream), time.time())

    def flush_all(self) -> None:
        """At exit: every partial line, whatever its age."""
        wall = time.time()
        for key in list(self._splitters):
            self._flush_partial(key, wall)

    def _flush_partial(self, key: tuple[str, str], now: float) -> None:
        self._partial_since.pop(key, None)
        splitter = self._splitters.get(key)
        if splitter is None:
            return
        tail = splitter.flush()
        if tail is not None and key[0] not in self.quiet:
            self._emit(key[0], key[1], [tail], now)

    # -- output -----------------------------------------------------------

    def _emit(self, name: str, stream: str, lines: list[bytes], now: float) -> None:
        if self.style.json:
            self.writer.append(self._json_lines(name, stream, lines, now))
            return
        writer = self.err_writer if stream == "stderr" and self.err_writer else self.writer
        prefix = self._prefix(name, now)
        if not prefix:
            writer.append(b"\n".join(lines) + b"\n")
            return
        writer.append(prefix + (b"\n" + prefix).join(lines) + b"\n")

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

    def _json_lines(self, name: str, stream: str, lines: list[bytes], now: float) -> bytes:
        head = (
            f'{{"time": "{_iso(now)}", "process": {_json().dumps(name)}, '
            f'"stream": "{stream}", "line": '
        )
        dumps = _json().dumps
        return "".join(
            head + dumps(line.decode("utf-8", "backslashreplace"), ensure_ascii=False) + "}\n"
            for line in lines
        ).encode("utf-8", "surrogateescape")


def _json() -> ModuleType:
    """json, imported on first use: text mode never pays for it."""
    import json

    return json


def _iso(now: float) -> str:
    """ISO 8601, UTC, milliseconds: `2026-11-29T09:05:25.123Z`."""
    seconds = int(now)
    millis = int((now - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
