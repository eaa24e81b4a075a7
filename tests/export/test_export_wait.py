"""The readiness wait the exports run before a dependant may start
(`corral.export.commands.wait_script`), run with the real `sh`: failed
attempts are silent, a timeout is one line on stderr and exit 1."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from corral.export import render
from corral.export.commands import probe_command, wait_script
from corral.specs import ProbeSpec
from tests.export.hostile import lifecycle_context

NOISY = "echo attempt-out; echo attempt-err >&2; python3 -c 'raise SystemExit(1)' 2>&1; false"


def run_sh(script: str, cwd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", script], capture_output=True, text=True, timeout=30, cwd=cwd
    )


def test_failed_attempts_are_silent_and_timeout_is_one_line() -> None:
    probe = ProbeSpec("cmd", NOISY, interval=0.2, timeout=1)
    with tempfile.TemporaryDirectory() as scratch:
        result = run_sh(wait_script(NOISY, probe, "web"), scratch)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["web: not ready after 1s (cmd probe)"]


def test_wait_ends_when_the_check_passes(tmp_path: Path) -> None:
    probe = ProbeSpec("file", "ready", interval=0.1, timeout=20)
    check = probe_command(probe)
    assert check is not None
    # the file appears after a few failed attempts
    script = f"(sleep 0.5; touch ready) & {wait_script(check, probe, 'db')}"
    result = run_sh(script, str(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_check_ending_in_a_comment_is_still_a_command(tmp_path: Path) -> None:
    probe = ProbeSpec("cmd", "true # comment", interval=0.1, timeout=2)
    result = run_sh(wait_script(probe.target, probe, "x"), str(tmp_path))
    assert result.returncode == 0


def test_systemd_uses_the_quiet_wait() -> None:
    units = {f.path: f.content for f in render("systemd", lifecycle_context())}
    web = units["my_app-web.2.service"]
    (post,) = [line for line in web.splitlines() if line.startswith("ExecStartPost=")]
    assert ">/dev/null 2>&1" in post
    assert "not ready after 45s" in post
    (timeout,) = [line for line in web.splitlines() if line.startswith("TimeoutStartSec=")]
    assert timeout == "TimeoutStartSec=50"  # the wait's 45 s plus the grace
