"""Where the export tests find their external tools, and how they wait.

A missing tool fails the test when `CI` is set (CI must run every export test;
`.ci/setup-export.sh` and the `test` extra install them) and skips it otherwise,
with the command that installs it.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

import pytest

BIN_DIR = Path(sys.executable).parent
RUNIT_BIN = Path(os.environ.get("CORRAL_RUNIT_ROOT", "/opt/corral-test/runit")) / "usr/bin"
HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden"
DUMPENV = HERE / "dumpenv.py"


def missing(what: str, how: str) -> None:
    message = f"{what} is not available: {how}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def module(name: str) -> ModuleType:
    """Import a test-only package (pyyaml, supervisor): fail in CI, else skip if missing."""
    if os.environ.get("CI"):
        return importlib.import_module(name)
    return pytest.importorskip(name, reason=f"{name} is missing: pip install -e '.[test]'")


def venv_tool(name: str) -> str:
    """A console script from the test extra, next to the running Python."""
    path = BIN_DIR / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            missing(name, "pip install -e '.[test]'")
        return str(found)
    return str(path)


def system_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        missing(name, "run .ci/setup-export.sh")
    return str(found)


def runit_tool(name: str) -> str:
    path = RUNIT_BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            missing(f"runit's {name}", "run .ci/setup-export.sh")
        return str(found)
    return str(path)


def run(argv: Sequence[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload,no-any-return]
        list(argv), capture_output=True, text=True, timeout=60, **kwargs
    )


def wait_for(condition: Callable[[], object], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}")
        time.sleep(0.05)


def marked_pids(mark: str) -> list[int]:
    """Live (non-zombie) processes whose environment holds `CORRAL_EXPORT_MARK=mark`."""
    needle = f"CORRAL_EXPORT_MARK={mark}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0]
        if needle in environ.split(b"\0") and state not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids
