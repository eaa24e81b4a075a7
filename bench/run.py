#!/usr/bin/env python3
"""corral vs honcho, side by side, in one run: `python bench/run.py [--quick] [--write]`.

Seven measurements (see bench/README.md for what each row means):

1. throughput   1/4/16 producers writing 100-byte lines; every line verified
                (exactly once, in order, unsplit), plus three no-runner baselines
2. latency      child write -> reader receipt, p50/p99
3. idle         CPU and context switches over a window with 4 `sleep` children
4. start-up     exec -> first child line, for 1 and 50 processes
5. shutdown     SIGTERM -> runner exit with 4 sleeping children
6. memory       peak RSS with a fast and with a slow reader
7. many         200 `sleep` processes: helper processes, threads, RSS, start time

Everything runs under a harness that is a child subreaper, so nothing a runner
starts can escape: after every run the whole tree is SIGKILLed and reaped.
Only the standard library is used; the harness reads with plain `os.read`.
"""

# ruff: noqa: RUF001
from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import datetime
import os
import platform
import re
import selectors
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024

LINE_LEN = 99  # payload bytes per line, newline excluded: 100 bytes on the wire
FILLER = b"abcdefghijklmnopqrstuvwxyz0123456789" * 3
HEAD_LEN = len(b"00:0000000000:")  # process id, sequence number
SLEEP = "sleep 600"  # what idle children do; bounded even if everything else fails


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# process bookkeeping (/proc)
# ---------------------------------------------------------------------------


def become_subreaper() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.extend(int(p) for p in f.read().split())
        except OSError:
            pass
    return out


def tree(root: int) -> list[int]:
    """root and all its descendants (breadth first)."""
    seen = [root]
    i = 0
    while i < len(seen):
        for c in children_of(seen[i]):
            if c not in seen:
                seen.append(c)
        i += 1
    return seen


def is_python(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("python")
    except OSError:
        return False


def is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2] in "ZX"


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def status(pid: int) -> dict[str, int]:
    """VmRSS/VmHWM (kB) and Threads from /proc/<pid>/status."""
    out: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM", "Threads"):
                    out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def ctx_switches(pid: int) -> int:
    """voluntary + nonvoluntary context switches, summed over every thread."""
    total = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def runner_procs(root: int) -> list[int]:
    """The runner process itself and every Python helper process under it."""
    return [p for i, p in enumerate(tree(root)) if i == 0 or is_python(p)]


def reap_any() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def cleanup_all() -> None:
    """SIGKILL and reap every descendant of the harness (it is a subreaper)."""
    me = os.getpid()
    for _ in range(200):
        reap_any()
        pids = [p for p in tree(me) if p != me]
        if not pids:
            return
        for p in pids:
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        time.sleep(0.01)
    log("warning: could not clean up every descendant")


def live_descendants() -> list[int]:
    me = os.getpid()
    return [p for p in tree(me) if p != me and not is_zombie(p)]


# ---------------------------------------------------------------------------
# one process under test, read through a pipe
# ---------------------------------------------------------------------------


class Timeout(Exception):
    pass


# runner name -> SIGTERMs that did not make it exit within the stop timeout
LOST_SIGNALS: dict[str, int] = {}
PYCACHE: Path | None = None  # bytecode cache for the runners (see runner_env)


def runner_env() -> dict[str, str]:
    """The environment every command under test gets.

    Bytecode caching is forced on, into a scratch directory: an editable
    install has no .pyc of its own, and with PYTHONDONTWRITEBYTECODE set (as in
    some sandboxes) corral would recompile every module at each start while
    honcho, installed by pip, loads .pyc files. With one prefix for both, both
    start from cached bytecode, and nothing is written next to the sources.
    """
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)  # runners decide that for their children
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if PYCACHE is not None:
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


@dataclass
class Sampler:
    """Memory of the runner and its Python helpers, sampled while it runs."""

    root: int
    pss: bool = False
    runner_hwm_kb: int = 0
    sum_rss_kb: int = 0  # peak of the instantaneous sum over runner + helpers
    sum_pss_kb: int = 0
    samples: int = 0
    helpers: int = 0  # most python helper processes seen at once

    def __call__(self) -> None:
        procs = runner_procs(self.root)
        self.helpers = max(self.helpers, len(procs) - 1)
        total = 0
        total_pss = 0
        for i, p in enumerate(procs):
            st = status(p)
            if i == 0:
                self.runner_hwm_kb = max(self.runner_hwm_kb, st.get("VmHWM", 0))
            total += st.get("VmRSS", 0)
            if self.pss:
                total_pss += pss_kb(p)
        self.sum_rss_kb = max(self.sum_rss_kb, total)
        self.sum_pss_kb = max(self.sum_pss_kb, total_pss)
        self.samples += 1


