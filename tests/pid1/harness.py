"""Run the installed corral as PID 1 of a fresh PID namespace, or as a plain
process (then it is a child subreaper), and look at the processes it leaves.

Modes
    pid1       `unshare --pid --fork --mount-proc gate.py ... corral ...`:
               corral is the child of the `unshare` process, PID 1 inside; we
               address it by its pid in *our* namespace (signals from an
               ancestor namespace reach a namespace init only if it has a
               handler).  The gate (helpers/gate.py) holds that child back
               until we have found its pid, then execs corral in place, so a
               corral that exits at once is never missed.
    subreaper  corral started directly; it must register itself with
               PR_SET_CHILD_SUBREAPER so orphans come back to it.

Every corral started here carries a unique token in its environment
(`PID1TEST_TOKEN`); every process it starts inherits it, so the clean-up can
find and SIGKILL anything left behind, whichever session, group or parent it
ended up in.  Tests must never leave a process behind, even when they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support import CORRAL, base_env, pids_with_env, wait_for

MODES = ("pid1", "subreaper")
TOKEN_VAR = "PID1TEST_TOKEN"
HELPERS = Path(__file__).parent / "helpers"
GATE = HELPERS / "gate.py"
PYTHON = sys.executable
UNSHARE = shutil.which("unshare")

# Generous upper bounds, never lower bounds: only there to fail instead of hang.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def _numbers(signums: Sequence[int]) -> str:
    return ",".join(str(int(s)) for s in signums)


def helper(name: str) -> str:
    """`python3 /abs/path/helpers/NAME.py` as a shell word list."""
    return f"{PYTHON} {HELPERS / name}"


# -- /proc ---------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    comm: str
    state: str
    ppid: int
    pgid: int
    sid: int
    starttime: int

    @property
    def key(self) -> tuple[int, int]:
        """Identity across samples: (pid, start time) survives pid reuse."""
        return (self.pid, self.starttime)


def read_stat(pid: int) -> Proc | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    comm = stat[stat.index("(") + 1 : stat.rfind(")")]
    fields = stat[stat.rfind(")") + 2 :].split()
    # fields[0] is field 3 (state); starttime is field 22
    return Proc(
        pid=pid,
        comm=comm,
        state=fields[0],
        ppid=int(fields[1]),
        pgid=int(fields[2]),
        sid=int(fields[3]),
        starttime=int(fields[19]),
    )


def all_procs() -> dict[int, Proc]:
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            p = read_stat(int(entry))
            if p is not None:
                procs[p.pid] = p
    return procs


def descendants(root: int, procs: dict[int, Proc] | None = None) -> list[Proc]:
    """Every process below `root` (not `root` itself), zombies included."""
    procs = all_procs() if procs is None else procs
    kids: dict[int, list[Proc]] = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p)
    found: list[Proc] = []
    todo = [root]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child.pid)
    return found


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def exists(pid: int) -> bool:
    """The pid is in the process table at all (a zombie counts)."""
    return read_stat(pid) is not None


def running(pid: int) -> bool:
    """The pid exists and is not a zombie."""
    p = read_stat(pid)
    return p is not None and p.state != "Z"


def pids_with_token(token: str) -> list[int]:
    """Processes carrying corral's token in their environment, zombies included."""
    return pids_with_env(TOKEN_VAR, token, zombies=True)


def pids_with_arg(marker: str) -> list[int]:
    """Live (non-zombie) processes with `marker` as one of their argv words.

    Whole words only: `sh -c "sleep 300.1 & ..."` (or corral's own argv in
    `corral run -- sh -c ...`) must not count as the `sleep 300.1` process.
    """
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and marker in cmdline(int(entry)) and running(int(entry)):
            found.append(int(entry))
    return found


def describe(pids: Iterable[int]) -> str:
    lines = []
    for pid in pids:
        p = read_stat(pid)
        state = f"{p.state} ppid={p.ppid} pgid={p.pgid} sid={p.sid}" if p else "gone"
        lines.append(f"  pid {pid} [{state}]: {' '.join(cmdline(pid))!r}")
    return "\n".join(lines) or "  (none)"


