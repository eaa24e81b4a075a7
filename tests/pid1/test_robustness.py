"""Init robustness beyond the twelve scenarios of the issue (from pid1.md):

* S16 (blocked mask): corral started with signals *blocked* (tini's
  sigconf test blocks TERM among others) must still hear SIGTERM and notice
  its children's exits, and pass the inherited mask on to its children.
* S23: corral must never exit leaving its services running, whatever signal
  it gets: a signal with a "terminate" default action (SIGALRM, SIGPWR,
  SIGRTMIN+3: systemd's halt signal, the STOPSIGNAL of systemd images) would
  kill a corral without a handler on the spot.  README's signal table:
  SIGALRM is relayed and corral keeps running; SIGPWR and SIGRTMIN+3 stop
  the group like SIGTERM, exit 128+N.
* S15: corral must never be stopped (SIGTSTP/SIGTTIN/SIGTTOU) while its
  services keep running unmanaged: it ignores them (README).
* PID 1 of a namespace whose /proc is not its own (`unshare --pid --fork`
  without `--mount-proc`): corral must still finish.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.pid1.harness import (
    CorralFactory,
    describe,
    helper,
    idle_in_loop,
    pending,
    pids_with_arg,
    read_lines,
    read_stat,
    sigmask_fields,
    sigset,
    unique,
)
from tests.support import wait_for

# S16's caller blocks TERM, TTIN and ILL; USR1 stands in for ILL (a synchronous
# signal nobody sends with kill).  SIGCHLD is blocked on its own, in
# test_blocked_sigchld_run: with it blocked corral may not finish at all.
BLOCKED = (signal.SIGTERM, signal.SIGTTIN, signal.SIGUSR1)


@pytest.mark.parametrize("command", ["start", "run"])
def test_blocked_mask_is_passed_on(
    mode: str, command: str, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    """What corral was given goes on to its children (spawn.py's own promise)."""
    if command == "start":
        out = tmp_path / "status.txt"
        app = app_dir(Procfile=f"status: exec cat /proc/self/status > {out}\n")
        c = corral(mode, "start", "-t", "1", cwd=app, blocked=BLOCKED)
    else:
        c = corral(mode, "run", "--", "cat", "/proc/self/status", cwd=tmp_path, blocked=BLOCKED)
    rc = c.wait()
    assert rc == 0, f"rc {rc}; stderr: {c.err()!r}"
    fields = sigmask_fields(out.read_text() if command == "start" else c.out())
    assert fields["SigBlk"] == sigset(*BLOCKED), f"child SigBlk {fields['SigBlk']:#x}"


def test_blocked_mask_sigterm(mode: str, corral: CorralFactory, app_dir) -> None:
    """SIGTERM blocked when corral starts: `docker stop` must still work."""
    s = unique()
    app = app_dir(Procfile=f"web: exec sleep {s}\n")
    c = corral(mode, "start", "-t", "1", cwd=app, blocked=(signal.SIGTERM,))
    wait_for(lambda: pids_with_arg(s), timeout=10)
    rc = c.stop(signal.SIGTERM, timeout=5)
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    assert c.leftovers() == [], describe(c.leftovers())


def test_blocked_sigchld_run(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    """SIGCHLD blocked: no output pipe in `run`, so only SIGCHLD can tell corral
    its command exited (in `start` a pipe's EOF may or may not come late enough
    to cover for it: racy)."""
    c = corral(
        mode,
        "run",
        "--",
        "sh",
        "-c",
        "read line; exit 3",
        cwd=tmp_path,
        blocked=(signal.SIGCHLD,),
        stdin=subprocess.PIPE,
    )
    wait_for(lambda: [p for p in c.tree() if p.comm == "sh"], timeout=10)
    # corral idle in its event loop: past start-up, so the exit is not
    # caught by a reap it does right after starting the command anyway
    wait_for(lambda: idle_in_loop(c.pid), timeout=10)
    assert c.popen.stdin is not None
    c.popen.stdin.close()  # the command reads EOF and exits 3
    rc = c.wait(timeout=5)
    assert rc == 3, f"rc {rc}; stderr: {c.err()!r}"


@pytest.mark.parametrize(
    ("signum", "stops"),
    [(signal.SIGALRM, False), (signal.SIGPWR, True), (signal.SIGRTMIN + 3, True)],
    ids=["ALRM", "PWR", "RTMIN+3"],
)
def test_deadly_signal_leaves_nothing_running(
    mode: str, signum: int, stops: bool, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    """A relayed signal reaches the service and corral keeps running; a
    stopping one ends everything with 128+N.  Either way nothing survives."""
    log, ready, gc = tmp_path / "web.log", tmp_path / "web.ready", unique()
    app = app_dir(
        Procfile=(
            f"web: exec {helper('catcher.py')} {log} --ready {ready} --exit-on TERM=0\n"
            # a shell with a grandchild, both deaf to SIGALRM (it is inherited)
            f"worker: trap '' ALRM; sleep {gc}\n"
        )
    )
    c = corral(mode, "start", "-t", "1", cwd=app)
    wait_for(lambda: ready.exists() and pids_with_arg(gc), timeout=10)
    c.kill(signum)
    if stops:
        rc = c.wait()
        assert rc == 128 + signum, f"rc {rc}; stderr: {c.err()!r}"
        assert read_lines(log) == ["15"], "web did not get its stop signal"
    else:
        wait_for(lambda: read_lines(log) == [str(int(signum))], timeout=10)
        assert c.alive(), f"corral exited after relaying signal {signum}: rc {c.popen.poll()}"
        rc = c.stop(signal.SIGTERM)
        assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
        assert read_lines(log) == [str(int(signum)), "15"]
    left = pids_with_arg(gc) + c.leftovers()
    assert left == [], (
        f"corral exited with {c.rc} after signal {signum}, leaving its services "
        f"running:\n{describe(set(left))}"
    )


@pytest.mark.parametrize(
    "signum", [signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU], ids=["TSTP", "TTIN", "TTOU"]
)
def test_stop_signal_does_not_stop_corral(
    mode: str, signum: int, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    log, ready = tmp_path / "web.log", tmp_path / "web.ready"
    app = app_dir(Procfile=f"web: exec {helper('catcher.py')} {log} --ready {ready}\n")
    # corral in a process group of its own inside our session, as under a
    # shell or `tini --`: a session leader's orphaned group would have these
    # default-action stop signals discarded by the kernel.
    c = corral(mode, "start", "-t", "1", cwd=app, new_session=False, preexec=_own_group)
    wait_for(ready.exists, timeout=10)
    c.kill(signum)
    # delivered: had it stopped corral, corral would now be stopped (or
    # about to be) and could not relay the SIGUSR1 sent after it
    wait_for(lambda: not pending(c.pid) & sigset(signum), timeout=10)
    c.kill(signal.SIGUSR1)
    try:
        wait_for(lambda: read_lines(log) == [str(int(signal.SIGUSR1))], timeout=10)
    except AssertionError:
        me = read_stat(c.pid)
        raise AssertionError(
            f"corral did not relay SIGUSR1 after {signal.Signals(signum).name} "
            f"(state {me.state if me else 'gone'}); log {read_lines(log)}"
        ) from None
    me = read_stat(c.pid)
    assert me is not None and me.state not in "Tt", f"corral is stopped: {me}"
    rc = c.stop(signal.SIGTERM)
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    assert c.leftovers() == [], describe(c.leftovers())


def _own_group() -> None:
    os.setpgid(0, 0)


def test_pid1_without_own_proc(corral: CorralFactory, app_dir) -> None:
    """corral is PID 1, but /proc belongs to the outer namespace."""
    web = unique()
    app = app_dir(Procfile=f"once: exit 0\nweb: exec sleep {web}\n")
    c = corral("pid1", "start", "-t", "1", cwd=app, foreign_proc=True)
    rc = c.wait(timeout=10)  # `once` exits: first-exit stops the app
    assert rc == 0, f"rc {rc}; stdout: {c.out()!r}; stderr: {c.err()!r}"
    left = pids_with_arg(web) + c.leftovers()
    assert left == [], describe(set(left))
