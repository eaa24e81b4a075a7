from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import mux as mux_module
from corral.mux import (
    MAX_LINE,
    PARTIAL_DELAY,
    LineSplitter,
    Mux,
    OutputError,
    Style,
    Writer,
)

# -- the line splitter ---------------------------------------------------------


def reference_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Lines ended by \\r\\n, \\n or a lone \\r, and the unterminated rest,
    computed the slow, obvious way."""
    lines, current, i = [], b"", 0
    while i < len(data):
        byte = data[i : i + 1]
        if byte in (b"\n", b"\r"):
            lines.append(current)
            current = b""
            if byte == b"\r" and data[i + 1 : i + 2] == b"\n":
                i += 1
        else:
            current += byte
        i += 1
    return lines, current


def split_all(splitter: LineSplitter, chunks: list[bytes], limit: int) -> list[bytes]:
    """Feed every chunk, rejoin fragments with the pieces that end their line,
    and check the invariants after each chunk; the lines, the last one
    included if the stream ended inside it."""
    lines: list[bytes] = []
    begun: list[bytes] = []  # fragments of the current line handed out so far
    for chunk in chunks:
        done, fragment = splitter.feed(chunk)
        for line in done:
            lines.append(b"".join(begun) + line)
            begun = []
        if fragment:
            begun.append(fragment)
        assert splitter.continued == bool(begun)
        assert splitter.pending < max(limit, 4)  # bounded (+3: a UTF-8 character held back)
    rest, continued = splitter.end()
    assert continued == bool(begun)
    if rest or begun:
        lines.append(b"".join(begun) + rest)
    return lines


def expected_lines(data: bytes) -> list[bytes]:
    lines, tail = reference_lines(data)
    return [*lines, tail] if tail else lines


line_ends = st.sampled_from([b"\n", b"\r", b"\r\n"])
# text with random line ends, sometimes long runs without any
stream_data = st.lists(
    st.one_of(
        st.binary(max_size=12),
        line_ends,
        st.tuples(st.binary(min_size=1, max_size=3), st.integers(1, 60)).map(lambda t: t[0] * t[1]),
    ),
    max_size=40,
).map(b"".join)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@settings(deadline=None)
@given(stream_data, st.lists(st.integers(0, 2000), max_size=30), st.integers(1, 40))
def test_splitter_rebuilds_every_line_under_any_chunking_and_bound(
    data: bytes, cuts: list[int], limit: int
) -> None:
    with mock.patch.object(mux_module, "MAX_LINE", limit):
        got = split_all(LineSplitter(), chunked(data, cuts), limit)
    assert got == expected_lines(data)


@settings(deadline=None, max_examples=30)
@given(
    st.lists(st.tuples(st.integers(0, 3 * MAX_LINE), line_ends), min_size=1, max_size=4),
    st.lists(st.integers(1, 70_000), min_size=1, max_size=8),
)
def test_splitter_with_real_bound_and_long_lines(
    shape: list[tuple[int, bytes]], sizes: list[int]
) -> None:
    data = b"".join(b"a" * n + end for n, end in shape)
    chunks, position = [], 0
    for size in itertools.cycle(sizes):
        if position >= len(data):
            break
        chunks.append(data[position : position + size])
        position += size
    assert split_all(LineSplitter(), chunks, MAX_LINE) == expected_lines(data)


@settings(deadline=None)
@given(st.text(max_size=200), st.lists(st.integers(0, 800), max_size=20))
def test_fragments_end_on_utf8_character_boundaries(text: str, cuts: list[int]) -> None:
    data = text.replace("\n", "").replace("\r", "").encode()
    with mock.patch.object(mux_module, "MAX_LINE", 5):
        splitter = LineSplitter()
        for chunk in chunked(data, cuts):
            _, fragment = splitter.feed(chunk)
            fragment.decode()  # never a broken character
            assert splitter.pending < 5 + 3


def test_cr_ends_a_line_at_once_and_a_later_lf_completes_it() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"10%\r") == ([b"10%"], b"")
    assert splitter.feed(b"\n") == ([], b"")  # the rest of \r\n, not an empty line
    assert splitter.feed(b"\n") == ([b""], b"")  # a real empty line
    assert splitter.feed(b"x\r") == ([b"x"], b"")
    assert splitter.feed(b"") == ([], b"")
    assert splitter.feed(b"\ny\n") == ([b"y"], b"")


def test_a_long_line_is_held_in_bounded_memory() -> None:
    """50 MB without a newline, 4 KiB at a time: memory stays near MAX_LINE
    (the old splitter held the whole line and copied it at every chunk)."""
    splitter = LineSplitter()
    chunk = b"z" * 4096
    out = 0
    tracemalloc.start()
    try:
        for _ in range(50_000_000 // len(chunk)):
            _, fragment = splitter.feed(chunk)
            out += len(fragment)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out + splitter.pending == 50_000_000 // 4096 * 4096
    assert peak < 4 * MAX_LINE


# -- formatting ------------------------------------------------------------------


class FakeWriter(Writer):
    def __init__(self) -> None:
        super().__init__(-1, nonblocking=False)
        self.data = b""

    def append(self, data: bytes) -> None:
        self.data += data


NOON = time.mktime((2026, 11, 29, 12, 34, 56, 0, 0, -1))


def mux(
    style: Style, names: tuple[str, ...] = ("web.1", "worker.1"), **kw: object
) -> tuple[Mux, FakeWriter]:
    writer = FakeWriter()
    return Mux(list(names), writer, style, **kw), writer  # type: ignore[arg-type]


def test_prefix_time_padding_and_one_buffer_per_chunk() -> None:
    m, w = mux(Style())
    m.feed("web.1", "stdout", b"hello\nworld\npart", now=NOON)
    assert w.data == b"12:34:56 web.1    | hello\n12:34:56 web.1    | world\n"
    m.close("web.1", "stdout", now=NOON)
    assert w.data.endswith(b"12:34:56 web.1    | part\n")


def test_width_is_at_least_system() -> None:
    m, w = mux(Style(), names=("a.1",))
    m.feed("a.1", "stdout", b"x\n", now=NOON)
    assert w.data == b"12:34:56 a.1    | x\n"


def test_no_timestamp_and_no_prefix() -> None:
    m, w = mux(Style(timestamp=False))
    m.feed("web.1", "stdout", b"x\n", now=NOON)
    assert w.data == b"web.1    | x\n"
    m, w = mux(Style(prefix=False))
    m.feed("web.1", "stdout", b"x\ny\n", now=NOON)
    assert w.data == b"x\ny\n"


def test_colour_wraps_the_prefix_only_in_palette_order() -> None:
    names = tuple(f"p{i}.1" for i in range(8))
    m, w = mux(Style(colour=True, timestamp=False), names=names)
    for name in names:
        m.feed(name, "stdout", b"t\n", now=NOON)
    codes = re.findall(rb"\x1b\[0m\x1b\[([0-9;]+)m[^\x1b]*\x1b\[0mt\n", w.data)
    assert codes == [b"36", b"33", b"32", b"35", b"31", b"34", b"36;1", b"33;1"]
    m.notice("hello")
    assert w.data.endswith(b"system | hello\n")  # system lines are never coloured


def test_invalid_utf8_passes_through_text_mode() -> None:
    m, w = mux(Style(prefix=False))
    m.feed("web.1", "stdout", b"\xff\xfe ok\n", now=NOON)
    assert w.data == b"\xff\xfe ok\n"


def test_quiet_hides_lines_not_notices() -> None:
    m, w = mux(Style(timestamp=False), quiet=["web.1"])
    m.feed("web.1", "stdout", b"secret\n", now=NOON)
    m.feed("web.1", "stdout", b"s" * (MAX_LINE + 10), now=NOON)
    m.close("web.1", "stdout", now=NOON)
    m.notice("web.1 started (pid=1)")
    assert w.data == b"system   | web.1 started (pid=1)\n"


def test_json_lines() -> None:
    m, w = mux(Style(json=True))
    m.feed("web.1", "stderr", b"caf\xc3\xa9 \xff\n", now=NOON + 0.25)
    m.notice("web.1 started (pid=7)", "started", process="web.1", pid=7)
    first, second = (json.loads(line) for line in w.data.splitlines())
    assert first == {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(NOON)) + ".250Z",
        "process": "web.1",
        "stream": "stderr",
        "line": "café \\xff",
    }
    assert second["process"] == "web.1" and second["event"] == "started" and second["pid"] == 7
    assert second["stream"] == "system" and second["line"] == "web.1 started (pid=7)"


# -- partial lines -----------------------------------------------------------------


def test_without_a_terminal_a_pausing_line_stays_whole_and_no_timer_runs() -> None:
    m, w = mux(Style(timestamp=False))
    m.feed("web.1", "stdout", b"processing job 1 (tick) ")
    for _ in range(3):
        assert m.next_deadline() is None  # no wakeups at all for partial lines
        assert m.due(time.monotonic() + 3600) == []
        m.feed("web.1", "stdout", b".")
    assert w.data == b""
    m.feed("web.1", "stdout", b"\n")
    assert w.data == b"web.1    | processing job 1 (tick) ...\n"


def test_a_progress_bar_through_a_pipe_is_one_record_per_update() -> None:
    m, w = mux(Style(timestamp=False))
    for update in (b"downloading  10%", b"\rdownloading  20%", b"\rdownloading 100%\n"):
        m.feed("web.1", "stdout", update)
    assert w.data == (
        b"web.1    | downloading  10%\nweb.1    | downloading  20%\nweb.1    | downloading 100%\n"
    )


def test_terminal_partial_line_deadline_due_and_continuation() -> None:
    m, w = mux(Style(prefix=False, live_partials=True))
    assert m.next_deadline() is None
    m.feed("web.1", "stdout", b"Password: ")
    deadline = m.next_deadline()
    assert deadline is not None and deadline <= time.monotonic() + PARTIAL_DELAY
    assert m.due(deadline - PARTIAL_DELAY / 2) == []
    assert m.due(deadline) == [("web.1", "stdout")]
    assert w.data == b""
    m.show_partial("web.1", "stdout")
    assert w.data == b"Password: "  # no newline: the answer continues this line
    assert m.next_deadline() is None and m.due(deadline) == []
    m.feed("web.1", "stdout", b"\nwelcome\n")
    assert w.data == b"Password: \nwelcome\n"  # no empty line for the terminator


def test_terminal_progress_bar_does_not_double() -> None:
    m, w = mux(Style(timestamp=False, live_partials=True))
    for update in (b"downloading  10%", b"\rdownloading  20%", b"\r"):
        m.feed("web.1", "stdout", update)
        if m.due(time.monotonic() + PARTIAL_DELAY):
            m.show_partial("web.1", "stdout")
    assert w.data == b"web.1    | downloading  10%\nweb.1    | downloading  20%\n"


def test_terminal_fragment_grows_in_place_until_its_line_ends() -> None:
    m, w = mux(Style(timestamp=False, live_partials=True))
    m.feed("web.1", "stdout", b"working")
    m.show_partial("web.1", "stdout")
    m.feed("web.1", "stdout", b"..")
    m.show_partial("web.1", "stdout")
    m.feed("web.1", "stdout", b". done\nnext\n")
    assert w.data == b"web.1    | working... done\nweb.1    | next\n"


def test_another_line_ends_an_open_fragment_first() -> None:
    m, w = mux(Style(timestamp=False, live_partials=True))
    m.feed("web.1", "stdout", b"Password: ")
    m.show_partial("web.1", "stdout")
    m.feed("worker.1", "stdout", b"tick\n")
    m.feed("web.1", "stdout", b"\n")  # ends a line already shown: nothing to add
    m.feed("web.1", "stdout", b"x")
    m.show_partial("web.1", "stdout")
    m.notice("something happened")
    m.feed("web.1", "stdout", b"yz\n")
    assert w.data.decode().splitlines() == [
        "web.1    | Password: ",
        "worker.1 | tick",
        "web.1    | x",
        "system   | something happened",
        "web.1    | yz",
    ]


def test_end_of_stream_ends_an_open_fragment() -> None:
    m, w = mux(Style(timestamp=False, live_partials=True))
    m.feed("web.1", "stdout", b"bye")
    m.show_partial("web.1", "stdout")
    m.close("web.1", "stdout")
    m.feed("worker.1", "stdout", b"later\n")
    assert w.data == b"web.1    | bye\nworker.1 | later\n"


def test_split_stderr_fragment_is_ended_on_its_own_writer() -> None:
    out, err = FakeWriter(), FakeWriter()
    m = Mux(["web.1"], out, Style(timestamp=False, live_partials=True), err_writer=err)
    m.feed("web.1", "stderr", b"warn")
    m.show_partial("web.1", "stderr")
    m.feed("web.1", "stdout", b"ok\n")
    assert err.data == b"web.1  | warn\n" and out.data == b"web.1  | ok\n"


def test_over_long_line_in_text_is_written_in_bounded_pieces_on_one_line() -> None:
    m, w = mux(Style(timestamp=False))
    line = bytes(range(32, 127)) * 5000  # ~475 KB
    for start in range(0, len(line), 1000):
        m.feed("web.1", "stdout", line[start : start + 1000])
        assert len(line[: start + 1000]) - (len(w.data) - len(b"web.1    | ")) < MAX_LINE
    m.feed("web.1", "stdout", b"\n")
    assert w.data == b"web.1    | " + line + b"\n"


def test_json_over_long_line_is_partial_records_then_a_closing_one() -> None:
    m, w = mux(Style(json=True))
    m.feed("web.1", "stdout", b"a" * MAX_LINE)
    m.feed("web.1", "stdout", b"\n")
    records = [json.loads(line) for line in w.data.splitlines()]
    assert [(r["line"], r.get("partial")) for r in records] == [("a" * MAX_LINE, True), ("", None)]
    assert "partial" not in records[1]


def test_json_terminal_partial_is_a_partial_record() -> None:
    m, w = mux(Style(json=True, live_partials=True))
    m.feed("web.1", "stdout", b"Password: ")
    m.show_partial("web.1", "stdout")
    m.feed("web.1", "stdout", b"ok\nnext\n")
    records = [json.loads(line) for line in w.data.splitlines()]
    assert [(r["line"], r.get("partial", False)) for r in records] == [
        ("Password: ", True),
        ("ok", False),
        ("next", False),
    ]


def interleave(
    m: Mux, feeds: list[tuple[int, bytes, bool]], names: tuple[str, ...]
) -> dict[str, bytes]:
    """Feed (stream index, chunk, show partial after it) to `m`; every stream's input."""
    sent = dict.fromkeys(names, b"")
    for index, chunk, show in feeds:
        name = names[index]
        m.feed(name, "stdout", chunk, now=NOON)
        sent[name] += chunk
        if show:
            m.show_partial(name, "stdout")
    for name in names:
        m.close(name, "stdout", now=NOON)
    return sent


