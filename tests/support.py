"""Helpers for black-box tests: run the installed `corral`, wait for conditions.

Black-box tests run the `corral` console script installed beside the Python
running pytest (the venv `.ci/run` builds), never the source tree directly.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

BIN_DIR = Path(sys.executable).parent
CORRAL = str(BIN_DIR / "corral") if (BIN_DIR / "corral").exists() else shutil.which("corral")


@dataclass
class Result:
    rc: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A predictable environment: no colour forcing, no CORRAL_* leaking in."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CORRAL_") and k not in ("NO_COLOR", "FORCE_COLOR", "PORT", "PROCFILE")
    }
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '')}"
    if extra:
        env.update(extra)
    return env


def run_corral(
    *args: str,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    input: str | None = None,
) -> Result:
    """Run the installed corral to completion; return rc, stdout, stderr."""
    assert CORRAL, "the corral command is not installed"
    proc = subprocess.run(
        [CORRAL, *args],
        cwd=cwd,
        env=base_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def wait_for(
    condition: Callable[[], object], timeout: float = 10, interval: float = 0.02
) -> object:
    """Poll `condition` until truthy or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def assert_no_traceback(result: Result) -> None:
    assert "Traceback" not in result.err, result.err
    assert "Traceback" not in result.out, result.out