def sigmask_fields(status_text: str) -> dict[str, int]:
    """SigBlk/SigIgn/SigCgt/... of a /proc/PID/status text, as ints."""
    fields = {}
    for line in status_text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().rsplit(" ", 1)[-1]  # tolerate a `corral` line prefix
        if key in ("SigBlk", "SigIgn", "SigCgt", "SigPnd", "ShdPnd"):
            fields[key] = int(value.strip(), 16)
    return fields


def pending(pid: int) -> int:
    """The signals pending for the process (its own and its thread group's)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = sigmask_fields(f.read())
    except OSError:
        return 0
    return fields.get("SigPnd", 0) | fields.get("ShdPnd", 0)


def idle_in_loop(pid: int) -> bool:
    """The process sleeps in epoll_wait with no timeout: corral idle in its
    event loop, done with what woke it last and with no timer pending (a
    stopping corral always has one: the grace period)."""
    try:
        with open(f"/proc/{pid}/wchan") as f:
            wchan = f.read()
        with open(f"/proc/{pid}/syscall") as f:
            syscall = f.read().split()
    except OSError:
        return False
    # `NR arg1 ... arg6 sp pc` while blocked in a syscall; epoll_wait's
    # timeout (an int) is the fourth argument, -1 for "no timeout"
    if "epoll" not in wchan or len(syscall) < 5 or not syscall[4].startswith("0x"):
        return False
    return int(syscall[4], 16) & 0xFFFFFFFF == 0xFFFFFFFF


def sigset(*signums: int) -> int:
    mask = 0
    for s in signums:
        mask |= 1 << (s - 1)
    return mask


# -- launching -------------------------------------------------------------------


def _clean_signals(ignored: Sequence[int], blocked: Sequence[int]) -> Callable[[], None]:
    """preexec: the signal state corral starts with is exactly known.

    Every disposition default (whatever pytest's parent gave us, and Python's
    own SIGPIPE/SIGXFSZ ignores), then `ignored` set to SIG_IGN and exactly
    `blocked` blocked: this is the "launcher that sets SIGUSR2 to SIG_IGN and
    execs corral".
    """

    def hook() -> None:
        for num in range(1, signal.NSIG):
            if num in (signal.SIGKILL, signal.SIGSTOP):
                continue
            with contextlib.suppress(OSError, ValueError):
                signal.signal(num, signal.SIG_DFL)
        for num in ignored:
            signal.signal(num, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_SETMASK, list(blocked))

    return hook


class Corral:
    """One live corral (through `unshare` in pid1 mode)."""

    def __init__(
        self,
        mode: str,
        args: Sequence[str],
        *,
        cwd: Path | str,
        logdir: Path,
        env: dict[str, str] | None = None,
        stdin: object = subprocess.DEVNULL,
        stdout: object = None,
        stderr: object = None,
        ignored: Sequence[int] = (),
        blocked: Sequence[int] = (),
        foreign_proc: bool = False,
        preexec: Callable[[], None] | None = None,
        new_session: bool = True,
    ) -> None:
        assert CORRAL, "the corral command is not installed"
        assert mode in MODES, mode
        self.mode = mode
        self.token = uuid.uuid4().hex
        self.logdir = logdir
        tag = f"corral-{self.token[:8]}"
        self.out_path = logdir / f"{tag}.out"
        self.err_path = logdir / f"{tag}.err"
        self._files = []
        if stdout is None:
            stdout = self.out_path.open("wb")
            self._files.append(stdout)
        if stderr is None:
            stderr = self.err_path.open("wb")
            self._files.append(stderr)
        full_env = base_env(env)
        full_env[TOKEN_VAR] = self.token
        argv = [CORRAL, *args]
        pass_fds: tuple[int, ...] = ()
        go = -1
        if mode == "pid1":
            assert UNSHARE, "unshare(1) is required for the PID 1 tests and was not found"
            # the gate holds corral back until we know its pid (see _find_corral)
            wait_fd, go = os.pipe()
            pass_fds = (wait_fd,)
            argv = [
                PYTHON,
                str(GATE),
                str(wait_fd),
                _numbers(ignored),
                _numbers(blocked),
                "--",
                *argv,
            ]
            if foreign_proc:
                # corral is PID 1 of an inner namespace that has no /proc of
                # its own: /proc is the outer namespace's (whose PID 1, the
                # inner unshare, has children of its own)
                argv = [UNSHARE, "--pid", "--fork", *argv]
            argv = [UNSHARE, "--pid", "--fork", "--mount-proc", *argv]
        clean = _clean_signals(ignored, blocked)

        def hook() -> None:
            clean()
            if preexec is not None:
                preexec()

        try:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=full_env,
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                start_new_session=new_session,
                preexec_fn=hook,
                pass_fds=pass_fds,
            )
        finally:
            for fd in pass_fds:
                os.close(fd)
            for f in self._files:
                f.close()
        self.started_at = time.monotonic()
        self.pid = self._find_corral(go) if mode == "pid1" else self.popen.pid
        self.rc: int | None = None
        self.stopped_at: float | None = None

    def _find_corral(self, go: int) -> int:
        """The pid (in our namespace) of corral, below the `unshare` process.

        `unshare --fork` forks a child that execs the gate (helpers/gate.py),
        which waits until we close `go`.  So we find that child, check it is
        PID 1 inside, and only then let it exec corral (same pid): a corral
        that exits at once cannot be gone before we have seen it.  We return
        once the exec is done: a signal sent before that (while the pid is
        still `unshare`'s child or the gate, with default dispositions) would
        be dropped by the kernel, as for any namespace init without a handler.
        """
        u = self.popen.pid

        def unshare_alive() -> None:
            if self.popen.poll() is not None:
                raise AssertionError(
                    f"unshare exited with {self.popen.returncode} before corral started; "
                    f"stderr: {self.err()!r}"
                )

        def gate() -> int | None:
            for p in descendants(u):
                argv = cmdline(p.pid)
                if str(GATE) in argv and UNSHARE not in argv:
                    return p.pid
            unshare_alive()
            return None

        try:
            pid = wait_for(gate, timeout=START_TIMEOUT)
            assert isinstance(pid, int)
            with open(f"/proc/{pid}/status") as f:
                nspid = [line for line in f if line.startswith("NSpid:")]
            assert nspid and nspid[0].split()[-1] == "1", f"corral is not PID 1 inside: {nspid}"
        finally:
            os.close(go)  # the gate goes on (or, if we failed, gets EOF and is killed later)

        def execed() -> bool:
            argv = cmdline(pid)
            # corral (or already gone: it may exit at once, unshare then too)
            return (CORRAL in argv and str(GATE) not in argv) or not exists(pid)

        wait_for(execed, timeout=START_TIMEOUT)
        return pid

    # -- interaction --------------------------------------------------------

    @property
    def inner_pid(self) -> int:
        """corral's pid as its own children see it (getppid() of an adoptee)."""
        return 1 if self.mode == "pid1" else self.pid

    def kill(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def alive(self) -> bool:
        return self.popen.poll() is None and running(self.pid)

    def wait(self, timeout: float = STOP_TIMEOUT) -> int:
        """corral's exit code (through unshare in pid1 mode); fails after `timeout`."""
        try:
            self.rc = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"corral ({self.mode}) still running {timeout}s later; processes:\n"
                f"{describe([self.pid, *(p.pid for p in descendants(self.pid))])}\n"
                f"stdout: {self.out()!r}\nstderr: {self.err()!r}"
            ) from None
        self.stopped_at = time.monotonic()
        return self.rc

    def stop(self, signum: int = signal.SIGTERM, timeout: float = STOP_TIMEOUT) -> int:
        self.kill(signum)
        return self.wait(timeout)

    def out(self) -> str:
        try:
            return self.out_path.read_text(errors="replace")
        except OSError:
            return ""

    def err(self) -> str:
        try:
            return self.err_path.read_text(errors="replace")
        except OSError:
            return ""

    def tree(self) -> list[Proc]:
        return descendants(self.pid)

    def leftovers(self) -> list[int]:
        """Live processes started by this corral (token in environ), corral excluded."""
        skip = {self.pid, self.popen.pid}
        return [p for p in pids_with_token(self.token) if p not in skip and running(p)]

    # -- clean-up -----------------------------------------------------------

    def cleanup(self) -> None:
        """SIGKILL corral and everything carrying our token; reap unshare/corral."""
        if self.popen.poll() is None:
            for pid in (self.pid, self.popen.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            left = pids_with_token(self.token)
            if not left:
                break
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.02)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)