feeds_strategy = st.lists(st.tuples(st.integers(0, 1), stream_data, st.booleans()), max_size=25)


def unescape(text: str) -> bytes:
    """A JSON `line` back to bytes (the input held no backslash of its own)."""
    return re.sub(rb"\\x([0-9a-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode())


@settings(deadline=None)
@given(feeds_strategy, st.integers(2, 50))
def test_json_pieces_rejoin_to_the_input_lines(
    feeds: list[tuple[int, bytes, bool]], limit: int
) -> None:
    names = ("web.1", "worker.1")
    m, w = mux(Style(json=True, live_partials=True), names)
    feeds = [(i, chunk.replace(b"\\", b"/"), show) for i, chunk, show in feeds]
    with mock.patch.object(mux_module, "MAX_LINE", limit):
        sent = interleave(m, feeds, names)
    got: dict[str, list[bytes]] = {name: [] for name in names}
    begun: dict[str, bytes] = dict.fromkeys(names, b"")
    for record in (json.loads(line) for line in w.data.splitlines()):
        name = record["process"]
        if "partial" in record:
            assert record["partial"] is True and record["line"]
            begun[name] += unescape(record["line"])
        else:
            got[name].append(begun[name] + unescape(record["line"]))
            begun[name] = b""
    assert begun == dict.fromkeys(names, b"")  # every partial sequence was closed
    for name in names:
        assert got[name] == expected_lines(sent[name])


@settings(deadline=None)
@given(feeds_strategy, st.integers(2, 50), st.booleans())
def test_text_output_never_mixes_processes_or_adds_empty_lines(
    feeds: list[tuple[int, bytes, bool]], limit: int, live: bool
) -> None:
    names = ("web.1", "worker.1")
    m, w = mux(Style(timestamp=False, live_partials=live), names)
    feeds = [(i, chunk.replace(b"|", b"!"), show and live) for i, chunk, show in feeds]
    with mock.patch.object(mux_module, "MAX_LINE", limit):
        sent = interleave(m, feeds, names)
    assert w.data == b"" or w.data.endswith(b"\n")
    contents: dict[str, list[bytes]] = {name: [] for name in names}
    # \r in the input was a line end: text output lines are split on \n only
    for line in w.data.split(b"\n")[:-1]:
        name, bar, text = line.partition(b" | ")
        assert bar and b" | " not in text, f"two records on one line: {line!r}"
        contents[name.strip().decode()].append(text)
    for name in names:
        lines = expected_lines(sent[name])
        assert b"".join(contents[name]) == b"".join(lines)  # nothing lost or added
        assert len(contents[name]) >= len(lines)
        # an empty output line only for an empty input line
        assert contents[name].count(b"") <= lines.count(b"")
        if not live and limit > max(map(len, lines), default=0):
            assert contents[name] == lines  # no terminal, no over-long line: whole lines


# -- the writer ----------------------------------------------------------------


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe; whichever end the test left open is closed afterwards."""
    r, w = os.pipe()
    inode = os.fstat(r).st_ino
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_ino == inode:  # still ours, not a reused number
                os.close(fd)


def read_to_eof(fd: int) -> bytes:
    received = b""
    while chunk := os.read(fd, 1 << 16):
        received += chunk
    return received


def no_proc(fd: int) -> None:
    return None


def test_writer_reports_a_closed_pipe_once(pipe: tuple[int, int]) -> None:
    r, wfd = pipe
    os.close(r)
    writer = Writer(wfd, nonblocking=True)
    writer.append(b"x\n")
    with pytest.raises(BrokenPipeError):
        writer.flush()
    assert writer.closed and writer.pending == 0
    assert isinstance(writer.error, BrokenPipeError)
    writer.append(b"more\n")
    writer.flush()  # discarded silently now
    writer.finish()
    writer.close()


@pytest.mark.parametrize("proc", [True, False], ids=["private-description", "no-proc"])
def test_writer_leaves_a_shared_pipe_blocking_and_never_blocks(
    pipe: tuple[int, int], proc: bool
) -> None:
    r, wfd = pipe
    with mock.patch.object(
        mux_module, "_reopen_nonblocking", mux_module._reopen_nonblocking if proc else no_proc
    ):
        writer = Writer(wfd, nonblocking=True)
    payload = bytes(range(256)) * 4096  # 1 MiB, far past the pipe's 64 KiB
    writer.append(payload)
    writer.flush()  # returns: the pipe is full
    assert 0 < writer.pending < len(payload)
    assert os.get_blocking(wfd), "the shared file description was made non-blocking"
    received = b""
    while writer.pending:
        received += os.read(r, 1 << 16)
        writer.flush()
    assert os.get_blocking(wfd)
    writer.close()
    os.close(wfd)
    assert received + read_to_eof(r) == payload


def test_writer_close_releases_only_what_it_opened(pipe: tuple[int, int]) -> None:
    r, wfd = pipe
    writer = Writer(wfd, nonblocking=True)
    assert writer.fd != wfd  # a private description of the same pipe
    writer.close()
    os.write(wfd, b"still mine\n")  # the given fd is untouched
    os.close(wfd)
    assert read_to_eof(r) == b"still mine\n"  # and nothing else holds the pipe open


@pytest.mark.parametrize("proc", [True, False], ids=["private-description", "no-proc"])
@settings(deadline=None, max_examples=40)
@given(
    chunks=st.lists(st.binary(min_size=1, max_size=3000), min_size=2, max_size=60).map(
        lambda chunks: [c * (1 + 2000 // len(c)) for c in chunks]  # past one page
    ),
    reads=st.lists(st.integers(1, 5000), min_size=1, max_size=50),
)
def test_writer_delivers_every_byte_in_order_under_partial_writes(
    chunks: list[bytes], reads: list[int], proc: bool
) -> None:
    r, wfd = os.pipe()
    fcntl.fcntl(wfd, 1031, 4096)  # F_SETPIPE_SZ: a one-page pipe forces partial writes
    with mock.patch.object(
        mux_module, "_reopen_nonblocking", mux_module._reopen_nonblocking if proc else no_proc
    ):
        writer = Writer(wfd, nonblocking=True)
    received = b""
    for chunk in chunks:
        writer.append(chunk)
    expected = b"".join(chunks)
    for size in itertools.islice(itertools.cycle(reads), 100_000):
        writer.flush()
        if writer.pending <= 0 or len(received) > len(expected):
            break
        received += os.read(r, size)
    writer.close()
    os.close(wfd)
    received += read_to_eof(r)
    os.close(r)
    assert received == expected


def test_writer_on_a_socket_uses_per_call_nonblocking_sends() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        writer = Writer(ours.fileno(), nonblocking=True)
        payload = os.urandom(1 << 22)
        writer.append(payload)
        writer.flush()  # returns although the socket buffer is full
        assert 0 < writer.pending < len(payload)
        assert os.get_blocking(ours.fileno())
        received = b""
        while writer.pending:
            received += theirs.recv(1 << 16)
            writer.flush()
        writer.close()
        ours.shutdown(socket.SHUT_WR)
        while chunk := theirs.recv(1 << 16):
            received += chunk
        assert received == payload


def test_writer_on_a_datagram_socket_keeps_one_write_per_flush() -> None:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with ours, theirs:
        writer = Writer(ours.fileno(), nonblocking=True)
        writer.append(b"one\n")
        writer.append(b"two\n")
        writer.flush()
        assert writer.pending == 0 and os.get_blocking(ours.fileno())
        assert theirs.recv(100) == b"one\ntwo\n"
        writer.close()


def test_finish_waits_for_a_slow_reader(pipe: tuple[int, int]) -> None:
    r, wfd = pipe
    writer = Writer(wfd, nonblocking=True)
    payload = os.urandom(1 << 20)
    writer.append(payload)
    writer.flush()
    assert writer.pending
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(read_to_eof(r)))
    reader.start()
    writer.finish()
    assert writer.pending == 0 and not writer.closed
    writer.close()
    os.close(wfd)
    reader.join(timeout=30)
    assert received == [payload]


def full_writer() -> tuple[Writer, Callable[[], None]]:
    fd = os.open("/dev/full", os.O_WRONLY)
    return Writer(fd, nonblocking=True), lambda: os.close(fd)


def test_a_full_disk_is_an_output_error_that_closes_the_writer() -> None:
    writer, done = full_writer()
    try:
        writer.append(b"line\n")
        with pytest.raises(OutputError) as caught:
            writer.flush()
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.strerror == os.strerror(errno.ENOSPC)
        assert not isinstance(caught.value, BrokenPipeError)  # not mistaken for the reader leaving
        assert writer.closed and writer.pending == 0 and writer.error is caught.value
        writer.append(b"more\n")
        writer.flush()  # reported once; the rest is discarded
        writer.finish()
    finally:
        done()


def test_finish_never_raises_and_the_next_flush_reports() -> None:
    writer, done = full_writer()
    try:
        writer.append(b"line\n")
        writer.finish()
        assert writer.closed and isinstance(writer.error, OutputError)
        with pytest.raises(OutputError):
            writer.flush()
        writer.flush()
    finally:
        done()


def test_file_size_limit_is_an_output_error(tmp_path: Path) -> None:
    """EFBIG under `ulimit -f` (in a child: the limit is per process)."""
    code = (
        "import resource, os, sys\n"
        "from corral.mux import Writer, OutputError\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))\n"
        "fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)\n"
        "w = Writer(fd, nonblocking=True)\n"
        "w.append(b'x' * 5000)\n"
        "try:\n"
        "    w.flush()\n"
        "    w.flush()\n"
        "except OutputError as exc:\n"
        "    print(exc.errno, w.closed)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, f"{tmp_path}/big"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == [str(errno.EFBIG), "True"], out.stderr
