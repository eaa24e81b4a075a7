"""The import direction of DEVELOPERS.md, checked so it survives growth.

cli -> app -> {procfile, env, formation, supervisor, mux, export}; the leaf
modules never import their siblings' concerns: procfile knows nothing of
processes, supervisor nothing of colours, mux nothing of signals.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "corral"

ALLOWED: dict[str, set[str]] = {
    "cli": {"app", "errors", "signals"},
    "boot": {"cli", "signals"},
    "app": {
        "procfile",
        "env",
        "formation",
        "lifecycle",
        "supervisor",
        "mux",
        "export",
        "spawn",
        "signals",
        "specs",
        "errors",
    },
    "procfile": {"errors"},
    "lifecycle": {"specs", "errors"},
    "probes": {"specs", "probecheck"},
    "env": {"errors"},
    "formation": {"procfile", "specs", "errors"},
    "supervisor": {
        "reaper",
        "signals",
        "spawn",
        "specs",
        "probes",
        "policy",
        "instance",
        "pump",
        "reactor",
    },
    "policy": {"instance", "deps", "specs", "signals"},
    "instance": {"specs"},
    "deps": {"errors"},
    "pump": {"reactor"},
    "reactor": set(),
    "probecheck": set(),
    "mux": set(),
    "signals": set(),
    "reaper": set(),
    "spawn": {"specs", "signals"},
    "specs": {"shell"},
    "shell": set(),
    "errors": set(),
}


def corral_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            parts = node.module.split(".")
            if parts[0] != "corral":
                continue
            if len(parts) > 1:
                found.add(parts[1])
            else:
                found.update(alias.name for alias in node.names if alias.name != "__version__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "corral" and len(parts) > 1:
                    found.add(parts[1])
    return found


def test_modules_import_only_what_the_layering_allows() -> None:
    for module, allowed in ALLOWED.items():
        imported = corral_imports(SRC / f"{module}.py")
        assert imported <= allowed, f"{module} imports {sorted(imported - allowed)}"


def test_export_never_imports_the_runtime() -> None:
    for path in (SRC / "export").glob("*.py"):
        imported = corral_imports(path)
        assert not imported & {"supervisor", "mux", "signals", "spawn", "reaper", "cli", "app"}, (
            path
        )


def test_every_module_is_listed() -> None:
    modules = {p.stem for p in SRC.glob("*.py")} - {"__init__", "__main__"}
    assert modules == set(ALLOWED)
