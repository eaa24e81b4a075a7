from __future__ import annotations

import pytest

from corral.errors import UsageError
from corral.formation import expand, parse_counts, parse_names
from corral.procfile import parse

ENTRIES = parse("web: run-web\nworker: run-worker\nclock: run-clock\n")
KNOWN = [e.name for e in ENTRIES]


def test_names_ports_and_env() -> None:
    specs = expand(ENTRIES, env={"A": "1"}, counts={"web": 2, "worker": 0})
    assert [(s.name, s.port) for s in specs] == [
        ("web.1", 5000),
        ("web.2", 5001),
        ("clock.1", 5200),
    ]
    assert specs[1].env == {
        "A": "1",
        "PORT": "5001",
        "PS": "web.2",
        "HONCHO_PROCESS_NAME": "web.2",
    }
    assert specs[0].command == "run-web"


def test_selection_does_not_move_ports() -> None:
    specs = expand(ENTRIES, env={}, base_port=8000, selected=["clock", "web"])
    assert [(s.name, s.port) for s in specs] == [("web.1", 8000), ("clock.1", 8200)]


def test_quiet_by_type_or_instance() -> None:
    specs = expand(ENTRIES, env={}, counts={"web": 2}, quiet=["worker", "web.2"])
    assert {s.name: s.quiet for s in specs} == {
        "web.1": False,
        "web.2": True,
        "worker.1": True,
        "clock.1": False,
    }


def test_parse_counts() -> None:
    assert parse_counts(["web=2, worker=0", "clock=3"], KNOWN) == {
        "web": 2,
        "worker": 0,
        "clock": 3,
    }


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("web", "expected NAME=COUNT"),
        ("=2", "expected NAME=COUNT"),
        ("web=x", "'x' is not a whole number"),
        ("web=-1", "count must be 0 or more"),
        ("nope=1", "unknown process 'nope'"),
    ],
)
def test_bad_counts(value: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        parse_counts([value], KNOWN)


def test_unknown_selected_or_quiet_is_an_error() -> None:
    with pytest.raises(UsageError, match="start: unknown process 'db'"):
        expand(ENTRIES, env={}, selected=["db"])
    with pytest.raises(UsageError, match="quiet: unknown process 'db'"):
        expand(ENTRIES, env={}, quiet=["db"])


def test_parse_names() -> None:
    assert parse_names(["a,b", " c ", ""]) == ["a", "b", "c"]
