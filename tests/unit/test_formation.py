from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.errors import UsageError
from corral.formation import expand, parse_counts, parse_names, port_slots
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


# -- ports and absurd formations ---------------------------------------------------


def test_port_beyond_65535_is_an_error_naming_the_instance() -> None:
    assert [s.port for s in expand(ENTRIES, env={}, base_port=65535, selected=["web"])] == [65535]
    with pytest.raises(UsageError, match=r"web\.2: PORT 65536 is over 65535"):
        expand(ENTRIES, env={}, base_port=65535, counts={"web": 2})
    with pytest.raises(UsageError, match=r"worker\.1: PORT 65600 is over 65535"):
        expand(ENTRIES, env={}, base_port=65500)
    # a type that does not run needs no port
    specs = expand(ENTRIES, env={}, base_port=65500, counts={"worker": 0, "clock": 0})
    assert [s.name for s in specs] == ["web.1"]


@pytest.mark.parametrize(
    "number", ["10001", "99999999999999999999999", "9" * 5000, "0" * 50 + "10001"]
)
def test_absurd_concurrency_is_refused_before_anything_is_allocated(number: str) -> None:
    with pytest.raises(UsageError, match=r"at most 10000 instances of a process type") as info:
        parse_counts([f"web={number}"], KNOWN)
    assert len(str(info.value)) < 200


def test_concurrency_up_to_the_maximum_is_fine() -> None:
    assert parse_counts(["web=10000", "worker=" + "0" * 30 + "7"], KNOWN) == {
        "web": 10_000,
        "worker": 7,
    }
    specs = expand(ENTRIES, env={}, base_port=1000, counts={"web": 10_000}, selected=["web"])
    assert (specs[-1].name, specs[-1].port) == ("web.10000", 10_999)


def test_expand_refuses_absurd_counts_from_callers_too() -> None:
    # with the old code this allocated the instance names first (24 GB for 10**23)
    with pytest.raises(UsageError, match="at most 10000"):
        expand(ENTRIES, env={}, counts={"web": 10**23})
    with pytest.raises(UsageError, match="0 or more"):
        expand(ENTRIES, env={}, counts={"web": -1})


def test_quiet_instance_names_are_checked_without_listing_instances() -> None:
    specs = expand(ENTRIES, env={}, counts={"web": 3}, quiet=["web.3"])
    assert [s.name for s in specs if s.quiet] == ["web.3"]
    for bad in ("web.4", "web.0", "web.01", "web." + "9" * 5000, "nope.1"):
        with pytest.raises(UsageError, match="quiet: unknown process"):
            expand(ENTRIES, env={}, counts={"web": 3}, quiet=[bad])


def test_long_names_are_not_echoed_in_full() -> None:
    for call in (
        lambda: parse_counts(["x" * 100_000 + "=1"], KNOWN),
        lambda: parse_counts(["web=" + "x" * 100_000], KNOWN),
        lambda: expand(ENTRIES, env={}, selected=["x" * 100_000]),
    ):
        with pytest.raises(UsageError) as info:
            call()
        assert len(str(info.value)) < 250, str(info.value)[:300]


def test_unknown_name_lists_only_some_of_many_types() -> None:
    entries = parse("".join(f"type{i}: x\n" for i in range(5000)))
    with pytest.raises(
        UsageError, match=r"the Procfile has: type0, type1, .*\(5000 types\)"
    ) as info:
        parse_counts(["nope=1"], [e.name for e in entries])
    assert len(str(info.value)) < 250


# -- the release phase and port slots ------------------------------------------------

HEROKU = parse("release: ./migrate\nweb: gunicorn app\nworker: celery\n")


def test_release_takes_no_port_slot() -> None:
    assert port_slots(HEROKU) == {"release": 0, "web": 0, "worker": 1}
    assert port_slots(parse("web: a\nrelease: b\nworker: c\n")) == {
        "web": 0,
        "release": 0,
        "worker": 1,
    }
    assert port_slots(ENTRIES) == {"web": 0, "worker": 1, "clock": 2}


def test_types_keep_the_ports_they_have_without_release() -> None:
    without = parse("web: gunicorn app\nworker: celery\n")
    ports = {s.name: s.port for s in expand(HEROKU, env={}, counts={"web": 2})}
    assert ports == {"release.1": 5000, "web.1": 5000, "web.2": 5001, "worker.1": 5100}
    assert {k: v for k, v in ports.items() if k != "release.1"} == {
        s.name: s.port for s in expand(without, env={}, counts={"web": 2})
    }


NAMES = st.lists(
    st.one_of(st.just("release"), st.from_regex(r"[a-z]{1,8}", fullmatch=True)),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=200, deadline=None)
@given(NAMES, st.integers(min_value=1, max_value=20_000), st.data())
def test_port_rule(names: list[str], base: int, data: st.DataObject) -> None:
    """PORT = base + 100 * slot + (N - 1), slots in Procfile order without
    `release`, which gets the base port; only instances over 65535 are errors."""
    entries = parse("".join(f"{n}: run\n" for n in names))
    counts = {n: data.draw(st.integers(min_value=0, max_value=3), label=n) for n in names}
    others = [n for n in names if n != "release"]
    slots = port_slots(entries)
    assert slots == {n: others.index(n) if n in others else 0 for n in names}
    specs = expand(entries, env={}, base_port=base, counts=counts)
    expected = [
        (f"{n}.{i}", base + 100 * slots[n] + i - 1) for n in names for i in range(1, counts[n] + 1)
    ]
    assert [(s.name, s.port) for s in specs] == expected
    assert all(s.env["PORT"] == str(s.port) for s in specs)
