"""Black-box: the multiplexer loses nothing, tears nothing, and stays bounded."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.support import CORRAL, base_env, run_corral, wait_for

PY = sys.executable
LINE_RE = re.compile(rb"^\d\d:\d\d:\d\d (\S+)\s+\| (.*)$")


def writer_script(tmp: Path) -> Path:
    """A child that writes N numbered lines of ~100 bytes as fast as it can."""
    script = tmp / "writer.py"
    script.write_text(
        "import os, sys\n"
        "name, n = sys.argv[1], int(sys.argv[2])\n"
        "pad = 'x' * 80\n"
        "buf = ''.join(f'{name} {i:08d} {pad}\\n' for i in range(n)).encode()\n"
        "view = memoryview(buf)\n"
        "while view:\n"
        "    view = view[os.write(1, view):]\n"
    )
    return script


def start_piped(root: Path, *options: str) -> subprocess.Popen[bytes]:
    """`corral start --no-colour -t 1` in `root`, its stdout a pipe we read."""
    return subprocess.Popen(
        [CORRAL, "start", "--no-colour", "-t", "1", *options],
        cwd=root,
        env=base_env(),
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


def writers_app(root: Path, writers: int, count: int, runtime: float) -> None:
    """`writers` processes writing `count` numbered lines each, then waiting; a
    `done` process ends the run after `runtime` seconds."""
    script = writer_script(root)
    procfile = "".join(f"w{i}: {PY} {script} w{i} {count}; sleep 30\n" for i in range(writers))
    procfile += f"done: {PY} -c 'import time; time.sleep({runtime})'\n"
    (root / "Procfile").write_text(procfile)


def assert_every_line_once_in_order(output: bytes, writers: int, count: int) -> None:
    """Each writer's lines all arrived, once, in order, whole, with its own prefix."""
    seen: dict[str, list[int]] = {f"w{i}": [] for i in range(writers)}
    for raw in output.split(b"\n")[:-1]:
        match = LINE_RE.match(raw)
        assert match, f"not a prefixed line: {raw[:120]!r}"
        name, text = match.group(1).decode(), match.group(2)
        if name in ("system", "done.1"):
            continue
        writer, number, pad = text.split(b" ")
        assert name == writer.decode() + ".1" and pad == b"x" * 80, f"torn: {raw[:120]!r}"
        seen[writer.decode()].append(int(number))
    for numbers in seen.values():
        assert numbers == list(range(count))  # every line, once, in order


def test_lossless_and_untorn_under_load(app_dir: Callable[..., Path]) -> None:
    count = 40_000
    root = app_dir()
    writers_app(root, 4, count, runtime=2.5)
    result = subprocess.run(
        [CORRAL, "start", "--no-colour", "-t", "1"],
        cwd=root,
        env=base_env(),
        capture_output=True,
        timeout=60,
    )
    assert_every_line_once_in_order(result.stdout, 4, count)


def test_untorn_when_stdout_is_slow(app_dir: Callable[..., Path]) -> None:
    """Backpressure: while corral stops reading, a producer blocked mid-line
    must not have its partial line shown as if the stream had gone silent."""
    count = 12_000
    root = app_dir()
    writers_app(root, 16, count, runtime=4)
    proc = start_piped(root)
    assert proc.stdout is not None
    chunks = []
    try:
        while chunk := proc.stdout.read1(1 << 16):
            chunks.append(chunk)
            time.sleep(0.004)  # ~16 MB/s: far slower than 16 producers
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert_every_line_once_in_order(b"".join(chunks), 16, count)


def test_a_one_mebibyte_line_arrives_whole(app_dir: Callable[..., Path]) -> None:
    root = app_dir(
        Procfile=(
            f"big: {PY} -c \"import sys; sys.stdout.write('A' * (1 << 20) + '\\\\n')\"; sleep 0.3\n"
            f"chatty: for i in 1 2 3 4 5; do echo chat$i; done; sleep 5\n"
        )
    )
    result = run_corral("start", "--no-colour", "-t", "1", cwd=root)
    # written in pieces of at most 64 KiB (corral holds no more of one line),
    # each piece under big.1's prefix or continuing its output line
    big = [
        line.split("| ", 1)[1]
        for line in result.lines
        if line.startswith(tuple("0123456789")) and "big.1" in line and "AAAA" in line
    ]
    assert "".join(big) == "A" * (1 << 20)
    assert sum(1 for line in result.lines if re.search(r"chatty\.1 +\| chat\d$", line)) == 5


