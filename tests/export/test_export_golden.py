"""Golden files: the exact bytes of each format for the fixed Procfile and the
hostile .env in `hostile.py`.

Regenerate after an intended change, then review the diff:

    CORRAL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/export/test_export_golden.py

(the files of each format are rewritten and stale ones removed).
"""

from __future__ import annotations

import os
import shutil

import pytest

from corral.export import CANONICAL, render
from tests.export.hostile import context
from tests.export.tools import GOLDEN

UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("fmt", list(CANONICAL))
def test_golden(fmt: str) -> None:
    files = render(fmt, context())
    folder = GOLDEN / fmt
    if UPDATE:
        shutil.rmtree(folder, ignore_errors=True)
        for f in files:
            path = folder / f.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f.content.encode("utf-8"))
    expected = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert sorted(f.path for f in files) == expected, (
        f"files differ from {folder}; regenerate with CORRAL_UPDATE_GOLDEN=1"
    )
    for f in files:
        golden = (folder / f.path).read_bytes()
        assert f.content.encode("utf-8") == golden, (
            f"{fmt}/{f.path} differs from the golden file; if intended, regenerate "
            "with CORRAL_UPDATE_GOLDEN=1 and review the diff"
        )
