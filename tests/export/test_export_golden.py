"""Golden files: the exact bytes of each format for two fixed scenarios of
`hostile.py`: the Procfile with the hostile .env (`golden/<format>/`), and the
lifecycle scenario, whose corral.toml uses every setting
(`golden/lifecycle/<format>/`).

Regenerate after an intended change, then review the diff:

    CORRAL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/export/test_export_golden.py

(the files of each format are rewritten and stale ones removed).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest

from corral.export import CANONICAL, ExportContext, render
from tests.export.hostile import context, lifecycle_context
from tests.export.tools import GOLDEN

UPDATE = os.environ.get("CORRAL_UPDATE_GOLDEN") == "1"
SCENARIOS: dict[str, Callable[[], ExportContext]] = {
    "hostile": context,  # golden/<format>/
    "lifecycle": lifecycle_context,
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("fmt", list(CANONICAL))
def test_golden(fmt: str, scenario: str) -> None:
    files = render(fmt, SCENARIOS[scenario]())
    folder = GOLDEN / fmt if scenario == "hostile" else GOLDEN / scenario / fmt
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
