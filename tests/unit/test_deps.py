"""deps.py: the `after` graph (closure, cycles, dependents, start and stop levels)."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral import deps
from corral.errors import UsageError

# web and worker wait for db and release; release waits for db
README = {"release": ["db"], "db": [], "web": ["db", "release"], "worker": ["db", "release"]}


def test_closure() -> None:
    assert deps.closure(README, "web") == {"web", "db", "release"}
    assert deps.closure(README, "release") == {"release", "db"}
    assert deps.closure(README, "db") == {"db"}
    assert deps.closure(README, "unknown") == {"unknown"}
    assert deps.closure({"a": ["b"], "b": ["c"], "c": ["a"]}, "a") == {"a", "b", "c"}
    assert deps.closure({"a": ["gone"]}, "a") == {"a", "gone"}


def test_check_cycles_accepts_a_dag() -> None:
    deps.check_cycles(README)
    deps.check_cycles({})
    deps.check_cycles({"a": ["missing"]})


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ({"a": ["b"], "b": ["a"]}, "dependency cycle: a -> b -> a"),
        ({"a": ["a"]}, "dependency cycle: a -> a"),
        ({"x": ["a"], "a": ["b"], "b": ["c"], "c": ["a"]}, "dependency cycle: a -> b -> c -> a"),
        ({"ok": [], "b": ["a"], "a": ["b"]}, "dependency cycle: b -> a -> b"),
    ],
)
def test_check_cycles_names_one(graph: dict[str, list[str]], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        deps.check_cycles(graph)
    assert str(caught.value) == message


def test_dependents() -> None:
    assert deps.dependents(README) == {
        "release": {"web", "worker"},
        "db": {"release", "web", "worker"},
        "web": set(),
        "worker": set(),
    }


def test_dependents_only_count_present_types() -> None:
    assert deps.dependents(README, ["db", "web"]) == {"db": {"web"}, "web": set()}
    # a type listed in `after` but not part of the run is nobody's dependency
    assert deps.dependents({"web": ["gone"]}) == {"web": set()}


def test_stop_levels() -> None:
    assert deps.stop_levels(README) == {"web": 0, "worker": 0, "release": 1, "db": 2}
    assert deps.stop_levels({"a": [], "b": []}) == {"a": 0, "b": 0}
    # without release in this run, db is one layer below web and worker
    assert deps.stop_levels(README, ["db", "web", "worker"]) == {"db": 1, "web": 0, "worker": 0}
    # a missing middle type links nobody
    assert deps.stop_levels({"a": ["b"], "b": ["c"], "c": []}, ["a", "c"]) == {"a": 0, "c": 0}


def test_start_levels() -> None:
    assert deps.start_levels(README) == {"db": 0, "release": 1, "web": 2, "worker": 2}
    assert deps.start_levels({"a": ["b"], "b": ["c"], "c": [], "d": []}) == {
        "a": 2,
        "b": 1,
        "c": 0,
        "d": 0,
    }


@st.composite
def dags(draw: st.DrawFn) -> dict[str, list[str]]:
    """Random DAGs: node i may only depend on nodes before it (then shuffled)."""
    n = draw(st.integers(1, 9))
    names = [f"t{i}" for i in range(n)]
    graph = {
        name: draw(st.lists(st.sampled_from(names[:i]), unique=True)) if i else []
        for i, name in enumerate(names)
    }
    order = draw(st.permutations(names))
    return {name: graph[name] for name in order}


@settings(max_examples=30, deadline=None)
@given(dags())
def test_levels_order_every_edge(graph: dict[str, list[str]]) -> None:
    deps.check_cycles(graph)
    start = deps.start_levels(graph)
    stop = deps.stop_levels(graph)
    assert set(start) == set(stop) == set(graph)
    for kind, after in graph.items():
        # tight: one above the highest dependency, one above the highest dependent
        assert start[kind] == max((start[d] + 1 for d in after), default=0)
        above = [k for k, a in graph.items() if kind in a]
        assert stop[kind] == max((stop[k] + 1 for k in above), default=0)
        for dep in after:
            assert start[kind] > start[dep]  # started after what it waits for
            assert stop[kind] < stop[dep]  # and stopped before it


@settings(max_examples=30, deadline=None)
@given(dags(), st.data())
def test_a_back_edge_is_a_named_cycle(graph: dict[str, list[str]], data: st.DataObject) -> None:
    node = data.draw(st.sampled_from(sorted(graph)))
    ancestor = data.draw(st.sampled_from(sorted(deps.closure(graph, node))))
    cyclic = {**graph, ancestor: [*graph[ancestor], node]}
    with pytest.raises(UsageError) as caught:
        deps.check_cycles(cyclic)
    message = str(caught.value)
    assert message.startswith("dependency cycle: ")
    path = message.removeprefix("dependency cycle: ").split(" -> ")
    assert path[0] == path[-1] and len(path) >= 2
    assert len(set(path[:-1])) == len(path) - 1  # a simple cycle
    for a, b in itertools.pairwise(path):
        assert b in cyclic[a]
