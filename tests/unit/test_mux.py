from __future__ import annotations

import fcntl
import itertools
import json
import os
import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corral.mux import PARTIAL_DELAY, LineSplitter, Mux, Style, Writer

# -- the line splitter ---------------------------------------------------------


def reference_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Lines ended by \\r\\n, \\n or a lone \\r, computed the slow, obvious way."""
    lines, current, i = [], b"", 0
    while i < len(data):
        byte = data[i : i + 1]
        if byte == b"\n":
            lines.append(current)
            current = b""
        elif byte == b"\r":
            if i + 1 == len(data):
                return lines, current + b"\r"  # may still become \r\n
            lines.append(current)
            current = b""
            if data[i + 1 : i + 2] == b"\n":
                i += 1
        else:
            current += byte
        i += 1
    return lines, current


chunks_strategy = st.lists(
    st.binary(max_size=40).map(lambda b: b.replace(b"x", b"\n").replace(b"y", b"\r")),
    max_size=30,
)


@given(chunks_strategy)
def test_splitter_matches_reference_under_any_chunking(chunks: list[bytes]) -> None:
    splitter = LineSplitter()
    got: list[bytes] = []
    for chunk in chunks:
        got.extend(splitter.feed(chunk))
    expected, tail = reference_lines(b"".join(chunks))
    assert got == expected
    assert splitter.pending == tail


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=10))
def test_splitter_is_lossless_for_newline_text(data: bytes, cuts: list[int]) -> None:
    data = data.replace(b"\r", b"")
    splitter = LineSplitter()
    got: list[bytes] = []
    previous = 0
    for cut in sorted(cuts):
        got.extend(splitter.feed(data[previous:cut]))
        previous = max(previous, cut)
    got.extend(splitter.feed(data[previous:]))
    tail = splitter.flush()
    rebuilt = b"".join(line + b"\n" for line in got) + (tail or b"")
    assert rebuilt == data


def test_flush_of_trailing_cr_is_an_empty_line() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"x\n\r") == [b"x"]
    assert splitter.flush() == b""
    assert splitter.flush() is None


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


def test_partial_line_deadline_and_due() -> None:
    m, w = mux(Style(prefix=False))
    assert m.next_deadline() is None
    m.feed("web.1", "stdout", b"Password: ")
    deadline = m.next_deadline()
    assert deadline is not None and deadline <= time.monotonic() + PARTIAL_DELAY
    assert m.due(deadline - PARTIAL_DELAY / 2) == []
    assert m.due(deadline) == [("web.1", "stdout")]
    assert w.data == b""
    m.show_partial("web.1", "stdout")
    assert w.data == b"Password: \n"
    assert m.next_deadline() is None and m.due(deadline) == []


# -- the writer ----------------------------------------------------------------


def test_writer_reports_a_closed_pipe_once() -> None:
    r, wfd = os.pipe()
    os.close(r)
    writer = Writer(wfd, nonblocking=True)
    writer.append(b"x\n")
    with pytest.raises(BrokenPipeError):
        writer.flush()
    assert writer.closed and writer.pending == 0
    writer.append(b"more\n")
    writer.flush()  # discarded silently now
    writer.finish()
    os.close(wfd)


@given(
    st.lists(st.binary(min_size=1, max_size=3000), min_size=2, max_size=60).map(
        lambda chunks: [c * (1 + 2000 // len(c)) for c in chunks]  # past one page
    ),
    st.lists(st.integers(1, 5000), min_size=1, max_size=50),
)
def test_writer_delivers_every_byte_in_order_under_partial_writes(
    chunks: list[bytes], reads: list[int]
) -> None:
    r, wfd = os.pipe()
    fcntl.fcntl(wfd, 1031, 4096)  # F_SETPIPE_SZ: a one-page pipe forces partial writes
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
    os.close(wfd)
    while data := os.read(r, 65536):
        received += data
    os.close(r)
    assert received == expected


def test_writer_keeps_what_a_full_pipe_does_not_take() -> None:
    r, wfd = os.pipe()
    writer = Writer(wfd, nonblocking=True)
    payload = b"y" * (1 << 20)
    writer.append(payload)
    writer.flush()
    assert 0 < writer.pending < len(payload)
    received = b""
    while writer.pending:
        received += os.read(r, 1 << 16)
        writer.flush()
    writer.finish()
    os.close(wfd)
    while chunk := os.read(r, 1 << 16):
        received += chunk
    os.close(r)
    assert received == payload
