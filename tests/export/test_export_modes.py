"""File modes of `corral export` under different umasks: a file that carries a
`.env` value is owner-only (0600, 0700 if executable) whatever the umask; the
others keep their mode (0644, 0755).  Run through the installed `corral` in a
subprocess with its own umask."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support import CORRAL, base_env

PROCFILE = "web: python3 -m http.server $PORT\nworker: sleep 60\n"
SECRET = "s3cret value"

# (format, .env given) -> what must be private: a predicate on the relative path
PRIVATE = {
    "systemd": lambda p: p.endswith(".service"),
    "supervisord": lambda p: p.endswith(".conf"),
    "runit": lambda p: "/env/DB_PASSWORD" in p,
}


def export(tmp_path: Path, fmt: str, umask: int, env_text: str) -> Path:
    root = tmp_path / "app"
    root.mkdir()
    (root / "Procfile").write_text(PROCFILE)
    (root / ".env").write_text(env_text)
    out = tmp_path / "out"
    assert CORRAL
    result = subprocess.run(
        [CORRAL, "export", fmt, str(out)],
        cwd=root,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: os.umask(umask),
    )
    assert result.returncode == 0, result.stderr
    return out


def modes(out: Path) -> dict[str, int]:
    return {
        str(p.relative_to(out)): stat.S_IMODE(p.stat().st_mode)
        for p in out.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o000])
@pytest.mark.parametrize("fmt", sorted(PRIVATE))
def test_files_with_env_values_are_owner_only(tmp_path: Path, fmt: str, umask: int) -> None:
    out = export(tmp_path, fmt, umask, f"DB_PASSWORD='{SECRET}'\n")
    found = modes(out)
    assert found
    for path, mode in found.items():
        content = (out / path).read_text()
        if SECRET in content:
            assert mode & 0o077 == 0, f"{path}: {oct(mode)} holds a .env value"
        executable = bool(mode & 0o100)
        if PRIVATE[fmt](path):
            assert mode == (0o700 if executable else 0o600), path
        else:
            assert mode == (0o755 if executable else 0o644), path
    assert any(SECRET in (out / p).read_text() for p in found)


@pytest.mark.parametrize("fmt", sorted(PRIVATE))
def test_without_env_values_files_stay_readable(tmp_path: Path, fmt: str) -> None:
    found = modes(export(tmp_path, fmt, 0o077, ""))
    assert found
    assert all(mode in (0o644, 0o755) for mode in found.values()), found