class CorralFactory:
    """The fixture object: `corral(mode, "start", ..., cwd=app)`; all cleaned up after."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.launched: list[Corral] = []

    def __call__(self, mode: str, *args: str, cwd: Path | str, **kw: object) -> Corral:
        c = Corral(mode, args, cwd=cwd, logdir=self.logdir, **kw)  # type: ignore[arg-type]
        self.launched.append(c)
        return c

    def cleanup(self) -> None:
        for c in self.launched:
            c.cleanup()


def read_lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except OSError:
        return []


def unique(prefix: str = "300") -> str:
    """A unique `sleep` argument, e.g. `300.48213`, to recognise a process by argv."""
    return f"{prefix}.{uuid.uuid4().int % 10**8:08d}"


# -- zombies -----------------------------------------------------------------------


@dataclass
class ZombieReport:
    samples: int = 0
    seen: int = 0  # zombie sightings (a zombie seen in two samples counts twice)
    persistent: list[Proc] | None = None  # zombies left unreaped by a sleeping parent
    adopted: int = 0  # distinct non-group-leader children of corral seen (orphans it adopted)

    def __post_init__(self) -> None:
        if self.persistent is None:
            self.persistent = []


class ZombieWatch:
    """Sample corral's process tree (every SAMPLE_INTERVAL) for zombies that
    their parent leaves unreaped.

    A zombie seen in one sample may be mid-reap, and under load its parent
    may not even have run since (runnable, waiting for a CPU): no time limit
    tells a slow reaper from a broken one.  The order of events does: a
    zombie seen in a sample, then its parent seen *sleeping* (state S: it
    has run since the exit woke it with SIGCHLD and gone back to sleep),
    then the zombie seen again: the parent had its chance and did not reap.
    """

    SAMPLE_INTERVAL = 0.2

    def __init__(self, c: Corral) -> None:
        self.c = c
        self.report = ZombieReport()
        self._prev: dict[tuple[int, int], Proc] = {}
        self._adopted: set[tuple[int, int]] = set()
        self._next = 0.0

    def sample(self) -> None:
        procs = all_procs()
        tree = descendants(self.c.pid, procs)
        zombies = {p.key: p for p in tree if p.state == "Z"}
        r = self.report
        r.samples += 1
        r.seen += len(zombies)
        for key, p in zombies.items():
            if key in self._prev and self._left_unreaped(p):
                assert r.persistent is not None
                r.persistent.append(p)
        self._prev = zombies
        for p in tree:
            # corral's own children lead their process group (start: new
            # session; run: setpgid): a child of corral that does not is an
            # orphan it adopted.
            if p.ppid == self.c.pid and p.pgid != p.pid:
                self._adopted.add(p.key)
        r.adopted = len(self._adopted)

    @staticmethod
    def _left_unreaped(zombie: Proc) -> bool:
        """Its parent sleeps now, and it is still the same zombie afterwards."""
        parent = read_stat(zombie.ppid)
        if parent is None or parent.state != "S":
            return False
        again = read_stat(zombie.pid)
        return again is not None and again.key == zombie.key and again.state == "Z"

    def run_for(self, seconds: float) -> ZombieReport:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.sample()
            time.sleep(self.SAMPLE_INTERVAL)
        return self.report

    def run_until(self, condition: Callable[[], object], timeout: float) -> ZombieReport:
        end = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > end:
                raise AssertionError(f"condition not met within {timeout}s")
            self.sample()
            time.sleep(self.SAMPLE_INTERVAL)
        return self.report
