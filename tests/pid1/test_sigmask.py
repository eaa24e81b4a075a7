"""Scenario 6 (S16): the signal state a child gets is the one corral was given.

corral is started by a launcher (the harness's preexec hook) that resets every
disposition to default, unblocks everything and then ignores exactly the
signals listed here; the child must see SigBlk 0 and SigIgn equal to that set.
In particular SIGPIPE must not be ignored in the child, although the Python
running corral ignores it for itself, and nothing corral catches may show up
as ignored.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.pid1.harness import CorralFactory, sigmask_fields, sigset

IGNORED_SETS = {
    "none": (),
    "usr2": (signal.SIGUSR2,),
    "nohup": (signal.SIGHUP, signal.SIGUSR2),
}


def _check(status: str, ignored: tuple[int, ...]) -> None:
    fields = sigmask_fields(status)
    assert {"SigBlk", "SigIgn"} <= fields.keys(), status
    assert fields["SigBlk"] == 0, f"child starts with blocked signals: {fields['SigBlk']:#x}"
    expected = sigset(*ignored)
    assert fields["SigIgn"] & sigset(signal.SIGPIPE) == 0, "SIGPIPE is ignored in the child"
    assert fields["SigIgn"] == expected, (
        f"child SigIgn {fields['SigIgn']:#018x}, corral was started with {expected:#018x}"
    )


@pytest.mark.parametrize("ignored", IGNORED_SETS.values(), ids=IGNORED_SETS.keys())
def test_start_child_signal_state(
    mode: str, ignored: tuple[int, ...], corral: CorralFactory, app_dir, tmp_path: Path
) -> None:
    out = tmp_path / "status.txt"
    app = app_dir(Procfile=f"status: exec cat /proc/self/status > {out}\n")
    c = corral(mode, "start", "-t", "1", cwd=app, ignored=ignored)
    rc = c.wait()
    assert rc == 0, f"rc {rc}; stderr: {c.err()!r}"
    _check(out.read_text(), ignored)


@pytest.mark.parametrize("ignored", IGNORED_SETS.values(), ids=IGNORED_SETS.keys())
def test_run_child_signal_state(
    mode: str, ignored: tuple[int, ...], corral: CorralFactory, tmp_path: Path
) -> None:
    c = corral(mode, "run", "--", "cat", "/proc/self/status", cwd=tmp_path, ignored=ignored)
    rc = c.wait()
    assert rc == 0, f"rc {rc}; stderr: {c.err()!r}"
    _check(c.out(), ignored)
