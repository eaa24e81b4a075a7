"""reaper.py with a faked `os.waitpid` and a faked /proc: no real children."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import os
import signal
from collections.abc import Callable
from typing import NoReturn

import pytest

from corral import reaper


def exited(code: int) -> int:
    """A Linux wait status: exited with `code`."""
    return (code & 0xFF) << 8


def killed(signum: int, core: bool = False) -> int:
    """A Linux wait status: killed by `signum` (core dumped)."""
    return signum | (0x80 if core else 0)


Result = tuple[int, int] | BaseException


def fake_waitpid(monkeypatch: pytest.MonkeyPatch, results: list[Result]) -> list[tuple[int, int]]:
    """Make os.waitpid return (or raise) `results` in turn; returns its calls."""
    calls: list[tuple[int, int]] = []
    queue = list(results)

    def waitpid(pid: int, options: int) -> tuple[int, int]:
        calls.append((pid, options))
        result = queue.pop(0)
        if isinstance(result, BaseException):
            raise result
        return result

    monkeypatch.setattr(os, "waitpid", waitpid)
    return calls


def test_statuses_become_codes() -> None:
    assert reaper.exit_code(exited(0)) == 0
    assert reaper.exit_code(exited(3)) == 3
    assert reaper.exit_code(exited(255)) == 255
    assert reaper.exit_code(killed(signal.SIGKILL)) == 137
    assert reaper.exit_code(killed(signal.SIGTERM)) == 143
    assert reaper.exit_code(killed(signal.SIGSEGV, core=True)) == 139
    assert reaper.exit_code(killed(signal.SIGRTMIN)) == 128 + signal.SIGRTMIN


def test_reap_yields_until_pid_0(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_waitpid(
        monkeypatch,
        [(10, exited(0)), (11, exited(3)), (12, killed(signal.SIGTERM)), (0, 0), (13, 0)],
    )
    assert list(reaper.reap()) == [(10, 0), (11, 3), (12, 143)]
    assert calls == [(-1, os.WNOHANG)] * 4  # never blocks, stops at the first 0


def test_reap_ends_when_there_are_no_children(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_waitpid(monkeypatch, [(20, exited(1)), ChildProcessError(), (21, 0)])
    assert list(reaper.reap()) == [(20, 1)]
    assert len(calls) == 2
    fake_waitpid(monkeypatch, [ChildProcessError()])
    assert list(reaper.reap()) == []


def test_reap_is_lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    """One waitpid per child taken: the caller may act on each exit first."""
    calls = fake_waitpid(monkeypatch, [(30, 0), (31, 0), (0, 0)])
    it = reaper.reap()
    assert calls == []
    assert next(it) == (30, 0)
    assert len(calls) == 1


def test_eintr_surfaces_and_loses_no_child(monkeypatch: pytest.MonkeyPatch) -> None:
    """reap() does not catch InterruptedError: it reaches the caller.  (The
    real os.waitpid retries EINTR itself, PEP 475, so only a handler that
    raises gets here.)  No child is lost: the one not yet reaped is still a
    zombie, and the next reap() takes it."""
    fake_waitpid(monkeypatch, [(40, exited(2)), InterruptedError(), (41, exited(5)), (0, 0)])
    got: list[tuple[int, int]] = []
    with pytest.raises(InterruptedError):
        for item in reaper.reap():
            got.append(item)
    assert got == [(40, 2)]
    assert list(reaper.reap()) == [(41, 5)]


# -- children() with a fake /proc ---------------------------------------------------


class FakeProc:
    """`open` and `os.readlink`/`os.listdir`/`os.getpid` over a dict of files."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        files: dict[str, str],
        links: dict[str, str],
        pid: int = 500,
    ) -> None:
        self.files = files
        self.links = links
        self.opened: list[str] = []
        monkeypatch.setattr(reaper, "open", self.open, raising=False)
        monkeypatch.setattr(os, "readlink", self.readlink)
        monkeypatch.setattr(os, "listdir", self.listdir)
        monkeypatch.setattr(os, "getpid", lambda: pid)

    def open(self, path: str) -> io.StringIO:
        self.opened.append(path)
        if path not in self.files:
            raise FileNotFoundError(2, "No such file or directory", path)
        return io.StringIO(self.files[path])

    def readlink(self, path: str) -> str:
        if path not in self.links:
            raise FileNotFoundError(2, "No such file or directory", path)
        return self.links[path]

    def listdir(self, path: str) -> list[str]:
        assert path == "/proc"
        names = {p.split("/")[2] for p in self.files if p.count("/") >= 3}
        return sorted(names | {"self", "thread-self", "sys"})