def test_invalid_utf8_and_carriage_returns(app_dir: Callable[..., Path]) -> None:
    root = app_dir(
        Procfile="p: printf 'bad \\377\\376 bytes\\n10%%\\r20%%\\r30%%\\r\\ndos\\r\\nend'\n"
    )
    proc = subprocess.run(
        [CORRAL, "start", "--no-colour", "--no-timestamp"],
        cwd=root,
        env=base_env(),
        capture_output=True,
        timeout=30,
    )
    lines = [line for line in proc.stdout.split(b"\n") if line.startswith(b"p.1")]
    assert [line.split(b"| ", 1)[1] for line in lines] == [
        b"bad \xff\xfe bytes",
        b"10%",
        b"20%",
        b"30%",
        b"dos",
        b"end",
    ]
    assert proc.returncode == 0


def test_a_paused_line_stays_whole_on_a_pipe(app_dir: Callable[..., Path]) -> None:
    """On a pipe a pause never splits a line: `Password: ` waits for its rest."""
    root = app_dir(Procfile="prompt: printf 'Password: '; : > asked; sleep 1; echo ok; echo done\n")
    proc = start_piped(root, "--no-timestamp")
    assert proc.stdout is not None
    try:
        wait_for(lambda: (root / "asked").exists(), timeout=10)
        out, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
    lines = out.split(b"\n")
    assert b"prompt.1 | Password: ok" in lines, out
    assert b"prompt.1 | done" in lines, out
    assert not any(line.endswith(b"| ") for line in lines), out  # no empty record


def test_a_paused_line_shows_at_once_on_a_terminal(app_dir: Callable[..., Path]) -> None:
    """On a terminal a prompt is shown while it waits, and its rest continues
    the same output line: no empty prefixed line when the newline comes."""
    root = app_dir(Procfile="prompt: printf 'Password: '; : > asked; sleep 3; echo ok\n")
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [CORRAL, "start", "--no-colour", "--no-timestamp", "-t", "1"],
        cwd=root,
        env=base_env(),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    received = b""

    def read_some() -> None:
        nonlocal received
        with contextlib.suppress(OSError):
            while select_ready(master):
                chunk = os.read(master, 4096)
                if not chunk:
                    return
                received += chunk

    try:
        wait_for(lambda: (root / "asked").exists(), timeout=10)

        def prompt_shown() -> bool:
            read_some()
            return b"prompt.1 | Password: " in received

        wait_for(prompt_shown, timeout=2.5)  # the child sleeps 3 s more
        assert b"ok" not in received
        proc.wait(timeout=20)
        read_some()
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
    text = received.replace(b"\r\n", b"\n")
    assert b"prompt.1 | Password: ok\n" in text, received
    assert b"prompt.1 | \n" not in text, received


def select_ready(fd: int) -> bool:
    import select

    return bool(select.select([fd], [], [], 0.05)[0])


def test_json_lines_schema(app_dir: Callable[..., Path]) -> None:
    root = app_dir(Procfile="web: echo out; echo err >&2; printf '\\377'\n")
    result = run_corral("start", "--log-format", "json", cwd=root)
    records = [json.loads(line) for line in result.lines]
    iso = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    assert all(iso.match(r["time"]) for r in records)
    assert all({"time", "process", "stream", "line"} <= r.keys() for r in records)
    output = [(r["stream"], r["line"]) for r in records if r["stream"] != "system"]
    assert sorted(output) == [("stderr", "err"), ("stdout", "\\xff"), ("stdout", "out")]
    events = [r["event"] for r in records if r["stream"] == "system"]
    assert events == ["starting", "exited"]
    # the env variable selects it too
    again = run_corral("start", cwd=root, env={"CORRAL_LOG_FORMAT": "json"})
    assert all(json.loads(line) for line in again.lines)


