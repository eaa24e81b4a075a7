"""Scenario 1 (S1/S2): orphans re-parented to corral are reaped, as PID 1 and
as a child subreaper.

Criterion for "no zombies": corral's process tree is sampled every 200 ms; a
zombie (state Z) seen in a sample, whose parent is then seen sleeping and
which is still there after that, is a failure (one sighting may be a process
caught between its exit and its reap; see harness.ZombieWatch).
"""

from __future__ import annotations

import shlex
import signal
from pathlib import Path

from tests.pid1.harness import (
    Corral,
    CorralFactory,
    ZombieReport,
    ZombieWatch,
    describe,
    helper,
    pids_with_arg,
    read_lines,
    unique,
)
from tests.support import wait_for


def _assert_no_lasting_zombies(report: ZombieReport, c: Corral) -> None:
    assert report.persistent == [], (
        f"{len(report.persistent or [])} zombies stayed unreaped while their parent slept "
        f"(corral pid {c.pid}, mode {c.mode}): "
        f"{report.persistent[:10] if report.persistent else []}"
    )


def _stop_and_check(c: Corral) -> None:
    rc = c.stop(signal.SIGTERM)
    assert rc == 143, f"rc {rc}; stderr: {c.err()!r}"
    assert c.leftovers() == [], describe(c.leftovers())


def test_double_forked_orphans_are_reaped(
    mode: str, corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    """150 double-forked grandchildren, each re-parented to corral, then exiting."""
    count = 150
    log, done = tmp_path / "orphans.log", tmp_path / "orphans.done"
    web = unique()
    app = app_dir(
        Procfile=(
            f"orphaner: {helper('orphaner.py')} {log} {done} --count {count} --interval 0.005\n"
            f"web: exec sleep {web}\n"
        )
    )
    c = corral(mode, "start", "-t", "1", cwd=app)
    watch = ZombieWatch(c)
    watch.run_until(done.exists, timeout=30)
    report = watch.run_for(1.0)

    records = [line.split() for line in read_lines(log)]
    assert len(records) == count, f"{len(records)} of {count} orphans reported"
    new_parents = {int(ppid) for _, ppid in records}
    # Every orphan was adopted by corral (PID 1 inside; itself as a subreaper).
    assert new_parents == {c.inner_pid}, (
        f"orphans were re-parented to {new_parents}, not to corral ({c.inner_pid})"
    )
    _assert_no_lasting_zombies(report, c)
    assert c.alive(), f"corral stopped: rc {c.popen.poll()}; {c.err()!r}"
    assert pids_with_arg(web), "the web process died while orphans were reaped"
    # The adopted orphans are gone, not just un-zombied.
    for pid, _ in records:
        p = int(pid)
        wait_for(lambda p=p: not _in_tree(c, p), timeout=5)
    _stop_and_check(c)


def _in_tree(c: Corral, pid: int) -> bool:
    return any(p.pid == pid for p in c.tree())


def test_shell_orphaner_leaves_no_zombies(mode: str, corral: CorralFactory, app_dir) -> None:
    """The classic shell orphaner of the issue: `sh -c 'sleep 0.05 &'` in a loop."""
    inner = "while true; do sh -c 'sleep 0.05 &'; sleep 0.02; done"
    app = app_dir(Procfile=f"orphaner: {inner}\n")
    c = corral(mode, "start", "-t", "1", cwd=app)
    watch = ZombieWatch(c)
    report = watch.run_for(2.5)
    # Meaningful only if orphans really came back to corral.
    assert report.adopted > 0, "no orphan was ever seen re-parented to corral"
    _assert_no_lasting_zombies(report, c)
    assert c.alive(), f"corral stopped: rc {c.popen.poll()}; {c.err()!r}"
    _stop_and_check(c)


def test_run_reaps_orphans(mode: str, corral: CorralFactory, tmp_path: Path) -> None:
    """`corral run` is an init too: its command's orphans are adopted and reaped."""
    count = 100
    log, done = tmp_path / "orphans.log", tmp_path / "orphans.done"
    argv = [*shlex.split(helper("orphaner.py")), str(log), str(done), "--count", str(count)]
    c = corral(mode, "run", "--", *argv, cwd=tmp_path)
    watch = ZombieWatch(c)
    watch.run_until(done.exists, timeout=30)
    report = watch.run_for(1.0)
    records = [line.split() for line in read_lines(log)]
    assert len(records) == count, f"{len(records)} of {count} orphans reported"
    assert {int(ppid) for _, ppid in records} == {c.inner_pid}
    _assert_no_lasting_zombies(report, c)
    assert c.alive()
    # the orphaner dies of the relayed SIGTERM: 128 + 15
    _stop_and_check(c)
