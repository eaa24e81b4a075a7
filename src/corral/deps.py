"""The `after` graph: which process types wait for which.

Owned here so that settings (cycles, the release rule), the decision core
(start gating, reverse-order shutdown) and the exporters (ordering levels)
walk one graph one way.  Pure functions over `{type: its dependencies}`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from corral.errors import UsageError

Graph = Mapping[str, Sequence[str]]  # type -> the types it is `after`


def closure(graph: Graph, name: str) -> set[str]:
    """`name` and everything it depends on, directly or not."""
    seen = {name}
    todo = [name]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def check_cycles(graph: Graph) -> None:
    """Reject a cycle up front, naming one: `dependency cycle: a -> b -> a`."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            raise UsageError(f"dependency cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for dep in graph.get(name, ()):
            visit(dep, [*path, name])
        state[name] = 2

    for name in graph:
        visit(name, [])


def dependents(graph: Graph, present: Iterable[str] | None = None) -> dict[str, set[str]]:
    """type -> the types that wait for it; only types in `present` (default:
    all) count, so a type not part of this run (not selected, scaled to 0)
    neither waits nor is waited for."""
    kinds = list(graph) if present is None else list(present)
    found: dict[str, set[str]] = {kind: set() for kind in kinds}
    for kind in kinds:
        for dep in graph.get(kind, ()):
            if dep in found:
                found[dep].add(kind)
    return found


def stop_levels(graph: Graph, present: Iterable[str] | None = None) -> dict[str, int]:
    """How many layers of dependents stand above each type (0: nobody waits
    for it).  Shutdown goes from layer 0 down: a type stops once every type
    that waits for it has stopped.  Cycles must have been rejected."""
    above = dependents(graph, present)
    levels: dict[str, int] = {}

    def level(kind: str) -> int:
        if kind not in levels:
            levels[kind] = max((level(d) + 1 for d in above[kind]), default=0)
        return levels[kind]

    for kind in above:
        level(kind)
    return levels


def start_levels(graph: Graph) -> dict[str, int]:
    """How many layers of dependencies stand below each type (0: it waits
    for nobody).  Cycles must have been rejected."""
    levels: dict[str, int] = {}

    def level(kind: str) -> int:
        if kind not in levels:
            levels[kind] = max((level(d) + 1 for d in graph.get(kind, ())), default=0)
        return levels[kind]

    for kind in graph:
        level(kind)
    return levels
