"""`corral check` runs exactly the validation `corral start` runs: whatever
start rejects, check rejects with the same one-line error, starting nothing."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support import CORRAL, Result, assert_one_error, base_env, run_corral

BAD_SETTINGS = [
    ("CORRAL_TIMEOUT=abc", "timeout"),
    ("CORRAL_CONCURRENCY=ghost=1", "ghost"),
    ("PORT=abc", "port"),
    ("CORRAL_LOG_FORMAT=xml", "xml"),
    ("CORRAL_PROCESSES=ghost", "ghost"),
    ("CORRAL_COLOUR=maybe", "maybe"),
    ("CORRAL_CONCURRENCY=web=99999999999999999999999", "web"),
    ("PORT=65535\nCORRAL_CONCURRENCY=web=2", "65536"),
]


@pytest.mark.parametrize("line, fragment", BAD_SETTINGS, ids=[b[0] for b in BAD_SETTINGS])
def test_check_rejects_what_start_rejects(
    app_dir: Callable[..., Path], line: str, fragment: str
) -> None:
    d = app_dir(Procfile="web: exec sleep 30\n", **{".env": line + "\n"})
    start = run_corral("start", cwd=d)
    check = run_corral("check", cwd=d)
    start_line = assert_one_error(start, fragment)
    check_line = assert_one_error(check, fragment)
    assert check_line == start_line


def test_check_takes_starts_options(app_dir: Callable[..., Path]) -> None:
    d = app_dir(Procfile="web: exec sleep 30\nworker: exec sleep 30\n")
    ok = run_corral("check", "-c", "web=2", "-p", "6000", "worker", cwd=d)
    assert ok.rc == 0, ok
    assert ok.err == "Valid procfile detected (web, worker)\n"
    bad = run_corral("check", "-c", "ghost=2", cwd=d)
    assert_one_error(bad, "ghost")


def test_an_unreadable_app_root_is_named(request: pytest.FixtureRequest) -> None:
    """As another user, an app root without permission is reported as such,
    not as a missing or unreadable `.env`."""
    base = Path(tempfile.mkdtemp(prefix="corral-root-"))
    request.addfinalizer(lambda: shutil.rmtree(base))
    base.chmod(0o755)
    root = base / "app"
    root.mkdir(mode=0o700)
    (root / "Procfile").write_text("web: exec sleep 30\n")
    assert CORRAL
    for command in ("check", "start"):
        proc = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", CORRAL, command,
             "-d", str(root)],
            cwd=base,
            env=base_env(),
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
        line = assert_one_error(Result(proc.returncode, proc.stdout, proc.stderr), str(root))
        assert "app root is not readable" in line, line