OWN = {"/proc/self": "500", "/proc/thread-self": "500/task/500"}


def test_children_from_the_children_file(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = FakeProc(monkeypatch, {"/proc/thread-self/children": "12 34 \n"}, OWN)
    assert reaper.children() == [12, 34]
    assert proc.opened == ["/proc/thread-self/children"]


def test_no_children(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProc(monkeypatch, {"/proc/thread-self/children": ""}, OWN)
    assert reaper.children() == []


def test_children_through_a_foreign_proc_are_mapped_by_nspid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """/proc of another PID namespace: each pid is mapped through the last
    NSpid field; a process gone meanwhile is dropped; without NSpid (old
    kernel) the pid stays."""
    files = {
        "/proc/thread-self/children": "712 713 714",
        "/proc/712/status": "Name:\tsleep\nNSpid:\t712\t3\nPPid:\t1\n",
        "/proc/714/status": "Name:\told\nPid:\t714\n",
    }
    FakeProc(monkeypatch, files, {"/proc/self": "711", "/proc/thread-self": "711/task/711"}, pid=1)
    assert reaper.children() == [3, 714]


def test_unreadable_proc_self_counts_as_foreign(monkeypatch: pytest.MonkeyPatch) -> None:
    files = {
        "/proc/thread-self/children": "9",
        "/proc/9/status": "NSpid:\t9\t2\n",
    }
    FakeProc(monkeypatch, files, {}, pid=1)
    assert reaper.children() == [2]


def test_children_by_scanning_without_the_children_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """No `children` file (kernel without CONFIG_PROC_CHILDREN): every
    /proc/N/stat whose parent field is us; a command name with spaces and
    parentheses does not shift the fields."""
    files = {
        "/proc/100/stat": "100 (sleep) S 500 100 1 0",
        "/proc/101/stat": "101 (a) b) (c) S 500 101 1 0",
        "/proc/102/stat": "102 (other) S 1 102 1 0",
        "/proc/103/stat": "103 (x) S 5000 103 1 0",  # 500 is a prefix of the parent
        "/proc/104/stat": "104 (500) S 1 104 1 0",  # 500 as the name
        "/proc/105/stat": "",  # gone while being read
    }
    FakeProc(monkeypatch, files, OWN)
    assert reaper.children() == [100, 101]


def test_scan_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeProc(monkeypatch, {}, {})
    assert reaper.children() == []


# -- become_subreaper -------------------------------------------------------------


def test_pid_1_needs_no_subreaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getpid", lambda: 1)
    monkeypatch.setattr(ctypes.util, "find_library", fail)
    assert reaper.become_subreaper() is True


def test_no_libc_no_subreaper(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "getpid", lambda: 4242)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    assert reaper.become_subreaper() is False


def test_prctl_result(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []

    class Libc:
        def __init__(self, result: int) -> None:
            self.result = result

        def prctl(self, *args: int) -> int:
            calls.append(args)
            return self.result

    monkeypatch.setattr(os, "getpid", lambda: 4242)
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: "libc.so.6")
    for result, expected in ((0, True), (-1, False)):
        monkeypatch.setattr(ctypes, "CDLL", cdll(Libc(result)))
        assert reaper.become_subreaper() is expected
    assert calls == [(reaper.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)] * 2


def cdll(libc: object) -> Callable[..., object]:
    def make(name: str, use_errno: bool = False) -> object:
        assert name == "libc.so.6" and use_errno
        return libc

    return make


def fail(*args: object) -> NoReturn:
    raise AssertionError("not expected to be called")