def test_tty_mode_gives_the_child_a_terminal(app_dir: Callable[..., Path]) -> None:
    check = "if [ -t 0 ] && [ -t 1 ] && [ -t 2 ]; then echo tty; else echo notty; fi; sleep 0.2"
    root = app_dir(Procfile=f"a: {check}\nb: {check}\n")
    result = run_corral("start", "--no-colour", "--tty=a", cwd=root)
    assert re.search(r"a\.1 +\| tty$", result.out, re.M), result.out
    assert re.search(r"b\.1 +\| notty$", result.out, re.M), result.out
    everyone = run_corral("start", "--no-colour", "--tty", cwd=root)
    assert len(re.findall(r"\| tty$", everyone.out, re.M)) == 2


def test_python_children_are_unbuffered_unless_the_user_says_otherwise(
    app_dir: Callable[..., Path],
) -> None:
    root = app_dir(Procfile='py: echo "PYTHONUNBUFFERED=${PYTHONUNBUFFERED-unset}"\n')
    assert "PYTHONUNBUFFERED=1" in run_corral("start", cwd=root).out
    mine = run_corral("start", cwd=root, env={"PYTHONUNBUFFERED": ""})
    assert "PYTHONUNBUFFERED=\n" in mine.out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_memory_stays_bounded_with_a_slow_reader(app_dir: Callable[..., Path]) -> None:
    """A producer far faster than the reader: corral must block it, not buffer."""
    root = app_dir()
    (root / "flood.py").write_text("import os\nwhile True:\n    os.write(1, b'z' * 99 + b'\\n')\n")
    (root / "Procfile").write_text(f"flood: {PY} flood.py\n")
    proc = start_piped(root)
    assert proc.stdout is not None
    try:
        peak = 0
        total = 0
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            total += len(proc.stdout.read1(16384))  # ~1.6 MB/s, far below the producer
            time.sleep(0.01)
            peak = max(peak, rss_kib(proc.pid))
        assert total > 0
        assert peak < 64 * 1024, f"corral grew to {peak} KiB"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.stdout.close()
        proc.wait(timeout=10)


def test_split_stderr_keeps_the_streams_apart(app_dir: Callable[..., Path]) -> None:
    root = app_dir(Procfile="p: echo to-out; echo to-err >&2\n")
    result = run_corral("start", "--no-colour", "--no-timestamp", "--split-stderr", cwd=root)
    assert "p.1    | to-out" in result.out and "to-err" not in result.out
    assert "p.1    | to-err" in result.err and "to-out" not in result.err
    merged = run_corral("start", "--no-colour", "--no-timestamp", cwd=root)
    assert "p.1    | to-out" in merged.out and "p.1    | to-err" in merged.out
    by_env = run_corral("start", cwd=root, env={"CORRAL_SPLIT_STDERR": "1"})
    assert "to-err" in by_env.err and "to-err" not in by_env.out


def test_quiet_prefix_and_timestamp_options_in_every_mode(app_dir: Callable[..., Path]) -> None:
    root = app_dir(Procfile="loud: echo shout\nhush: echo whisper; sleep 0.2\n")
    as_json = run_corral("start", "--log-format", "json", "-q", "hush", cwd=root)
    lines = [json.loads(line) for line in as_json.lines]
    assert any(r["line"] == "shout" for r in lines)
    assert not any(r["line"] == "whisper" for r in lines)
    assert any(r.get("event") == "starting" and r["process"] == "hush.1" for r in lines)
    for extra in ([], ["--tty"]):
        bare = run_corral("start", "--no-colour", "--no-prefix", "-q", "hush", *extra, cwd=root)
        assert "shout" in bare.lines and "whisper" not in bare.out
        untimed = run_corral("start", "--no-colour", "--no-timestamp", *extra, cwd=root)
        assert re.search(r"^loud\.1 +\| shout$", untimed.out, re.M), untimed.out
