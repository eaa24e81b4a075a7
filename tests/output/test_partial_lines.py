"""Black-box: lines that pause, lines that never end, lines too long to hold.

corral's stdout is a pipe here, so no partial line is ever shown because its
writer paused: each line is one record, written when it ends.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import CORRAL, base_env, run_corral, texts

PY = sys.executable
MAX_LINE = 1 << 16  # corral holds at most this much of an unfinished line
RSS_BOUND_KIB = 40 * 1024  # corral runs in ~18 MB; holding the whole line took 67-190 MB

PAUSING = {
    # a progress bar that redraws itself with \r, pausing between updates
    "Procfile": (
        "progress: printf 'downloading  10%%'; sleep 0.3; printf '\\rdownloading  20%%';"
        " sleep 0.3; printf '\\rdownloading 100%%\\n'\n"
        # a line that grows a dot at a time while the other process writes
        "dots: printf 'processing job 1 (tick) '; for i in 1 2 3 4 5; do sleep 0.15;"
        " printf .; done; echo\n"
        "chatty: for i in 1 2 3 4 5 6; do echo chat$i; sleep 0.1; done\n"
    )
}
ONESHOTS = ("--oneshot", "progress,dots,chatty")


def test_pausing_lines_through_a_pipe_stay_whole(app_dir: Callable[..., Path]) -> None:
    root = app_dir(**PAUSING)
    result = run_corral("start", "--no-colour", "--no-timestamp", *ONESHOTS, cwd=root)
    assert result.rc == 0, result.err
    assert texts(result.out, "progress.1") == [
        "downloading  10%",
        "downloading  20%",
        "downloading 100%",
    ]
    assert texts(result.out, "dots.1") == ["processing job 1 (tick) ....."]
    assert texts(result.out, "chatty.1") == [f"chat{i}" for i in range(1, 7)]


def test_pausing_lines_in_json_are_whole_records(app_dir: Callable[..., Path]) -> None:
    root = app_dir(**PAUSING)
    result = run_corral("start", "--log-format", "json", *ONESHOTS, cwd=root)
    assert result.rc == 0, result.err
    records = [json.loads(line) for line in result.lines]
    assert not [r for r in records if "partial" in r]
    output = [(r["process"], r["line"]) for r in records if r["stream"] == "stdout"]
    assert [line for name, line in output if name == "progress.1"] == [
        "downloading  10%",
        "downloading  20%",
        "downloading 100%",
    ]
    assert [line for name, line in output if name == "dots.1"] == ["processing job 1 (tick) ....."]


def long_line_app(app_dir: Callable[..., Path], size: int) -> Path:
    """`big` writes a `size`-byte line in pieces, with pauses; `short` a normal line."""
    script = (
        "import os, sys, time\n"
        "size = int(sys.argv[1])\n"
        "line = bytes(65 + i % 26 for i in range(size))\n"
        "for start in range(0, size, 50_000):\n"
        "    os.write(1, line[start:start + 50_000])\n"
        "    time.sleep(0.01)\n"
        "os.write(1, b'\\n' + b's' * 60_000 + b'\\n')\n"
    )
    root = app_dir(**{"big.py": script})
    (root / "Procfile").write_text(f"big: {PY} big.py {size}\n")
    return root


def expected_long_line(size: int) -> str:
    return "".join(chr(65 + i % 26) for i in range(size))


def test_an_over_long_line_in_json_is_partial_records_that_rejoin(
    app_dir: Callable[..., Path],
) -> None:
    size = 5 * MAX_LINE + 123
    root = long_line_app(app_dir, size)
    result = run_corral("start", "--log-format", "json", cwd=root)
    records = [json.loads(line) for line in result.lines]
    pieces = [r for r in records if r["stream"] == "stdout"]
    *fragments, closing, short = pieces
    assert fragments and all(r["partial"] is True for r in fragments)
    assert all(len(r["line"]) < 2 * MAX_LINE for r in fragments)  # bounded pieces
    assert "partial" not in closing and "partial" not in short
    assert "".join(r["line"] for r in fragments) + closing["line"] == expected_long_line(size)
    assert short["line"] == "s" * 60_000  # a long line under the bound stays one record


def test_an_over_long_line_in_text_loses_nothing(app_dir: Callable[..., Path]) -> None:
    size = 5 * MAX_LINE + 123
    root = long_line_app(app_dir, size)
    result = run_corral("start", "--no-colour", cwd=root)
    pieces = texts(result.out, "big.1")
    # nothing else writes meanwhile, so the pieces even stay on one output line
    assert pieces == [expected_long_line(size), "s" * 60_000]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def corral_piped() -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(root: Path, *options: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [CORRAL, "start", "--no-colour", "-t", "1", *options],
            cwd=root,
            env=base_env(),
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def read_sampling_rss(
    proc: subprocess.Popen[bytes], limit: int, timeout: float = 90
) -> tuple[bytes, bytes, int, int]:
    """Read corral's output until EOF, `limit` bytes or `timeout` seconds,
    sampling its RSS; the first and last MiB read, the byte count and the
    peak RSS in KiB."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    head, tail, total, peak = b"", b"", 0, 0
    deadline = time.monotonic() + timeout
    while total < limit and time.monotonic() < deadline:
        if not select.select([fd], [], [], 1)[0]:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        if len(head) < 1 << 20:
            head += chunk[: (1 << 20) - len(head)]
        tail = (tail + chunk)[-(1 << 20) :]
        total += len(chunk)
        if proc.poll() is None:
            peak = max(peak, rss_kib(proc.pid))
    return head, tail, total, peak


def test_endless_output_without_newline_stays_bounded(
    app_dir: Callable[..., Path], corral_piped: Callable[..., subprocess.Popen[bytes]]
) -> None:
    root = app_dir(Procfile="zero: exec cat /dev/zero\n")
    proc = corral_piped(root, "--no-timestamp")
    head, _, total, peak = read_sampling_rss(proc, 100 << 20)
    proc.send_signal(signal.SIGTERM)
    assert total >= 100 << 20, "corral stopped writing"
    assert peak < RSS_BOUND_KIB, f"corral grew to {peak} KiB"
    # one never-ending line: its prefix once, then the bytes as they came
    start = head.index(b"zero.1 | ")
    assert head[start + 9 :].count(b"\0") == len(head) - start - 9


def test_a_fifty_megabyte_line_arrives_whole_in_bounded_memory(
    app_dir: Callable[..., Path], corral_piped: Callable[..., subprocess.Popen[bytes]]
) -> None:
    size = 50_000_000
    root = app_dir(
        Procfile=(
            f"big: {PY} -c \"import os; os.write(1, b'x' * {size} + b'\\\\n')\"; echo after\n"
        )
    )
    proc = corral_piped(root, "--no-timestamp")
    head, tail, total, peak = read_sampling_rss(proc, size * 2)
    assert proc.wait(timeout=60) == 0
    assert peak < RSS_BOUND_KIB, f"corral grew to {peak} KiB"
    assert head.startswith(b"system | big.1 started")
    prefix = b"big.1  | "
    assert head.count(prefix) == 1 and head.endswith(b"x" * 1000)
    assert tail.endswith(b"x\n" + prefix + b"after\nsystem | big.1 stopped (rc=0)\n")
    before = head.index(prefix) + len(prefix)
    after = len(tail) - tail.rindex(b"x") - 1
    assert total == before + size + after, "bytes lost or added"