class Proc:
    """A command with stdout on a pipe that the harness drains."""

    def __init__(
        self,
        argv: list[str],
        cwd: Path,
        label: str,
        keep: bool = True,
        on_chunk: Callable[[bytes, int], None] | None = None,
    ) -> None:
        self.label = label
        self.runner = label.split("-")[0]
        self.keep = keep
        self.on_chunk = on_chunk
        self.chunks: list[bytes] = []
        self.nbytes = 0
        self.nlines = 0
        self.nsystem = 0  # lines of the runner's own (`system | ...`)
        self._carry = b""
        self.eof = False
        self.status: int | None = None
        self.t_exit: float | None = None
        self.t_last = 0.0  # last chunk read
        self.t_first = 0.0  # first chunk read
        self.errpath = cwd / f"stderr-{label}.txt"
        r, w = os.pipe()
        env = runner_env()
        with open(self.errpath, "wb") as err:
            self.t0 = time.perf_counter()
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=w,
                stderr=err,
                start_new_session=True,
                env=env,
            )
        os.close(w)
        self.pid = self.popen.pid
        self.fd = r
        os.set_blocking(r, False)
        self.pidfd = os.pidfd_open(self.pid)
        self.sel = selectors.DefaultSelector()
        self.sel.register(r, selectors.EVENT_READ, "out")
        self.sel.register(self.pidfd, selectors.EVENT_READ, "exit")

    @property
    def exited(self) -> bool:
        return self.status is not None

    def _reap(self) -> None:
        try:
            _, st, _ = os.wait4(self.pid, 0)
        except ChildProcessError:
            st = 0
        self.t_exit = time.perf_counter()
        self.status = os.waitstatus_to_exitcode(st)
        self.popen.returncode = self.status
        self.sel.unregister(self.pidfd)
        os.close(self.pidfd)

    def step(self, timeout: float, maxread: int = 1 << 20) -> bool:
        """One select; read at most one chunk. True if something happened."""
        events = self.sel.select(max(0.0, timeout))
        for key, _ in events:
            if key.data == "exit":
                self._reap()
                continue
            try:
                data = os.read(self.fd, maxread)
            except BlockingIOError:
                continue
            now = time.perf_counter()
            if not data:
                self.eof = True
                self.sel.unregister(self.fd)
                continue
            self.t_last = now
            if not self.t_first:
                self.t_first = now
            self.nbytes += len(data)
            self.nlines += data.count(b"\n")
            # a marker split across two reads is counted once: the carry is too
            # short to hold a whole marker by itself
            self.nsystem += (self._carry + data).count(b" system ")
            self._carry = data[-7:]
            if self.keep:
                self.chunks.append(data)
            if self.on_chunk is not None:
                self.on_chunk(data, time.monotonic_ns())
        return bool(events)

    def pump(
        self,
        until: Callable[[], bool],
        timeout: float,
        stall: float | None = None,
        sampler: Callable[[], None] | None = None,
        every: float = 0.1,
        slow: tuple[int, float] | None = None,
    ) -> bool:
        """Read until `until()`; False on timeout, stall, or the runner ending first."""
        start = time.perf_counter()
        deadline = start + timeout
        next_sample = start
        last_activity = start
        while True:
            if until():
                return True
            now = time.perf_counter()
            if now >= deadline:
                return False
            if self.eof and self.exited:
                return until()
            if stall is not None and now - max(last_activity, self.t_last) > stall:
                return False
            if sampler is not None and now >= next_sample:
                sampler()
                next_sample = now + every
            wait = min(deadline, next_sample if sampler else deadline) - now
            if slow is not None:
                before = self.nbytes
                self.step(min(wait, 0.05), maxread=slow[0])
                if self.nbytes != before:
                    time.sleep(slow[1])
            else:
                self.step(min(wait, 0.25))

    def stop(
        self, signum: int = signal.SIGTERM, timeout: float = 5.0, retry: bool = True
    ) -> float | None:
        """Signal the runner, keep draining, return seconds until it exited.

        A signal that does not make it exit within `timeout` is counted as lost
        (`LOST_SIGNALS`) and, with `retry`, sent once more; then SIGKILL.
        """
        t_sig = time.perf_counter()
        for _attempt in range(2 if retry else 1):
            if not self.exited:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signum)
            if self.pump(lambda: self.exited, timeout):
                break
            LOST_SIGNALS[self.runner] = LOST_SIGNALS.get(self.runner, 0) + 1
        else:
            self.kill()
            return None
        # whatever is still in the pipe (helpers may hold it open: do not wait long)
        end = time.perf_counter() + 0.5
        while not self.eof and time.perf_counter() < end:
            self.step(end - time.perf_counter())
        assert self.t_exit is not None
        return self.t_exit - t_sig

    def kill(self) -> None:
        for p in reversed(tree(self.pid)):
            with contextlib.suppress(OSError):
                os.kill(p, signal.SIGKILL)
        if not self.exited:
            self.pump(lambda: self.exited, 5.0)

    def close(self) -> None:
        if not self.exited:
            self.kill()
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.sel.close()
        cleanup_all()

    def output(self) -> bytes:
        return b"".join(self.chunks)

    def stderr_tail(self) -> str:
        try:
            return self.errpath.read_text(errors="replace")[-400:].strip()
        except OSError:
            return ""


# ---------------------------------------------------------------------------
# workloads
# ---------------------------------------------------------------------------


@dataclass
class Runner:
    name: str
    exe: str

    def argv(self, *extra: str) -> list[str]:
        return [self.exe, "start", "--no-colour", *extra]


class Work:
    """The scratch directory: payload files and Procfiles."""

    def __init__(self, keep: bool) -> None:
        base = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.root = Path(tempfile.mkdtemp(prefix="corral-bench-", dir=base))
        self.keep = keep
        self._payload: dict[tuple[int, int], Path] = {}

    def payload(self, proc: int, count: int) -> Path:
        """File of `count` 100-byte lines `PP:SSSSSSSSSS:filler` for process `proc`."""
        key = (proc, count)
        path = self._payload.get(key)
        if path is None:
            path = self.root / f"payload-{proc:02d}-{count}.txt"
            path.write_bytes(payload_bytes(proc, count))
            self._payload[key] = path
        return path

    def drop_payloads(self) -> None:
        for path in self._payload.values():
            with contextlib.suppress(OSError):
                path.unlink()
        self._payload.clear()

    def dir(self, name: str, procfile: Iterable[tuple[str, str]] | None = None) -> Path:
        d = self.root / name
        d.mkdir(exist_ok=True)
        if procfile is not None:
            (d / "Procfile").write_text("".join(f"{n}: {c}\n" for n, c in procfile))
        return d

    def remove(self) -> None:
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def payload_bytes(proc: int, count: int) -> bytes:
    tail = FILLER[: LINE_LEN - HEAD_LEN].decode()
    return "".join([f"{proc:02d}:{i:010d}:{tail}\n" for i in range(count)]).encode()


# ---------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------

PREFIX_RE = re.compile(rb"^(?:\d\d:\d\d:\d\d )?(w\d\d)\.1 +\| (?=\d\d:\d{10}:)", re.M)


