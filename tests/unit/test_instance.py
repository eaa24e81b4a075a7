"""instance.py: the state table (exhaustively) and the restart back-off arithmetic."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.instance import (
    MAX_BACKOFF_DOUBLINGS,
    PENDING,
    RUNNING,
    TRANSITIONS,
    IllegalTransition,
    Instance,
    State,
)
from corral.specs import Policy, ProcessSpec, RestartPolicy

S = State


def make(restart: RestartPolicy | None = None) -> Instance:
    policy = Policy(restart=restart or RestartPolicy(mode="always"))
    return Instance(ProcessSpec(name="web.1", kind="web", command="x", policy=policy))


# -- the state table ----------------------------------------------------------


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(State)
    assert all(targets <= set(State) for targets in TRANSITIONS.values())


def test_table_as_the_diagram_draws_it() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == {
        (S.WAITING, S.STARTING),
        (S.WAITING, S.EXITED),
        *((S.STARTING, b) for b in (S.READY, S.BACKOFF, S.DONE, S.EXITED, S.STOPPING, S.KILLING)),
        *((S.READY, b) for b in (S.BACKOFF, S.DONE, S.EXITED, S.STOPPING, S.KILLING)),
        (S.BACKOFF, S.STARTING),
        (S.BACKOFF, S.EXITED),
        (S.STOPPING, S.KILLING),
        (S.STOPPING, S.EXITED),
        (S.STOPPING, S.DONE),
        (S.KILLING, S.EXITED),
        (S.KILLING, S.DONE),
        (S.EXITED, S.STOPPING),
        (S.EXITED, S.KILLING),
        (S.DONE, S.STOPPING),
        (S.DONE, S.KILLING),
    }


def test_running_and_pending_sets() -> None:
    assert frozenset({S.STARTING, S.READY}) == RUNNING
    assert frozenset({S.WAITING, S.BACKOFF}) == PENDING


def test_new_instance_waits() -> None:
    inst = make()
    assert inst.state is S.WAITING and inst.pid is None and not inst.group_alive
    assert inst.name == "web.1" and inst.kind == "web"


@pytest.mark.parametrize(("source", "target"), list(itertools.product(State, State)))
def test_every_pair_follows_the_table(source: State, target: State) -> None:
    inst = make()
    inst.state = source
    if target in TRANSITIONS[source]:
        inst.to(target)
        assert inst.state is target
    else:
        with pytest.raises(IllegalTransition) as caught:
            inst.to(target)
        assert str(caught.value) == f"web.1: {source.value} -> {target.value}"
        assert inst.state is source  # unchanged


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(list(State)), max_size=30))
def test_random_walks_stop_at_the_first_illegal_step(targets: list[State]) -> None:
    inst = make()
    path = [inst.state]
    for target in targets:
        legal = target in TRANSITIONS[inst.state]
        try:
            inst.to(target)
        except IllegalTransition:
            assert not legal
            assert inst.state is path[-1]
        else:
            assert legal
            path.append(target)
    assert inst.state is path[-1]


def test_illegal_transition_is_an_assertion_error() -> None:
    assert issubclass(IllegalTransition, AssertionError)


# -- the group's exit code ----------------------------------------------------


@pytest.mark.parametrize(
    ("leader", "last", "expected"),
    [
        (0, 3, 0),  # the leader exited by itself: its code
        (2, 0, 2),
        (128, 5, 128),  # 128 is an exit code, not a signal
        (129, 5, 5),  # the leader died of a signal: the last member's
        (143, 0, 0),
        (137, 143, 143),
    ],
)
def test_group_code(leader: int, last: int, expected: int) -> None:
    inst = make()
    inst.leader_code = leader
    assert inst.group_code(last) == expected


# -- back-off -------------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap() -> None:
    inst = make(RestartPolicy(mode="always", delay=1.0, max_delay=30.0, limit=100, window=1e9))
    got = [inst.backoff(float(t)) for t in range(8)]
    assert got == [(1.0, 1), (2.0, 2), (4.0, 3), (8.0, 4), (16.0, 5), (30.0, 6), (30.0, 7), (30, 8)]


def test_backoff_with_a_fractional_delay() -> None:
    inst = make(RestartPolicy(mode="always", delay=0.25, max_delay=1.5, limit=10))
    assert [inst.backoff(0.0) for _ in range(5)] == [
        (0.25, 1),
        (0.5, 2),
        (1.0, 3),
        (1.5, 4),
        (1.5, 5),
    ]


def test_backoff_limit_reached_records_nothing() -> None:
    inst = make(RestartPolicy(mode="always", delay=1.0, limit=2, window=60.0))
    assert inst.backoff(0.0) == (1.0, 1)
    assert inst.backoff(1.0) == (2.0, 2)
    assert inst.backoff(2.0) is None
    assert inst.backoff(3.0) is None
    assert list(inst.restarts) == [0.0, 1.0]
    assert inst.streak == 2


def test_backoff_limit_zero_never_restarts() -> None:
    inst = make(RestartPolicy(mode="always", limit=0))
    assert inst.backoff(0.0) is None


def test_backoff_window_boundary() -> None:
    """A restart exactly `window` seconds ago still counts; one a moment older does not."""
    inst = make(RestartPolicy(mode="always", delay=1.0, limit=1, window=10.0, reset_after=1e9))
    assert inst.backoff(5.0) == (1.0, 1)
    assert inst.backoff(15.0) is None  # 5.0 == 15.0 - 10: still inside
    assert inst.backoff(15.5) == (2.0, 1)  # 5.0 left the window; the streak did not reset
    assert list(inst.restarts) == [15.5]


def test_backoff_reset_after_boundary() -> None:
    inst = make(RestartPolicy(mode="always", delay=1.0, max_delay=30.0, limit=10, reset_after=10.0))
    inst.started_at = 0.0
    assert inst.backoff(1.0) == (1.0, 1)
    inst.started_at = 2.0
    assert inst.backoff(11.9) == (2.0, 2)  # up 9.9 s: still a streak
    inst.started_at = 14.0
    assert inst.backoff(24.0) == (1.0, 3)  # up exactly reset_after: starts over
    inst.started_at = 25.0
    assert inst.backoff(26.0) == (2.0, 4)


def test_backoff_streak_of_2000_does_not_overflow() -> None:
    inst = make(RestartPolicy(mode="always", delay=1.0, max_delay=30.0, limit=10**6, window=1e9))
    delays = [inst.backoff(0.0) for _ in range(2000)]
    assert all(d is not None for d in delays)
    assert delays[-1] == (30.0, 2000)
    assert {d[0] for d in delays[5:] if d is not None} == {30.0}
    assert inst.streak == 2000


def test_backoff_doublings_are_capped_without_a_max_delay() -> None:
    """With no effective cap the delay stops growing at MAX_BACKOFF_DOUBLINGS
    doublings instead of overflowing."""
    inst = make(
        RestartPolicy(mode="always", delay=1.0, max_delay=float("inf"), limit=10**6, window=1e9)
    )
    for _ in range(MAX_BACKOFF_DOUBLINGS):
        inst.backoff(0.0)
    last = [inst.backoff(0.0) for _ in range(100)]
    assert last == [(2.0**MAX_BACKOFF_DOUBLINGS, MAX_BACKOFF_DOUBLINGS + 1 + i) for i in range(100)]


@settings(max_examples=60, deadline=None)
@given(
    delay=st.floats(0.01, 10),
    max_delay=st.floats(0.01, 100),
    limit=st.integers(0, 8),
    window=st.floats(0, 50),
    reset_after=st.floats(0.1, 20),
    ups=st.lists(st.tuples(st.floats(0, 30), st.floats(0, 30)), max_size=25),
)
def test_backoff_against_a_reference_model(
    delay: float,
    max_delay: float,
    limit: int,
    window: float,
    reset_after: float,
    ups: list[tuple[float, float]],
) -> None:
    """Each life: up for `up` s, then exits; if restarted, waits out its delay.
    Checked against a straightforward model of the README's rules."""
    restart = RestartPolicy("always", delay, max_delay, limit, window, reset_after)
    inst = make(restart)
    now = 0.0
    times: list[float] = []  # restart times (model)
    streak = 0
    for up, pause in ups:
        inst.started_at = now
        now += up
        got = inst.backoff(now)
        recent = [t for t in times if t >= now - window]
        if len(recent) >= limit:
            assert got is None
            break
        lived = now - inst.started_at  # `up`, as the float sum gives it back
        streak = 0 if lived >= reset_after else streak
        want = min(delay * 2 ** min(streak, MAX_BACKOFF_DOUBLINGS), max_delay)
        streak += 1
        times = [*recent, now]
        assert got == (want, len(times))
        assert got[0] <= max_delay
        now += got[0] + pause