@dataclass
class Check:
    expected: int = 0
    ok: int = 0  # lines delivered exactly once, unsplit, in order, right prefix
    missing: int = 0  # expected lines not delivered intact
    dup: int = 0
    bad: int = 0  # non-system output lines that are not an intact expected line
    reordered: int = 0  # processes whose lines came out of order
    system: int = 0
    prefix_errors: int = 0

    @property
    def intact(self) -> bool:
        return self.ok == self.expected and not (
            self.missing or self.dup or self.bad or self.reordered or self.prefix_errors
        )

    def describe(self) -> str:
        if self.intact:
            return "yes"
        parts = [f"{self.missing} lost/torn"]
        if self.dup:
            parts.append(f"{self.dup} dup")
        if self.bad:
            parts.append(f"{self.bad} fragments")
        if self.reordered:
            parts.append(f"{self.reordered} reordered")
        if self.prefix_errors:
            parts.append(f"{self.prefix_errors} bad prefixes")
        return "NO: " + ", ".join(parts)

    def merge(self, other: Check) -> Check:
        return Check(*(getattr(self, f) + getattr(other, f) for f in self.__dataclass_fields__))


def verify(buf: bytes, expected: dict[bytes, bytes], raw: bool) -> Check:
    """Each expected line exactly once, unsplit, in per-process order, correctly prefixed.

    `expected` maps the two-digit process id to that process's exact output.
    `raw`: lines carry no prefix; otherwise `[HH:MM:SS ]wNN.1 <pad>| ` is required.
    """
    res = Check(expected=sum(v.count(b"\n") for v in expected.values()))
    lines = buf.split(b"\n")
    if lines.pop():
        res.bad += 1  # output ended in the middle of a line
    if raw:
        k, a = 0, 0
    else:
        m = PREFIX_RE.search(buf)
        if m is None:
            k, a = 10**9, 0  # nothing recognisable: everything counts as bad
        else:
            line_start = m.start()
            k = m.end() - line_start
            a = m.start(1) - line_start + 1
        # every output line has exactly one " | " (a data payload has none)
        res.prefix_errors = abs(buf.count(b" | ") - len(lines))
    length = k + LINE_LEN
    groups: dict[bytes, list[bytes]] = {key: [] for key in expected}
    get = groups.get
    other = []
    for line in lines:
        if len(line) == length:
            g = get(line[a : a + 2])
            if g is not None:
                g.append(line[k:])
                continue
        other.append(line)
    res.system = sum(1 for line in other if b"system" in line)
    res.bad += len(other) - res.system
    for key, exp in expected.items():
        got_lines = groups[key]
        got = b"\n".join(got_lines) + b"\n" if got_lines else b""
        if got == exp:
            res.ok += len(got_lines)
            continue
        want = exp.split(b"\n")
        want.pop()
        want_set = set(want)
        got_set = set(got_lines)
        valid = got_set & want_set
        invalid_occ = sum(1 for x in got_lines if x not in want_set)
        dup = len(got_lines) - invalid_occ - len(valid)
        res.bad += invalid_occ
        res.dup += dup
        res.missing += len(want_set) - len(valid)
        res.ok += len(valid)
        if not (invalid_occ or dup or len(valid) != len(want_set)):
            res.reordered += 1
    if res.ok > res.expected:  # cannot happen; guards the arithmetic above
        res.bad += res.ok - res.expected
    return res


# ---------------------------------------------------------------------------
# markdown
# ---------------------------------------------------------------------------


def table(headers: list[str], rows: list[list[object]]) -> list[str]:
    cells = [[str(c) for c in r] for r in rows]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in cells]
    return out


def fmt_int(n: float) -> str:
    return f"{n:,.0f}"


def fmt(x: float | None, digits: int = 1) -> str:
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "n/a"
    return f"{a / b:,.2f}×" if a / b < 10 else f"{a / b:,.0f}×"


def median(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# ---------------------------------------------------------------------------
# the benchmark
# ---------------------------------------------------------------------------


@dataclass
class Config:
    quick: bool
    reps: int
    tp_seconds: float  # target duration of a corral throughput run
    honcho_seconds: float
    procs: tuple[int, ...] = (1, 4, 16)
    lat_samples: int = 300
    idle_seconds: float = 10.0
    start_reps: int = 5
    stop_reps: int = 5
    slow_seconds: float = 5.0
    slow_stop: float = 10.0  # how long a runner may take to exit after the slow window
    many: int = 200


@dataclass
class TpResult:
    label: str
    procs: int
    lines: int
    nbytes: int
    seconds: float | None
    check: Check
    cpu: float | None = None
    hwm_kb: int | None = None  # runner's own peak RSS
    sum_rss_kb: int | None = None  # runner + python helpers
    helpers: int = 0
    steady: float | None = None  # seconds from the first output to the last line

    @property
    def rate(self) -> float | None:
        return self.lines / self.seconds if self.seconds else None

    @property
    def steady_rate(self) -> float | None:
        return self.lines / self.steady if self.steady else None

    @property
    def mbps(self) -> float | None:
        return self.nbytes / self.seconds / 1e6 if self.seconds else None


@dataclass
class Bench:
    cfg: Config
    work: Work
    corral: Runner
    honcho: Runner
    runners: list[Runner] = field(default_factory=list)
    out: list[str] = field(default_factory=list)
    summary: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.runners = [self.corral, self.honcho]

    # -- 1. throughput ---------------------------------------------------------

    def tp_runner(
        self, runner: Runner, n: int, count: int, expected: dict[bytes, bytes]
    ) -> TpResult:
        files = [self.work.payload(p, count) for p in range(n)]
        d = self.work.dir(
            f"tp-{runner.name}-{n}",
            [(f"w{p:02d}", f"cat {files[p]}; exec {SLEEP}") for p in range(n)],
        )
        total = n * count
        pr = Proc(runner.argv(), d, f"{runner.name}-tp{n}")
        sampler = Sampler(pr.pid)
        try:
            hard = 120.0 if runner is self.corral else 90.0
            done = pr.pump(
                lambda: pr.nlines - pr.nsystem >= total, hard, stall=5.0, sampler=sampler
            )
            seconds = pr.t_last - pr.t0 if done else None
            steady = pr.t_last - pr.t_first if done else None
            sampler()
            cpu = sum(cpu_seconds(p) for p in runner_procs(pr.pid))
            pr.stop(timeout=3)
        finally:
            pr.close()
        if not done:
            log(f"  {runner.name} n={n}: incomplete ({pr.nlines} lines) {pr.stderr_tail()}")
        check = verify(pr.output(), expected, raw=False)
        return TpResult(
            runner.name,
            n,
            total,
            total * 100,
            seconds,
            check,
            cpu,
            sampler.runner_hwm_kb,
            sampler.sum_rss_kb,
            sampler.helpers,
            steady,
        )

    def tp_baseline(self, kind: str, n: int, count: int, expected: dict[bytes, bytes]) -> TpResult:
        files = [self.work.payload(p, count) for p in range(n)]
        parts = []
        for p, f in enumerate(files):
            prefix = f"w{p:02d}.1 | "
            if kind == "direct":
                parts.append(f"cat {f} &")
            elif kind == "sed-L":
                parts.append(f"cat {f} | stdbuf -oL sed 's/^/{prefix}/' &")
            else:
                parts.append(f"cat {f} | sed 's/^/{prefix}/' &")
        d = self.work.dir(f"tp-{kind}-{n}")
        pr = Proc(["sh", "-c", " ".join(parts) + " wait"], d, f"{kind}-tp{n}")
        try:
            done = pr.pump(lambda: pr.eof and pr.exited, 120.0, stall=5.0)
            seconds = pr.t_last - pr.t0 if done else None
            steady = pr.t_last - pr.t_first if done else None
        finally:
            pr.close()
        check = verify(pr.output(), expected, raw=kind == "direct")
        return TpResult(kind, n, n * count, n * count * 100, seconds, check, steady=steady)

    def throughput(self) -> None:
        cfg = self.cfg
        rows = []
        self.tp: dict[tuple[str, int], TpResult] = {}
        for n in cfg.procs:
            # pilots: size the real runs so each takes about the target time
            counts = {}
            for runner, pilot_total, target, lo, hi in (
                (self.corral, 200_000, cfg.tp_seconds, 20_000, 8_000_000),
                (self.honcho, 6_000, cfg.honcho_seconds, 2_000, 400_000),
            ):
                per = max(pilot_total // n, 100)
                exp = {b"%02d" % p: self.work.payload(p, per).read_bytes() for p in range(n)}
                res = self.tp_runner(runner, n, per, exp)
                rate = res.steady_rate or res.rate or 1000.0  # start-up excluded
                total = min(max(rate * target, lo), hi)
                counts[runner.name] = max(int(total / n) // 100 * 100, 100)
                log(
                    f"pilot {runner.name} n={n}: {fmt_int(rate)} lines/s"
                    f" -> {counts[runner.name]} lines per process"
                )
            self.work.drop_payloads()
            results: dict[str, list[TpResult]] = {}
            c_count = counts[self.corral.name]
            exp = {b"%02d" % p: self.work.payload(p, c_count).read_bytes() for p in range(n)}
            for rep in range(cfg.reps):
                for kind in ("corral", "sed-L", "sed-block", "direct"):
                    if kind == "corral":
                        r = self.tp_runner(self.corral, n, c_count, exp)
                    else:
                        r = self.tp_baseline(kind, n, c_count, exp)
                    results.setdefault(kind, []).append(r)
                    log(
                        f"  n={n} rep={rep} {kind}: {fmt_int(r.rate or 0)} lines/s,"
                        f" intact={r.check.describe()}"
                    )
            del exp
            self.work.drop_payloads()
            h_count = counts[self.honcho.name]
            exp = {b"%02d" % p: self.work.payload(p, h_count).read_bytes() for p in range(n)}
            r = self.tp_runner(self.honcho, n, h_count, exp)
            log(f"  n={n} honcho: {fmt_int(r.rate or 0)} lines/s, intact={r.check.describe()}")
            results["honcho"] = [r]
            del exp
            self.work.drop_payloads()

            def summarise(kind: str, results: dict = results, n: int = n) -> TpResult:
                rs = results[kind]
                rates = [x.rate for x in rs if x.rate]
                med = median(rates)
                pick = min(rs, key=lambda x: abs((x.rate or 0) - (med or 0)))
                check = Check()
                for x in rs:
                    check = check.merge(x.check)
                hwm = max((x.hwm_kb or 0) for x in rs) or None
                srss = max((x.sum_rss_kb or 0) for x in rs) or None
                return TpResult(
                    kind,
                    n,
                    pick.lines,
                    pick.nbytes,
                    pick.seconds,
                    check,
                    pick.cpu,
                    hwm,
                    srss,
                    max(x.helpers for x in rs),
                    pick.steady,
                )

            s = {k: summarise(k) for k in results}
            for k in s:
                self.tp[(k, n)] = s[k]
            h_rate = s["honcho"].rate
            sedl_rate = s["sed-L"].rate
            labels = {
                "corral": "**corral**",
                "honcho": "honcho",
                "direct": "direct pipe (no prefix)",
                "sed-L": "sed -oL prefixer",
                "sed-block": "sed block-buffered",
            }
            for k in ("corral", "honcho", "direct", "sed-L", "sed-block"):
                r = s[k]
                runs = len(results[k])
                mem = "–"
                if k == "corral" and r.hwm_kb:
                    mem = fmt(r.hwm_kb / 1024)
                elif k == "honcho" and r.hwm_kb:
                    mem = f"{fmt(r.hwm_kb / 1024)} / {fmt((r.sum_rss_kb or 0) / 1024)}"
                rows.append(
                    [
                        n,
                        labels[k],
                        fmt_int(r.lines),
                        fmt(r.seconds, 2),
                        fmt_int(r.rate or 0),
                        fmt(r.mbps),
                        fmt_int(r.steady_rate or 0),
                        ratio(r.rate, h_rate),
                        ratio(r.rate, sedl_rate),
                        r.check.describe() + (f" ({runs} runs)" if runs > 1 else ""),
                        fmt(r.cpu, 2) if r.cpu is not None else "–",
                        mem,
                    ]
                )
        self.out += ["## 1. Throughput (100-byte lines, end to end)", ""]
        self.out += table(
            [
                "procs",
                "path",
                "lines",
                "s",
                "lines/s",
                "MB/s",
                "steady lines/s",
                "× honcho",
                "× sed -oL",
                "every line intact?",
                "runner CPU s",
                "runner peak RSS MB",
            ],
            rows,
        )
        self.out += [
            "",
            f"Median of {cfg.reps} run(s) for corral and the baselines (same line count), one run"
            " for honcho (fewer lines: it is ~100× slower). Time = exec of the runner → last"
            " expected line read by the harness; lines/s, MB/s and the ratios use that time."
            " *steady lines/s*: first output read → last line (start-up excluded)."
            " *runner CPU s*: utime+stime of the runner"
            " (honcho: main + helper processes) until then. *peak RSS*: VmHWM of the runner"
            " (honcho: main / sampled sum over main + helpers). Intact = every line exactly once,"
            " in order per process, unsplit, with the right prefix, over all runs.",
            "",
        ]
        for n in cfg.procs:
            c, h, sl = self.tp[("corral", n)], self.tp[("honcho", n)], self.tp[("sed-L", n)]
            self.summary[f"tp_vs_honcho_{n}"] = (c.rate or 0) / (h.rate or 1)
            self.summary[f"tp_vs_sedL_{n}"] = (c.rate or 0) / (sl.rate or 1)
            self.summary[f"tp_intact_{n}"] = c.check.intact and h.check.intact

    # -- 2. latency -------------------------------------------------------------

    def latency(self) -> None:
        n = self.cfg.lat_samples
        d = self.work.dir("lat")
        script = d / "lat.py"
        script.write_text(
            "import os, sys, time\n"
            "for i in range(int(sys.argv[1])):\n"
            "    os.write(1, b'lat %d %d\\n' % (i, time.monotonic_ns()))\n"
            "    time.sleep(0.01)\n"
        )
        py = sys.executable
        child = f"{py} {script} {n}"
        (d / "Procfile").write_text(f"lat: {child}; exec {SLEEP}\n")
        paths = [
            ("direct", "direct pipe (no runner)", ["sh", "-c", f"exec {child}"]),
            ("sedL", "sed -oL prefixer", ["sh", "-c", f"{child} | stdbuf -oL sed 's/^/lat.1 | /'"]),
            ("corral", "**corral**", self.corral.argv()),
            ("honcho", "honcho", self.honcho.argv()),
        ]
        rows = []
        lat_re = re.compile(rb"lat (\d+) (\d+)\n")
        for key, label, argv in paths:
            samples: list[int] = []
            tail = [b""]

            def on_chunk(
                data: bytes, t: int, samples: list[int] = samples, tail: list[bytes] = tail
            ) -> None:
                buf = tail[0] + data
                cut = buf.rfind(b"\n") + 1
                tail[0] = buf[cut:]
                for m in lat_re.finditer(buf, 0, cut):
                    samples.append(t - int(m.group(2)))

            pr = Proc(argv, d, f"{key}-lat", keep=False, on_chunk=on_chunk)
            try:
                pr.pump(lambda s=samples: len(s) >= n, n * 0.01 * 3 + 15, stall=5.0)
                pr.stop(timeout=3)
            finally:
                pr.close()
            body = sorted(samples[10:])  # the first few include the child's warm-up
            if not body:
                rows.append([label, 0, "n/a", "n/a", "n/a"])
                continue
            p50 = body[len(body) // 2] / 1000
            p99 = body[min(len(body) - 1, int(len(body) * 0.99))] / 1000
            rows.append([label, len(body), fmt(p50, 0), fmt(p99, 0), fmt(body[-1] / 1000, 0)])
            self.summary[f"lat_{key}"] = (p50, p99)
            log(f"  latency {label}: p50 {p50:.0f} µs, p99 {p99:.0f} µs")
        self.out += ["## 2. Line latency (child write → reader receipt)", ""]
        self.out += table(["path", "samples", "p50 µs", "p99 µs", "max µs"], rows)
        self.out += [
            "",
            "One child writes `lat <seq> <monotonic_ns>` every 10 ms with one `write()`; the"
            " harness stamps each read with `time.monotonic_ns()` (same clock). The first 10"
            " samples are dropped. The direct pipe row is the floor (harness wake-up + Python).",
            "",
        ]

    # -- 3. idle ------------------------------------------------------------------

    def idle(self) -> None:
        window = self.cfg.idle_seconds
        rows = []
        procs: dict[str, Proc] = {}
        try:
            for runner in self.runners:
                d = self.work.dir(f"idle-{runner.name}", [(f"s{i}", SLEEP) for i in range(4)])
                procs[runner.name] = Proc(runner.argv(), d, f"{runner.name}-idle", keep=False)
            for name, pr in procs.items():
                if not pr.pump(lambda pr=pr: pr.nsystem >= 4, 30.0):
                    raise Timeout(f"{name} did not start 4 processes: {pr.stderr_tail()}")
            # settle, then both runners are measured over the same window
            end = time.perf_counter() + 1.0
            while time.perf_counter() < end:
                for pr in procs.values():
                    pr.step(0.05)
            before = {}
            for name, pr in procs.items():
                ps = runner_procs(pr.pid)
                before[name] = (ps, {p: (cpu_seconds(p), ctx_switches(p)) for p in ps})
            t0 = time.perf_counter()
            end = t0 + window
            while time.perf_counter() < end:
                for pr in procs.values():
                    pr.step(min(0.05, max(0.0, end - time.perf_counter())))
            elapsed = time.perf_counter() - t0
            for name in procs:
                ps, b = before[name]
                after = {p: (cpu_seconds(p), ctx_switches(p)) for p in ps}
                st = {p: status(p) for p in ps}
                groups = [("runner process", ps[:1])]
                if len(ps) > 1:
                    groups.append((f"runner + {len(ps) - 1} python helpers", ps))
                for what, members in groups:
                    cpu = sum(after[p][0] - b[p][0] for p in members)
                    csw = sum(after[p][1] - b[p][1] for p in members)
                    threads = sum(st[p].get("Threads", 0) for p in members)
                    rss = sum(st[p].get("VmRSS", 0) for p in members) / 1024
                    label = "**corral**" if name == "corral" else name
                    rows.append(
                        [
                            label,
                            what,
                            threads,
                            fmt(cpu, 3),
                            fmt(100 * cpu / elapsed, 2),
                            csw,
                            fmt(csw / elapsed, 2),
                            fmt(rss),
                        ]
                    )
                    self.summary[f"idle_{name}_{len(members)}"] = (csw / elapsed, cpu, rss)
                self.summary[f"idle_wakeups_{name}"] = (
                    sum(after[p][1] - b[p][1] for p in ps[:1]) / elapsed
                )
                self.summary[f"idle_rss_{name}"] = st[ps[0]].get("VmRSS", 0) / 1024
                log(f"  idle {name}: {rows[-1]}")
        finally:
            for pr in procs.values():
                with contextlib.suppress(Exception):
                    pr.stop(timeout=5)
                pr.close()
        self.out += [f"## 3. Idle cost (4 `sleep` children, {window:.0f} s window)", ""]
        self.out += table(
            [
                "runner",
                "measured",
                "threads",
                "CPU s",
                "CPU %",
                "context switches",
                "wakeups/s",
                "RSS MB",
            ],
            rows,
        )
        self.out += [
            "",
            "CPU = Δ(utime+stime) from /proc/PID/stat; context switches = Δ(voluntary +"
            " nonvoluntary) summed over every thread (/proc/PID/task/TID/status); for an idle"
            " process each one is a wake-up. Both runners were measured over the same window.",
            "",
        ]

    # -- 4. start-up ------------------------------------------------------------

    def startup(self) -> None:
        rows = []
        cases: list[tuple[str, str, int, Callable[[Path], list[str]]]] = []
        cases.append(
            ("direct", "direct `sh -c 'echo up'` (no runner)", 1, lambda d: ["sh", "-c", "echo up"])
        )
        for runner in self.runners:
            for n in (1, 50):
                cases.append((runner.name, runner.name, n, lambda d, runner=runner: runner.argv()))
        for key, label, n, argv_of in cases:
            d = self.work.dir(
                f"start-{key}-{n}",
                [(f"u{i:02d}", f"echo up; exec {SLEEP}") for i in range(n)],
            )
            firsts, alls = [], []
            for rep in range(self.cfg.start_reps):
                ups = [0]
                first: list[float] = []

                def on_chunk(
                    data: bytes, t: int, ups: list[int] = ups, first: list[float] = first
                ) -> None:
                    k = data.count(b"up\n")
                    if k and not first:
                        first.append(time.perf_counter())
                    ups[0] += k

                pr = Proc(argv_of(d), d, f"{key}-start-{rep}", keep=False, on_chunk=on_chunk)
                try:
                    ok = pr.pump(lambda ups=ups, n=n: ups[0] >= n, 90.0)
                    if ok:
                        firsts.append(first[0] - pr.t0)
                        alls.append(pr.t_last - pr.t0)
                    pr.stop(timeout=3)
                finally:
                    pr.close()
            name = "**corral**" if label == "corral" else label
            f_med, a_med = median(firsts), median(alls)
            rows.append(
                [
                    name,
                    n,
                    fmt(f_med and f_med * 1000, 1),
                    fmt(firsts and min(firsts) * 1000, 1),
                    fmt(a_med and a_med * 1000, 1),
                    len(firsts),
                ]
            )
            self.summary[f"start_{key}_{n}"] = (f_med, a_med)
            log(
                f"  start-up {label} n={n}: first {fmt(f_med and f_med * 1000)} ms,"
                f" all {fmt(a_med and a_med * 1000)} ms"
            )
        self.out += ["## 4. Start-up (exec → child output)", ""]
        self.out += table(
            [
                "runner",
                "procs",
                "first child line ms (median)",
                "(best)",
                "all children's lines ms (median)",
                "runs",
            ],
            rows,
        )
        self.out += ["", "Children run `echo up; exec sleep 600`.", ""]

    # -- 5. shutdown --------------------------------------------------------------

    def shutdown(self) -> None:
        rows = []
        for runner in self.runners:
            d = self.work.dir(f"stop-{runner.name}", [(f"s{i}", SLEEP) for i in range(4)])
            times: list[float] = []
            leftovers = 0
            codes = set()
            for rep in range(self.cfg.stop_reps):
                pr = Proc(runner.argv(), d, f"{runner.name}-stop-{rep}", keep=False)
                try:
                    if not pr.pump(lambda pr=pr: pr.nsystem >= 4, 30.0):
                        raise Timeout(f"{runner.name} did not start: {pr.stderr_tail()}")
                    end = time.perf_counter() + 0.3
                    while time.perf_counter() < end:
                        pr.step(0.05)
                    dt = pr.stop(timeout=20)
                    if dt is not None:
                        times.append(dt)
                    codes.add(pr.status)
                    time.sleep(0.2)
                    leftovers += len(live_descendants())
                finally:
                    pr.close()
            name = "**corral**" if runner is self.corral else runner.name
            med = median(times)
            rows.append(
                [
                    name,
                    fmt(med and med * 1000, 1),
                    fmt(times and max(times) * 1000, 1),
                    f"{len(times)}/{self.cfg.stop_reps}",
                    leftovers,
                    ", ".join(str(c) for c in sorted(codes, key=str)),
                ]
            )
            self.summary[f"stop_{runner.name}"] = med
            log(f"  shutdown {runner.name}: {rows[-1]}")
        self.out += ["## 5. Shutdown (SIGTERM → runner exit, 4 `sleep` children)", ""]
        self.out += table(
            ["runner", "median ms", "max ms", "clean exits", "processes left behind", "exit codes"],
            rows,
        )
        self.out += [
            "",
            "Exit is observed with a pidfd, so the time is exact; *left behind* counts"
            " non-zombie descendants still alive 0.2 s after the runner exited (the harness is a"
            " subreaper, so escapees come back to it and are then killed).",
            "",
        ]

    # -- 6. memory ----------------------------------------------------------------

    def memory(self) -> None:
        rows = []
        for runner in self.runners:
            r = getattr(self, "tp", {}).get((runner.name, 4))
            if r is not None:
                rows.append(
                    [
                        "**corral**" if runner is self.corral else runner.name,
                        "fast reader, 4 procs (§1)",
                        fmt_int(r.lines),
                        fmt(r.seconds, 2),
                        fmt((r.hwm_kb or 0) / 1024),
                        fmt((r.sum_rss_kb or 0) / 1024) if r.helpers else "no helpers",
                        "–",
                        "–",
                    ]
                )
        per = 250_000
        files = [self.work.payload(p, per) for p in range(4)]
        for runner in self.runners:
            d = self.work.dir(
                f"slow-{runner.name}",
                [(f"w{p:02d}", f"cat {files[p]}; exec {SLEEP}") for p in range(4)],
            )
            pr = Proc(runner.argv(), d, f"{runner.name}-slow", keep=False)
            sampler = Sampler(pr.pid, pss=True)
            try:
                t0 = time.perf_counter()
                pr.pump(
                    lambda pr=pr: pr.nlines - pr.nsystem >= 4 * per,
                    self.cfg.slow_seconds,
                    sampler=sampler,
                    every=0.1,
                    slow=(65536, 0.01),
                )
                elapsed = time.perf_counter() - t0
                sampler()
                got = pr.nlines - pr.nsystem
                dt = pr.stop(timeout=self.cfg.slow_stop, retry=False)
            finally:
                pr.close()
            name = "**corral**" if runner is self.corral else runner.name
            rows.append(
                [
                    name,
                    "slow reader: 64 KiB / 10 ms, 4 procs",
                    fmt_int(got),
                    fmt(elapsed, 2),
                    fmt(sampler.runner_hwm_kb / 1024),
                    fmt(sampler.sum_rss_kb / 1024) if sampler.helpers else "no helpers",
                    fmt(sampler.sum_pss_kb / 1024),
                    fmt(dt, 2) if dt is not None else f"> {self.cfg.slow_stop:.0f} (SIGKILLed)",
                ]
            )
            self.summary[f"slow_hwm_{runner.name}"] = sampler.runner_hwm_kb / 1024
            self.summary[f"slow_sum_{runner.name}"] = sampler.sum_rss_kb / 1024
            log(f"  memory {runner.name}: {rows[-1]}")
        self.work.drop_payloads()
        self.out += ["## 6. Peak memory", ""]
        self.out += table(
            [
                "runner",
                "scenario",
                "lines read",
                "s",
                "runner peak RSS MB (VmHWM)",
                "runner + python helpers, peak RSS sum MB",
                "… peak PSS sum MB",
                "then SIGTERM → exit s",
            ],
            rows,
        )
        self.out += [
            "",
            f"The slow reader lasts {self.cfg.slow_seconds:.0f} s while 4 producers try to write"
            f" {4 * per:,} lines (100 MB): a runner with backpressure stays flat, one without it"
            " queues the difference. RSS/PSS sums are sampled every 100 ms (RSS double-counts"
            " pages shared after fork; PSS does not). The last column: how long the runner"
            " takes to exit when stopped at the end of that window.",
            "",
        ]

    # -- 7. many processes ----------------------------------------------------------

    def many(self) -> None:
        n = self.cfg.many
        rows = []
        for runner in self.runners:
            d = self.work.dir(
                f"many-{runner.name}", [(f"n{i:03d}", f"echo up; exec {SLEEP}") for i in range(n)]
            )
            ups = [0]

            def on_chunk(data: bytes, t: int, ups: list[int] = ups) -> None:
                ups[0] += data.count(b"up\n")

            pr = Proc(runner.argv(), d, f"{runner.name}-many", keep=False, on_chunk=on_chunk)
            try:
                ok = pr.pump(lambda ups=ups: ups[0] >= n, 120.0)
                t_all = pr.t_last - pr.t0 if ok else None
                end = time.perf_counter() + 0.5
                while time.perf_counter() < end:
                    pr.step(0.05)
                everything = tree(pr.pid)
                pys = runner_procs(pr.pid)
                st = {p: status(p) for p in pys}
                threads = sum(s.get("Threads", 0) for s in st.values())
                rss = sum(s.get("VmRSS", 0) for s in st.values()) / 1024
                pss = sum(pss_kb(p) for p in pys) / 1024
                dt = pr.stop(timeout=60)
            finally:
                pr.close()
            name = "**corral**" if runner is self.corral else runner.name
            rows.append(
                [
                    name,
                    len(everything) - 1,
                    len(pys) - 1,
                    threads,
                    fmt(rss),
                    fmt(pss),
                    fmt(t_all, 2),
                    fmt(dt, 2),
                ]
            )
            self.summary[f"many_helpers_{runner.name}"] = len(pys) - 1
            self.summary[f"many_rss_{runner.name}"] = rss
            log(f"  many {runner.name}: {rows[-1]}")
        self.out += [f"## 7. {n} processes (`echo up; exec sleep 600` each)", ""]
        self.out += table(
            [
                "runner",
                "processes under the runner",
                "of which python helpers",
                "threads (runner + helpers)",
                "RSS MB (runner + helpers)",
                "PSS MB (same)",
                f"exec → all {n} lines s",
                "SIGTERM → exit s",
            ],
            rows,
        )
        self.out += [""]


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def environment(corral: Runner, honcho: Runner) -> list[str]:
    def version(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as exc:
            return f"? ({exc})"

    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    rev = version(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = version(["git", "-C", str(REPO), "status", "--porcelain", "--", "src"])
    return [
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()},"
        f" Python {platform.python_version()}",
        f"- corral: {version([corral.exe, 'version'])}"
        f" (git {rev}{', src modified' if dirty else ''})",
        f"- honcho: {version([honcho.exe, '--version'])}",
        "- both run as `<runner> start --no-colour` with stdout on a pipe read by the harness"
        " (default 64 KiB pipe); default output format `HH:MM:SS name.1 | line`; both load"
        " cached bytecode (one scratch PYTHONPYCACHEPREFIX, warmed before measuring)",
    ]


def targets(b: Bench) -> list[str]:
    s = b.summary
    rows = []

    def add(what: str, target: str, value: str, ok: bool | None) -> None:
        rows.append([what, target, value, "n/a" if ok is None else ("PASS" if ok else "FAIL")])

    if "tp_vs_honcho_4" in s:
        v = float(s["tp_vs_honcho_4"])  # type: ignore[arg-type]
        add("throughput vs honcho, 4 procs", "≥ 50×", f"{v:,.0f}×", v >= 50)
        v = float(s["tp_vs_sedL_4"])  # type: ignore[arg-type]
        add("throughput vs `stdbuf -oL sed` prefixer, 4 procs", "≥ 1.00×", f"{v:.2f}×", v >= 1.0)
        for n in b.cfg.procs:
            add(
                f"every line intact, {n} procs (corral and honcho)",
                "yes",
                str(s.get(f"tp_intact_{n}")),
                bool(s.get(f"tp_intact_{n}")),
            )
    if "idle_wakeups_corral" in s:
        v = float(s["idle_wakeups_corral"])  # type: ignore[arg-type]
        add("corral idle wakeups/s (4 sleeping children)", "< 1/s", f"{v:.2f}", v < 1)
    rss = [float(s[k]) for k in ("idle_rss_corral",) if k in s]  # type: ignore[arg-type]
    c4 = getattr(b, "tp", {}).get(("corral", 4))
    if c4 and c4.hwm_kb:
        rss.append(c4.hwm_kb / 1024)
    if "slow_hwm_corral" in s:
        rss.append(float(s["slow_hwm_corral"]))  # type: ignore[arg-type]
    if rss:
        add(
            "corral RSS (max of idle, 4-proc throughput peak, slow reader peak)",
            "< 18 MB",
            f"{max(rss):.1f} MB",
            max(rss) < 18,
        )
    if "many_helpers_corral" in s:
        v = int(s["many_helpers_corral"])  # type: ignore[call-overload]
        add(f"helper processes for {b.cfg.many} children", "0", str(v), v == 0)
    if not rows:
        return []
    return ["## Targets", "", *table(["target", "goal", "measured", ""], rows), ""]


def render(b: Bench, env: list[str], errors: list[str], elapsed: float) -> str:
    mode = "quick smoke run" if b.cfg.quick else "full run"
    lines = [f"# corral vs honcho benchmark ({mode}, {elapsed:.0f} s)", "", *env, ""]
    lines += targets(b)
    lines += b.out
    if LOST_SIGNALS:
        lost = ", ".join(f"{k}: {v}" for k, v in sorted(LOST_SIGNALS.items()))
        lines += [
            "## Notes",
            "",
            "- SIGTERMs after which the runner had not exited within the stop timeout (then"
            f" re-sent, then SIGKILL), over the whole run: {lost}.",
            "",
        ]
    if errors:
        lines += ["## Errors", "", *[f"- {e}" for e in errors], ""]
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------
# profiling helper: corral under cProfile on the 4-process throughput workload
# ---------------------------------------------------------------------------


def profile(work: Work, corral: Runner, n: int, count: int) -> str:
    py = str(Path(corral.exe).parent / "python")
    out = work.root / "corral.prof"
    files = [work.payload(p, count) for p in range(n)]
    d = work.dir("profile", [(f"w{p:02d}", f"cat {files[p]}; exec {SLEEP}") for p in range(n)])
    argv = [py, "-m", "cProfile", "-o", str(out), "-m", "corral", "start", "--no-colour"]
    pr = Proc(argv, d, "corral-profile", keep=False)
    try:
        pr.pump(lambda: pr.nlines - pr.nsystem >= n * count, 120.0, stall=5.0)
        seconds = pr.t_last - pr.t0
        pr.stop(timeout=20)
    finally:
        pr.close()
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(str(out), stream=buf).sort_stats("tottime").print_stats(25)
    rate = n * count / seconds
    return (
        f"under cProfile: {n * count:,} lines in {seconds:.2f} s ({rate:,.0f} lines/s)\n"
        + buf.getvalue()
    )


# ---------------------------------------------------------------------------


def find_exe(name: str, given: str | None) -> str:
    if given:
        return given
    local = REPO / ".venv" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench: cannot find {name!r}; pass --{name}")
    return found


SECTIONS = ("throughput", "latency", "idle", "startup", "shutdown", "memory", "many")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="corral vs honcho benchmark")
    ap.add_argument("--quick", action="store_true", help="~1 minute smoke run")
    ap.add_argument("--write", action="store_true", help="also write bench/results.md")
    ap.add_argument("--only", metavar="S[,S]", help=f"sections: {','.join(SECTIONS)}")
    ap.add_argument("--reps", type=int, help="runs per throughput measurement (median)")
    ap.add_argument("--corral", help="corral executable (default: .venv/bin/corral)")
    ap.add_argument("--honcho", help="honcho executable (default: .venv/bin/honcho)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="only run corral under cProfile on the 4-process workload",
    )
    args = ap.parse_args(argv)

    if args.quick:
        cfg = Config(
            quick=True,
            reps=1,
            tp_seconds=0.6,
            honcho_seconds=0.8,
            lat_samples=100,
            idle_seconds=3.0,
            start_reps=2,
            stop_reps=2,
            slow_seconds=2.0,
            slow_stop=3.0,
        )
    else:
        cfg = Config(quick=False, reps=3, tp_seconds=1.5, honcho_seconds=2.0)
    if args.reps:
        cfg.reps = args.reps
    only = SECTIONS if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown section(s): {', '.join(sorted(unknown))}")

    corral = Runner("corral", find_exe("corral", args.corral))
    honcho = Runner("honcho", find_exe("honcho", args.honcho))
    become_subreaper()

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def on_alarm(signum: int, frame: object) -> None:
        raise Timeout("overall time limit reached")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(300 if cfg.quick else 1200)

    work = Work(keep=args.keep)
    global PYCACHE
    PYCACHE = work.root / "pycache"
    started = time.perf_counter()
    try:
        for exe, flag in ((corral.exe, "version"), (honcho.exe, "--version")):
            # warm the bytecode cache (see runner_env)
            subprocess.run([exe, flag], env=runner_env(), capture_output=True, timeout=60)
        if args.profile:
            print(profile(work, corral, 4, 500_000))
            return 0
        env = environment(corral, honcho)
        bench = Bench(cfg, work, corral, honcho)
        errors: list[str] = []
        for name in SECTIONS:
            if name not in only:
                continue
            log(f"{name} ...")
            try:
                getattr(bench, name)()
            except (KeyboardInterrupt, Timeout) as exc:
                errors.append(f"{name}: interrupted ({exc})")
                cleanup_all()
                if isinstance(exc, KeyboardInterrupt) or "overall" in str(exc):
                    break
            except Exception:
                errors.append(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}")
                traceback.print_exc()
                cleanup_all()
        report = render(bench, env, errors, time.perf_counter() - started)
        print(report)
        if args.write:
            (HERE / "results.md").write_text(report)
            log(f"wrote {HERE / 'results.md'}")
        return 1 if errors else 0
    finally:
        signal.alarm(0)
        cleanup_all()
        work.remove()


if __name__ == "__main__":
    sys.exit(main())
