"""The decision core, replayed: histories of events at fake clock times in,
the exact actions out (messages, signals, order), exit code, `finished` and
`next_deadline()` checked along the way.  No processes, no clock, no sleeps.

Actions are compared as short lines (`show`): `spawn web.1`,
`send web.1 SIGTERM`, `probe web.1`, `cancel-probe web.1`,
`EVENT: notice text`, `warn: text`, `orphans SIGKILL`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corral.instance import State
from corral.policy import (
    STATUS_INTERVAL,
    Action,
    CancelProbe,
    Controller,
    Event,
    Exited,
    GroupGone,
    Notice,
    NotReady,
    OutputLost,
    Phase,
    Ready,
    RunController,
    Send,
    Signal,
    SignalOrphans,
    Spawn,
    SpawnFailed,
    Start,
    Started,
    StartProbe,
    Tick,
    Warn,
    signame,
)
from corral.specs import Policy, ProbeSpec, ProcessSpec, RestartPolicy

S = State
TERM, INT, KILL, CONT = signal.SIGTERM, signal.SIGINT, signal.SIGKILL, signal.SIGCONT


# -- helpers --------------------------------------------------------------------


def spec(name: str, **policy: Any) -> ProcessSpec:
    """`web.1` of type `web`, with Policy(**policy)."""
    return ProcessSpec(name=name, kind=name.split(".")[0], command="x", policy=Policy(**policy))


def show(action: Action) -> str:
    match action:
        case Spawn(name):
            return f"spawn {name}"
        case Send(name, signum):
            return f"send {name} {signame(signum)}"
        case StartProbe(name):
            return f"probe {name}"
        case CancelProbe(name):
            return f"cancel-probe {name}"
        case Notice(message, event, _):
            return f"{event}: {message}"
        case Warn(message):
            return f"warn: {message}"
        case SignalOrphans(signum):
            return f"orphans {signame(signum)}"
    raise AssertionError(action)


def replay(ctl: Controller, history: Iterable[tuple[float, Event]]) -> list[tuple[float, Action]]:
    """Feed `(time, event)` pairs in order; every action with its time."""
    return [(t, action) for t, event in history for action in ctl.handle(event, t)]


def lines(ctl: Controller, history: Iterable[tuple[float, Event]]) -> list[tuple[float, str]]:
    return [(t, show(action)) for t, action in replay(ctl, history)]


def step(ctl: Controller, t: float, event: Event) -> list[str]:
    """One event: its actions as lines."""
    return [show(action) for action in ctl.handle(event, t)]


def boot(ctl: Controller, t: float = 0.0, pid: int = 10) -> dict[str, int]:
    """Start everything as the shell would: each Spawn is carried out (a
    `Started` with the next pid) while the instance still wants it; probes
    are left running.  Returns the pids."""
    pids: dict[str, int] = {}
    todo = [a.name for a in ctl.handle(Start(), t) if isinstance(a, Spawn)]
    while todo:
        name = todo.pop(0)
        inst = ctl.instances[name]
        if inst.state is not S.STARTING or inst.pid is not None:
            continue
        pids[name] = pid
        actions = ctl.handle(Started(name, pid), t)
        pid += 1
        todo += [a.name for a in actions if isinstance(a, Spawn)]
    return pids


def states(ctl: Controller) -> dict[str, State]:
    return {name: inst.state for name, inst in ctl.instances.items()}


def exit_code(ctl: Controller) -> int:
    """As the shell reports it: no deciding event means 0."""
    return ctl.exit_code or 0


def tcp(target: str = "$PORT", timeout: float = 60.0) -> ProbeSpec:
    return ProbeSpec("tcp", target, timeout=timeout)


# -- start-up -------------------------------------------------------------------


def test_start_spawns_the_first_in_procfile_order() -> None:
    ctl = Controller([spec("b.1"), spec("a.1"), spec("c.1")])
    assert ctl.next_deadline() is None and not ctl.finished
    assert step(ctl, 0, Start()) == ["spawn b.1"]
    assert states(ctl) == {"b.1": S.STARTING, "a.1": S.WAITING, "c.1": S.WAITING}


def test_next_spawn_comes_with_started() -> None:
    probe = tcp()
    ctl = Controller([spec("b.1", ready=probe), spec("a.1", ready=probe), spec("c.1")])
    assert lines(
        ctl,
        [
            (0, Start()),
            (0.1, Started("b.1", 10)),
            (0.2, Started("a.1", 11)),
            (0.3, Started("c.1", 12)),
        ],
    ) == [
        (0, "spawn b.1"),
        (0.1, "starting: b.1 started (pid=10)"),
        (0.1, "probe b.1"),
        (0.1, "spawn a.1"),
        (0.2, "starting: a.1 started (pid=11)"),
        (0.2, "probe a.1"),
        (0.2, "spawn c.1"),
        (0.3, "starting: c.1 started (pid=12)"),
    ]
    assert states(ctl) == {"b.1": S.STARTING, "a.1": S.STARTING, "c.1": S.READY}
    assert ctl.next_deadline() is None  # probes time themselves


def test_started_without_probe_spawns_only_the_next_one() -> None:
    ctl = Controller([spec("a.1"), spec("b.1"), spec("c.1")])
    assert lines(ctl, [(0, Start()), (1, Started("a.1", 10))]) == [
        (0, "spawn a.1"),
        (1, "starting: a.1 started (pid=10)"),
        (1, "spawn b.1"),
    ]


def test_after_waits_for_ready_and_says_so_once() -> None:
    ctl = Controller(
        [
            spec("web.1", after=("db",)),
            spec("db.1", ready=tcp("5432")),
            spec("worker.1", ready=tcp("9000")),
        ]
    )
    assert lines(
        ctl,
        [
            (0, Start()),
            (1, Started("db.1", 10)),
            (2, Started("worker.1", 11)),
            (3, Ready("worker.1")),
            (4, Ready("db.1")),
            (5, Started("web.1", 12)),
        ],
    ) == [
        (0, "waiting: web.1 waiting for db"),
        (0, "spawn db.1"),
        (1, "starting: db.1 started (pid=10)"),
        (1, "probe db.1"),
        (1, "spawn worker.1"),
        (2, "starting: worker.1 started (pid=11)"),
        (2, "probe worker.1"),
        (3, "ready: worker.1 ready (tcp:9000)"),
        (4, "ready: db.1 ready (tcp:5432)"),
        (4, "spawn web.1"),
        (5, "starting: web.1 started (pid=12)"),
    ]
    assert states(ctl) == {"web.1": S.READY, "db.1": S.READY, "worker.1": S.READY}


def test_after_waits_for_every_instance_and_every_type() -> None:
    probe = tcp()
    ctl = Controller(
        [
            spec("web.1", after=("db", "cache")),
            spec("db.1", ready=probe),
            spec("db.2", ready=probe),
            spec("cache.1", ready=probe),
        ]
    )
    out = lines(
        ctl,
        [
            (0, Start()),
            (0, Started("db.1", 10)),
            (0, Started("db.2", 11)),
            (0, Started("cache.1", 12)),
            (1, Ready("db.1")),
            (2, Ready("cache.1")),
        ],
    )
    assert out[0] == (0, "waiting: web.1 waiting for db, cache")
    assert [line for _, line in out].count("waiting: web.1 waiting for db, cache") == 1
    assert not any("spawn web.1" in line for _, line in out)  # db.2 is not ready
    assert step(ctl, 3, Ready("db.2")) == ["ready: db.2 ready (tcp:$PORT)", "spawn web.1"]


def test_after_a_oneshot_waits_for_its_success() -> None:
    ctl = Controller([spec("migrate.1", oneshot=True), spec("web.1", after=("migrate",))])
    assert lines(
        ctl, [(0, Start()), (0.5, Started("migrate.1", 10)), (7, Exited("migrate.1", 0))]
    ) == [
        (0, "spawn migrate.1"),
        (0.5, "starting: migrate.1 started (pid=10)"),
        (0.5, "waiting: web.1 waiting for migrate"),  # started is not enough
        (7, "cancel-probe migrate.1"),
        (7, "exited: migrate.1 completed (rc=0)"),
        (7, "spawn web.1"),
    ]
    assert ctl.phase is Phase.RUNNING
    assert states(ctl) == {"migrate.1": S.DONE, "web.1": S.STARTING}


def test_after_a_type_not_in_this_run_is_no_wait() -> None:
    ctl = Controller([spec("web.1", after=("db", "release"))])
    assert step(ctl, 0, Start()) == ["spawn web.1"]


def test_not_ready_stops_everything_with_exit_1() -> None:
    ctl = Controller([spec("db.1", ready=tcp("5432", timeout=30)), spec("web.1", after=("db",))])
    replay(ctl, [(0, Start()), (0, Started("db.1", 10))])
    assert step(ctl, 30, NotReady("db.1", "connection refused")) == [
        "failed: db.1 not ready after 30s (tcp:5432): connection refused; stopping",
        "cancel-probe db.1",
        "stopping: sending SIGTERM to db.1 (pid 10)",
        "send db.1 SIGTERM",
        "send db.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 1
    assert states(ctl) == {"db.1": S.STOPPING, "web.1": S.EXITED}  # web never starts


def test_not_ready_without_a_reason() -> None:
    ctl = Controller([spec("db.1", ready=ProbeSpec("cmd", "pg_isready -q", timeout=2.5))])
    replay(ctl, [(0, Start()), (0, Started("db.1", 10))])
    assert step(ctl, 2.5, NotReady("db.1"))[0] == (
        "failed: db.1 not ready after 2.5s (cmd:pg_isready -q); stopping"
    )
    assert ctl.exit_code == 1


def test_late_probe_results_are_ignored() -> None:
    ctl = Controller([spec("db.1", ready=tcp()), spec("web.1", ready=tcp())])
    replay(ctl, [(0, Start()), (0, Started("db.1", 10)), (0, Started("web.1", 11))])
    assert step(ctl, 1, Ready("db.1")) == ["ready: db.1 ready (tcp:$PORT)"]
    assert step(ctl, 2, NotReady("db.1", "late")) == []  # already ready
    assert step(ctl, 2, Ready("db.1")) == []
    replay(ctl, [(3, Signal(TERM))])
    assert step(ctl, 4, Ready("web.1")) == []  # stopping: no "ready" line
    assert step(ctl, 4, NotReady("web.1", "x")) == []
    assert ctl.exit_code == 143


# -- the first exit -----------------------------------------------------------------


def layered() -> Controller:
    """db below web and worker (each with its own stop signal), clock beside."""
    return Controller(
        [
            spec("db.1", stop_signal=INT, stop_timeout=20.0),
            spec("web.1", after=("db",), stop_signal=signal.SIGQUIT),
            spec("worker.1", after=("db",)),
            spec("clock.1"),
        ]
    )


def test_first_exit_stops_dependents_before_their_dependencies() -> None:
    ctl = layered()
    assert boot(ctl) == {"db.1": 10, "web.1": 11, "worker.1": 12, "clock.1": 13}
    assert lines(
        ctl,
        [
            (50, Exited("clock.1", 3)),
            (50.5, Exited("web.1", 0)),
            (51.5, Exited("worker.1", 143)),
            (52, Exited("db.1", 0)),
        ],
    ) == [
        (50, "cancel-probe clock.1"),
        (50, "exited: clock.1 stopped (rc=3)"),
        (50, "cancel-probe db.1"),
        (50, "cancel-probe web.1"),
        (50, "cancel-probe worker.1"),
        (50, "stopping: sending SIGQUIT to web.1 (pid 11)"),
        (50, "send web.1 SIGQUIT"),
        (50, "send web.1 SIGCONT"),
        (50, "stopping: sending SIGTERM to worker.1 (pid 12)"),
        (50, "send worker.1 SIGTERM"),
        (50, "send worker.1 SIGCONT"),
        (50, "orphans SIGTERM"),
        (50.5, "cancel-probe web.1"),
        (50.5, "exited: web.1 stopped (rc=0)"),
        (51.5, "cancel-probe worker.1"),
        (51.5, "exited: worker.1 stopped (rc=143)"),
        (51.5, "stopping: sending SIGINT to db.1 (pid 10)"),
        (51.5, "send db.1 SIGINT"),
        (51.5, "send db.1 SIGCONT"),
        (52, "cancel-probe db.1"),
        (52, "exited: db.1 stopped (rc=0)"),
    ]
    assert ctl.exit_code == 3
    assert ctl.finished
    assert set(states(ctl).values()) == {S.EXITED}


def test_stop_phase_deadlines() -> None:
    ctl = layered()
    boot(ctl)
    replay(ctl, [(50, Exited("clock.1", 3))])
    assert ctl.phase is Phase.STOPPING and not ctl.finished
    # the first "still waiting" line is the nearest
    assert ctl.next_deadline() == 50 + STATUS_INTERVAL
    assert step(ctl, 50.9, Tick()) == []


@pytest.mark.parametrize("code", [0, 1, 3, 137, 255])
def test_exit_code_is_the_first_exits(code: int) -> None:
    ctl = Controller([spec("web.1"), spec("worker.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", code)), (2, Exited("web.1", 99))])
    assert ctl.exit_code == code and ctl.finished


def test_later_events_keep_the_exit_code() -> None:
    ctl = Controller([spec("web.1"), spec("worker.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", 2)), (1.1, Signal(TERM)), (1.2, OutputLost())])
    assert ctl.exit_code == 2


def test_stop_signal_sigcont_is_sent_once() -> None:
    ctl = Controller([spec("web.1", stop_signal=CONT)])
    boot(ctl)
    assert step(ctl, 1, Signal(TERM))[-3:] == [
        "stopping: sending SIGCONT to web.1 (pid 10)",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]


# -- signals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "name", "code"),
    [
        (TERM, "SIGTERM", 143),
        (INT, "SIGINT", 130),
        (signal.SIGPWR, "SIGPWR", 128 + signal.SIGPWR),
        (signal.SIGRTMIN + 3, "SIGRTMIN+3", 128 + signal.SIGRTMIN + 3),
    ],
)
def test_terminating_signals(signum: int, name: str, code: int) -> None:
    ctl = Controller([spec("web.1"), spec("worker.1", stop_signal=INT)])
    boot(ctl)
    assert step(ctl, 5, Signal(signum)) == [
        f"signal: {name} received",
        "cancel-probe web.1",
        "cancel-probe worker.1",
        "stopping: sending SIGTERM to web.1 (pid 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "stopping: sending SIGINT to worker.1 (pid 11)",
        "send worker.1 SIGINT",
        "send worker.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == code and ctl.phase is Phase.STOPPING


def test_second_terminating_signal_kills_at_once() -> None:
    ctl = Controller([spec("db.1"), spec("web.1", after=("db",)), spec("worker.1")])
    boot(ctl)
    replay(ctl, [(1, Signal(TERM)), (1.5, Exited("worker.1", 143))])
    assert step(ctl, 2, Signal(INT)) == [
        "signal: SIGINT received",
        "killing: sending SIGKILL to db.1 (pid 10)",  # not yet sent its stop signal
        "send db.1 SIGKILL",
        "killing: sending SIGKILL to web.1 (pid 11)",
        "send web.1 SIGKILL",
        "orphans SIGKILL",
    ]
    assert ctl.exit_code == 143 and ctl.phase is Phase.KILLING
    assert step(ctl, 3, Signal(TERM)) == ["signal: SIGTERM received"]  # nothing more to do
    assert step(ctl, 4, Tick()) == []  # no "still waiting" once killing
    assert lines(ctl, [(5, Exited("web.1", 137)), (6, Exited("db.1", 137))]) == [
        (5, "cancel-probe web.1"),
        (5, "exited: web.1 stopped (rc=137)"),
        (6, "cancel-probe db.1"),
        (6, "exited: db.1 stopped (rc=137)"),
    ]
    assert ctl.finished and ctl.exit_code == 143


def test_a_first_sigterm_after_a_first_exit_keeps_the_grace() -> None:
    """Once a first exit started the stop, `docker stop`'s SIGTERM is still
    the first stop *signal*: the grace goes on; only a second one kills at
    once. The exit code stays the first exit's."""
    ctl = Controller([spec("web.1"), spec("worker.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", 3))])
    assert step(ctl, 2, Signal(TERM)) == ["signal: SIGTERM received"]
    assert ctl.phase is Phase.STOPPING
    assert step(ctl, 3, Signal(TERM)) == [
        "signal: SIGTERM received",
        "killing: sending SIGKILL to web.1 (pid 10)",
        "send web.1 SIGKILL",
        "orphans SIGKILL",
    ]
    assert ctl.exit_code == 3


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGUSR1, signal.SIGQUIT, signal.SIGWINCH])
def test_other_signals_are_forwarded(signum: int) -> None:
    ctl = Controller([spec("web.1"), spec("migrate.1", oneshot=True), spec("worker.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("migrate.1", 0))])
    name = signal.Signals(signum).name
    assert step(ctl, 2, Signal(signum)) == [
        f"signal: {name} received, forwarding to web.1, worker.1",
        f"send web.1 {name}",
        f"send worker.1 {name}",
    ]
    assert ctl.phase is Phase.RUNNING and ctl.exit_code is None
    assert ctl.next_deadline() is None


def test_forwarding_to_nobody() -> None:
    ctl = Controller([spec("web.1", after=("db",)), spec("db.1")])
    ctl.handle(Start(), 0)  # db.1 spawned, not started yet
    assert step(ctl, 0, Signal(signal.SIGUSR2)) == [
        "signal: SIGUSR2 received, forwarding to nobody"
    ]


def test_sigchld_is_the_shells_business() -> None:
    ctl = Controller([spec("web.1")])
    boot(ctl)
    assert step(ctl, 1, Signal(signal.SIGCHLD)) == []
    assert ctl.phase is Phase.RUNNING


def test_signal_names() -> None:
    assert signame(signal.SIGTERM) == "SIGTERM"
    assert signame(signal.SIGRTMIN) == "SIGRTMIN"
    assert signame(signal.SIGRTMIN + 1) == "SIGRTMIN+1"
    assert signame(signal.SIGRTMAX) == f"SIGRTMIN+{signal.SIGRTMAX - signal.SIGRTMIN}"
    assert signame(0) == "signal 0"


# -- grace and SIGKILL ------------------------------------------------------------------


def test_sigkill_exactly_at_grace_and_once() -> None:
    ctl = Controller([spec("web.1")], grace=5.0)
    boot(ctl)
    replay(ctl, [(10, Signal(TERM))])
    assert ctl.next_deadline() == 11.0
    assert lines(
        ctl, [(11, Tick()), (12, Tick()), (13, Tick()), (14, Tick()), (14.99, Tick())]
    ) == [
        (11, "waiting: still waiting for web.1 (pid 10)"),
        (12, "waiting: still waiting for web.1 (pid 10)"),
        (13, "waiting: still waiting for web.1 (pid 10)"),
        (14, "waiting: still waiting for web.1 (pid 10)"),
    ]
    assert ctl.next_deadline() == 15.0
    # its own deadline and the overall one fall due together: one SIGKILL
    assert step(ctl, 15, Tick()) == [
        "killing: sending SIGKILL to web.1 (pid 10)",
        "send web.1 SIGKILL",
        "orphans SIGKILL",
    ]
    assert ctl.phase is Phase.KILLING
    assert step(ctl, 16, Tick()) == []
    assert step(ctl, 30, Tick()) == []
    assert step(ctl, 31, Exited("web.1", 137)) == [
        "cancel-probe web.1",
        "exited: web.1 stopped (rc=137)",
    ]
    assert ctl.finished and ctl.exit_code == 143


def test_own_stop_timeout_before_the_overall_deadline() -> None:
    ctl = Controller([spec("web.1", stop_timeout=2.0), spec("worker.1")], grace=5.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM)), (1, Tick())])
    assert ctl.next_deadline() == 2.0
    assert step(ctl, 2, Tick()) == [
        "killing: sending SIGKILL to web.1 (pid 10)",
        "send web.1 SIGKILL",
        "waiting: still waiting for web.1 (pid 10), worker.1 (pid 11)",
    ]
    assert ctl.phase is Phase.STOPPING
    assert lines(ctl, [(3, Tick()), (4, Exited("web.1", 137)), (5, Tick())]) == [
        (3, "waiting: still waiting for web.1 (pid 10), worker.1 (pid 11)"),
        (4, "cancel-probe web.1"),
        (4, "exited: web.1 stopped (rc=137)"),
        (5, "waiting: still waiting for worker.1 (pid 11)"),
        (5, "killing: sending SIGKILL to worker.1 (pid 11)"),
        (5, "send worker.1 SIGKILL"),
        (5, "orphans SIGKILL"),
    ]


def test_a_late_tick_catches_up_once() -> None:
    ctl = Controller([spec("web.1")], grace=5.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM))])
    assert step(ctl, 9, Tick()) == [
        "waiting: still waiting for web.1 (pid 10)",
        "killing: sending SIGKILL to web.1 (pid 10)",
        "send web.1 SIGKILL",
        "orphans SIGKILL",
    ]


def test_overall_deadline_adds_the_longest_grace_of_each_layer() -> None:
    ctl = Controller(
        [
            spec("db.1", stop_signal=INT, stop_timeout=20.0),
            spec("web.1", after=("db",), stop_timeout=3.0),
            spec("worker.1", after=("db",), stop_timeout=7.0),
        ],
        grace=5.0,
    )
    boot(ctl)
    replay(ctl, [(100, Signal(TERM)), (100.5, Exited("web.1", 0))])
    # worker.1 ignores SIGTERM: SIGKILL at its own 7 s
    assert [line for _, line in lines(ctl, [(107, Tick())]) if "still" not in line] == [
        "killing: sending SIGKILL to worker.1 (pid 12)",
        "send worker.1 SIGKILL",
    ]
    assert step(ctl, 107.5, Exited("worker.1", 137)) == [
        "cancel-probe worker.1",
        "exited: worker.1 stopped (rc=137)",
        "stopping: sending SIGINT to db.1 (pid 10)",
        "send db.1 SIGINT",
        "send db.1 SIGCONT",
    ]
    # db.1's own deadline would be 127.5; the overall one (7 + 20) comes first
    replay(ctl, [(t, Tick()) for t in range(108, 127)])
    assert ctl.next_deadline() == 127.0
    assert step(ctl, 127, Tick()) == [
        "killing: sending SIGKILL to db.1 (pid 10)",
        "send db.1 SIGKILL",
        "orphans SIGKILL",
    ]
    assert step(ctl, 127.5, Tick()) == []


def test_overall_deadline_is_the_grace_without_dependencies() -> None:
    ctl = Controller([spec("web.1", stop_timeout=1.0), spec("worker.1", stop_timeout=2.0)], 9.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM)), (0.5, Exited("web.1", 0)), (0.6, Exited("worker.1", 0))])
    assert ctl.finished
    assert ctl.next_deadline() == 1.0  # a status line, which finds nobody
    assert step(ctl, 1.0, Tick()) == []
    # what is left is the overall deadline, for adopted orphans the shell still waits for
    assert ctl.next_deadline() == 2.0
    assert step(ctl, 2.0, Tick()) == ["orphans SIGKILL"]
    assert ctl.next_deadline() is None


def test_still_waiting_every_second_while_stopping() -> None:
    ctl = Controller([spec("db.1"), spec("web.1", after=("db",))], grace=10.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM))])
    history: list[tuple[float, Event]] = [
        (1, Tick()),
        (1.5, Exited("web.1", 0)),
        (2, Tick()),
        (2.5, Tick()),
        (3, Tick()),
        (3.2, Exited("db.1", 0)),
        (4, Tick()),
        (5, Tick()),
    ]
    assert lines(ctl, history) == [
        (1, "waiting: still waiting for db.1 (pid 10), web.1 (pid 11)"),
        (1.5, "cancel-probe web.1"),
        (1.5, "exited: web.1 stopped (rc=0)"),
        (1.5, "stopping: sending SIGTERM to db.1 (pid 10)"),
        (1.5, "send db.1 SIGTERM"),
        (1.5, "send db.1 SIGCONT"),
        (2, "waiting: still waiting for db.1 (pid 10)"),
        (3, "waiting: still waiting for db.1 (pid 10)"),
        (3.2, "cancel-probe db.1"),
        (3.2, "exited: db.1 stopped (rc=0)"),
    ]
    assert ctl.finished and ctl.exit_code == 143


# -- restarts -------------------------------------------------------------------------


def test_backoff_doubles_to_max_delay_then_the_limit_stops() -> None:
    restart = RestartPolicy(mode="on-failure", delay=1.0, max_delay=4.0, limit=5, window=60.0)
    ctl = Controller([spec("worker.1", restart=restart), spec("web.1")])
    assert boot(ctl) == {"worker.1": 10, "web.1": 11}
    t, pid = 0.0, 20
    delays = []
    for attempt in range(1, 6):
        t += 0.5
        out = step(ctl, t, Exited("worker.1", 1))
        delay = [1.0, 2.0, 4.0, 4.0, 4.0][attempt - 1]
        delays.append(ctl.next_deadline())
        assert out == [
            "cancel-probe worker.1",
            f"restarting: worker.1 exited (rc=1); restarting in {delay:.1f}s (attempt {attempt}/5)",
        ]
        assert ctl.instances["worker.1"].state is S.BACKOFF and ctl.phase is Phase.RUNNING
        assert step(ctl, t + delay - 0.01, Tick()) == []
        t += delay
        assert step(ctl, t, Tick()) == ["spawn worker.1"]
        assert ctl.next_deadline() is None
        assert step(ctl, t, Started("worker.1", pid)) == [f"starting: worker.1 started (pid={pid})"]
        pid += 1
    assert delays == [1.5, 4.0, 8.5, 13.0, 17.5]
    assert step(ctl, t + 0.5, Exited("worker.1", 1)) == [
        "cancel-probe worker.1",
        "exited: worker.1 exited (rc=1); restart limit reached (5 in 60s); stopping",
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 11)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 1


def test_on_failure_exit_0_is_a_first_exit() -> None:
    ctl = Controller([spec("worker.1", restart=RestartPolicy(mode="on-failure"))])
    boot(ctl)
    assert step(ctl, 1, Exited("worker.1", 0)) == [
        "cancel-probe worker.1",
        "exited: worker.1 stopped (rc=0)",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 0 and ctl.finished


def test_always_restarts_exit_0_and_signal_deaths() -> None:
    ctl = Controller([spec("worker.1", restart=RestartPolicy(mode="always", limit=9))])
    boot(ctl)
    assert step(ctl, 1, Exited("worker.1", 0))[1] == (
        "restarting: worker.1 exited (rc=0); restarting in 1.0s (attempt 1/9)"
    )
    replay(ctl, [(2, Tick()), (2, Started("worker.1", 11))])
    assert step(ctl, 3, Exited("worker.1", 137))[1] == (
        "restarting: worker.1 exited (rc=137); restarting in 2.0s (attempt 2/9)"
    )


def history_of_restarts(ctl: Controller, ups: list[float]) -> list[str]:
    """worker.1 stays up for each of `ups` seconds, exits 1, and is restarted
    when its back-off is over; the restart lines."""
    t, pid, out = 0.0, 11, []
    for up in ups:
        t += up
        out += [line for line in step(ctl, t, Exited("worker.1", 1)) if "cancel" not in line]
        due = ctl.next_deadline()
        if ctl.phase is not Phase.RUNNING or due is None:
            break
        t = due
        assert step(ctl, t, Tick()) == ["spawn worker.1"]
        step(ctl, t, Started("worker.1", pid))
        pid += 1
    return out


def test_backoff_resets_after_reset_after_seconds_up() -> None:
    restart = RestartPolicy(mode="always", delay=1.0, limit=100, reset_after=10.0)
    ctl = Controller([spec("worker.1", restart=restart)])
    boot(ctl)
    assert history_of_restarts(ctl, [1, 1, 9.75, 10, 1]) == [
        "restarting: worker.1 exited (rc=1); restarting in 1.0s (attempt 1/100)",
        "restarting: worker.1 exited (rc=1); restarting in 2.0s (attempt 2/100)",
        "restarting: worker.1 exited (rc=1); restarting in 4.0s (attempt 3/100)",
        "restarting: worker.1 exited (rc=1); restarting in 1.0s (attempt 4/100)",
        "restarting: worker.1 exited (rc=1); restarting in 2.0s (attempt 5/100)",
    ]


def test_restart_window_forgets_old_restarts() -> None:
    restart = RestartPolicy(
        mode="always", delay=1.0, max_delay=2.0, limit=2, window=10.0, reset_after=1e9
    )
    ctl = Controller([spec("worker.1", restart=restart)])
    boot(ctl)
    # restarts at 1 and 3; at 12 the one at 1 has left the window, at 14.5
    # the one at 3; at 17 two (12, 14.5) are within it
    assert history_of_restarts(ctl, [1, 1, 7, 0.5, 0.5]) == [
        "restarting: worker.1 exited (rc=1); restarting in 1.0s (attempt 1/2)",
        "restarting: worker.1 exited (rc=1); restarting in 2.0s (attempt 2/2)",
        "restarting: worker.1 exited (rc=1); restarting in 2.0s (attempt 2/2)",
        "restarting: worker.1 exited (rc=1); restarting in 2.0s (attempt 2/2)",
        "exited: worker.1 exited (rc=1); restart limit reached (2 in 10s); stopping",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 1 and ctl.finished


def test_a_streak_of_2000_restarts_stays_at_max_delay() -> None:
    restart = RestartPolicy(
        mode="always", delay=1.0, max_delay=30.0, limit=10**6, window=1e9, reset_after=1e9
    )
    ctl = Controller([spec("worker.1", restart=restart)])
    boot(ctl)
    out = history_of_restarts(ctl, [0.5] * 2000)
    assert len(out) == 2000
    assert (
        out[-1] == "restarting: worker.1 exited (rc=1); restarting in 30.0s (attempt 2000/1000000)"
    )
    assert all("in 30.0s" in line for line in out[5:])
    assert ctl.phase is Phase.RUNNING


def test_signal_during_backoff_cancels_the_respawn() -> None:
    ctl = Controller([spec("worker.1", restart=RestartPolicy(mode="always")), spec("web.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", 1))])
    assert ctl.next_deadline() == 2.0
    assert step(ctl, 1.5, Signal(TERM)) == [
        "signal: SIGTERM received",
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 11)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.instances["worker.1"].state is S.EXITED
    assert ctl.next_deadline() == 2.5  # the status line, not the respawn
    assert step(ctl, 2.0, Tick()) == []


def test_respawn_not_carried_out_is_cancelled_by_a_signal() -> None:
    ctl = Controller([spec("worker.1", restart=RestartPolicy(mode="always"))])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", 1)), (2, Tick())])  # Spawn worker.1
    assert step(ctl, 2, Signal(TERM)) == ["signal: SIGTERM received", "orphans SIGTERM"]
    assert ctl.instances["worker.1"].state is S.EXITED
    assert ctl.finished and ctl.exit_code == 143


# -- one-shots -----------------------------------------------------------------------


def test_failing_oneshot_stops_with_its_code() -> None:
    ctl = Controller(
        [
            spec("db.1"),
            spec("migrate.1", oneshot=True, after=("db",)),
            spec("web.1", after=("migrate",)),
        ]
    )
    boot(ctl)
    assert states(ctl) == {"db.1": S.READY, "migrate.1": S.READY, "web.1": S.WAITING}
    assert step(ctl, 3, Exited("migrate.1", 2)) == [
        "cancel-probe migrate.1",
        "exited: migrate.1 stopped (rc=2)",
        "cancel-probe db.1",
        "stopping: sending SIGTERM to db.1 (pid 10)",
        "send db.1 SIGTERM",
        "send db.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 2
    assert states(ctl) == {"db.1": S.STOPPING, "migrate.1": S.EXITED, "web.1": S.EXITED}


def test_run_timeout_stops_with_124() -> None:
    ctl = Controller(
        [spec("release.1", oneshot=True, run_timeout=300.0), spec("web.1", after=("release",))]
    )
    replay(ctl, [(0, Start()), (1, Started("release.1", 10))])
    assert ctl.next_deadline() == 301.0
    assert step(ctl, 300.9, Tick()) == []
    assert step(ctl, 301, Tick()) == [
        "failed: release.1 still running after 300s; stopping",
        "cancel-probe release.1",
        "stopping: sending SIGTERM to release.1 (pid 10)",
        "send release.1 SIGTERM",
        "send release.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 124
    assert step(ctl, 302, Exited("release.1", 143)) == [
        "cancel-probe release.1",
        "exited: release.1 stopped (rc=143)",
    ]
    assert ctl.exit_code == 124 and ctl.finished


def test_run_timeout_is_forgotten_once_done() -> None:
    ctl = Controller(
        [spec("release.1", oneshot=True, run_timeout=300.0), spec("web.1", after=("release",))]
    )
    replay(ctl, [(0, Start()), (0, Started("release.1", 10)), (10, Exited("release.1", 0))])
    assert ctl.next_deadline() is None
    replay(ctl, [(10, Started("web.1", 11))])
    assert step(ctl, 400, Tick()) == []
    assert ctl.phase is Phase.RUNNING


def readme_app() -> Controller:
    """README's example: db (probe), release after db, web and worker after both."""
    return Controller(
        [
            spec("release.1", oneshot=True, after=("db",), run_timeout=300.0),
            spec(
                "db.1",
                ready=ProbeSpec("cmd", "pg_isready -q"),
                stop_signal=INT,
                stop_timeout=20.0,
            ),
            spec(
                "web.1",
                after=("db", "release"),
                ready=ProbeSpec("http", "$PORT/health"),
                stop_signal=signal.SIGQUIT,
            ),
            spec("worker.1", after=("db", "release"), stop_signal=INT),
        ],
        grace=5.0,
    )


def test_release_phase_start_up() -> None:
    ctl = readme_app()
    assert lines(
        ctl,
        [
            (0, Start()),
            (0.1, Started("db.1", 10)),
            (2, Ready("db.1")),
            (2.1, Started("release.1", 11)),
            (9, Exited("release.1", 0)),
            (9.1, Started("web.1", 12)),
            (9.2, Started("worker.1", 13)),
            (10, Ready("web.1")),
        ],
    ) == [
        (0, "waiting: release.1 waiting for db"),
        (0, "spawn db.1"),
        (0.1, "starting: db.1 started (pid=10)"),
        (0.1, "probe db.1"),
        (0.1, "waiting: web.1 waiting for db, release"),
        (0.1, "waiting: worker.1 waiting for db, release"),
        (2, "ready: db.1 ready (cmd:pg_isready -q)"),
        (2, "spawn release.1"),
        (2.1, "starting: release.1 started (pid=11)"),
        (9, "cancel-probe release.1"),
        (9, "exited: release.1 completed (rc=0)"),
        (9, "spawn web.1"),
        (9.1, "starting: web.1 started (pid=12)"),
        (9.1, "probe web.1"),
        (9.1, "spawn worker.1"),
        (9.2, "starting: worker.1 started (pid=13)"),
        (10, "ready: web.1 ready (http:$PORT/health)"),
    ]
    assert ctl.next_deadline() is None  # the release's run timeout went with it
    # on stop web and worker go first, the database last
    assert lines(
        ctl, [(20, Signal(TERM)), (21, Exited("web.1", 0)), (22, Exited("worker.1", 0))]
    ) == [
        (20, "signal: SIGTERM received"),
        (20, "cancel-probe db.1"),
        (20, "cancel-probe web.1"),
        (20, "cancel-probe worker.1"),
        (20, "stopping: sending SIGQUIT to web.1 (pid 12)"),
        (20, "send web.1 SIGQUIT"),
        (20, "send web.1 SIGCONT"),
        (20, "stopping: sending SIGINT to worker.1 (pid 13)"),
        (20, "send worker.1 SIGINT"),
        (20, "send worker.1 SIGCONT"),
        (20, "orphans SIGTERM"),
        (21, "cancel-probe web.1"),
        (21, "exited: web.1 stopped (rc=0)"),
        (22, "cancel-probe worker.1"),
        (22, "exited: worker.1 stopped (rc=0)"),
        (22, "stopping: sending SIGINT to db.1 (pid 10)"),
        (22, "send db.1 SIGINT"),
        (22, "send db.1 SIGCONT"),
    ]
    assert ctl.next_deadline() == 21.0  # a status line
    replay(ctl, [(t, Tick()) for t in range(21, 42)])
    assert ctl.next_deadline() == 42.0
    assert step(ctl, 42, Tick()) == [  # db.1's own grace, from its stop signal
        "killing: sending SIGKILL to db.1 (pid 10)",
        "send db.1 SIGKILL",
        "waiting: still waiting for db.1 (pid 10)",
    ]
    replay(ctl, [(t, Tick()) for t in range(43, 50)])
    # the overall deadline: web+worker (5 s), release (5 s), db (20 s) after the signal
    assert ctl.next_deadline() == 50.0
    assert step(ctl, 50, Tick()) == ["orphans SIGKILL"]
    assert states(ctl)["release.1"] is S.DONE


def test_release_failure_stops_the_database_and_starts_nothing() -> None:
    ctl = readme_app()
    replay(
        ctl,
        [(0, Start()), (0, Started("db.1", 10)), (1, Ready("db.1")), (1, Started("release.1", 11))],
    )
    assert step(ctl, 5, Exited("release.1", 3)) == [
        "cancel-probe release.1",
        "exited: release.1 stopped (rc=3)",
        "cancel-probe db.1",
        "stopping: sending SIGINT to db.1 (pid 10)",
        "send db.1 SIGINT",
        "send db.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 3
    assert states(ctl) == {
        "release.1": S.EXITED,
        "db.1": S.STOPPING,
        "web.1": S.EXITED,
        "worker.1": S.EXITED,
    }


def test_everything_finished_by_itself_exits_0() -> None:
    ctl = Controller([spec("a.1", oneshot=True), spec("b.1", oneshot=True, after=("a",))])
    boot(ctl)
    assert step(ctl, 1, Exited("a.1", 0)) == [
        "cancel-probe a.1",
        "exited: a.1 completed (rc=0)",
        "spawn b.1",
    ]
    assert (ctl.phase, ctl.finished) == (Phase.RUNNING, False)
    step(ctl, 1, Started("b.1", 11))
    assert step(ctl, 2, Exited("b.1", 0)) == [
        "cancel-probe b.1",
        "exited: b.1 completed (rc=0)",
        "orphans SIGTERM",
    ]
    assert ctl.phase is Phase.STOPPING and ctl.finished
    assert ctl.exit_code is None and exit_code(ctl) == 0


# -- groups that outlive their leader --------------------------------------------------


@pytest.mark.parametrize(
    ("leader", "last", "rc"),
    [(143, 0, 0), (143, 137, 137), (0, 143, 0), (2, 0, 2)],
)
def test_lingering_group_is_stopped_when_it_is_gone(leader: int, last: int, rc: int) -> None:
    ctl = Controller([spec("web.1"), spec("worker.1")], grace=5.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM))])
    assert step(ctl, 0.5, Exited("web.1", leader, lingering=True)) == ["cancel-probe web.1"]
    assert states(ctl)["web.1"] is S.STOPPING
    assert step(ctl, 1, Tick()) == [
        "waiting: still waiting for web.1 (group 10), worker.1 (pid 11)"
    ]
    assert step(ctl, 1.5, GroupGone("web.1", last)) == [f"exited: web.1 stopped (rc={rc})"]
    assert ctl.instances["web.1"].state is S.EXITED and not ctl.finished


def test_lingering_group_gets_sigkill_by_its_group() -> None:
    ctl = Controller([spec("web.1")], grace=2.0)
    boot(ctl)
    replay(ctl, [(0, Signal(TERM)), (0.5, Exited("web.1", 143, lingering=True))])
    assert step(ctl, 2, Tick()) == [
        "waiting: still waiting for web.1 (group 10)",
        "killing: sending SIGKILL to web.1 (group 10)",
        "send web.1 SIGKILL",
        "orphans SIGKILL",
    ]
    assert not ctl.finished
    assert step(ctl, 2.1, GroupGone("web.1", 137)) == ["exited: web.1 stopped (rc=137)"]
    assert ctl.finished and ctl.exit_code == 143


def test_lingering_dependency_is_stopped_after_its_dependents() -> None:
    """db's shell died on its own while web still ran: db's group is stopped
    (by group) only after web."""
    ctl = Controller([spec("db.1"), spec("web.1", after=("db",))])
    boot(ctl)
    replay(ctl, [(0, Signal(TERM))])
    assert step(ctl, 0.2, Exited("db.1", 0, lingering=True)) == ["cancel-probe db.1"]
    assert step(ctl, 0.5, Exited("web.1", 0)) == [
        "cancel-probe web.1",
        "exited: web.1 stopped (rc=0)",
        "stopping: sending SIGTERM to db.1 (group 10)",
        "send db.1 SIGTERM",
        "send db.1 SIGCONT",
    ]
    assert step(ctl, 0.7, GroupGone("db.1", 0)) == ["exited: db.1 stopped (rc=0)"]
    assert ctl.finished


def test_done_oneshot_with_a_lingering_group_is_stopped_in_order() -> None:
    ctl = Controller(
        [
            spec("setup.1", oneshot=True),
            spec("migrate.1", oneshot=True, after=("setup",)),
            spec("web.1", after=("migrate",)),
        ]
    )
    boot(ctl)
    assert step(ctl, 1, Exited("setup.1", 0, lingering=True)) == [
        "cancel-probe setup.1",
        "exited: setup.1 completed (rc=0)",
        "spawn migrate.1",
    ]
    replay(ctl, [(1, Started("migrate.1", 11))])
    assert step(ctl, 2, Exited("migrate.1", 0, lingering=True)) == [
        "cancel-probe migrate.1",
        "exited: migrate.1 completed (rc=0)",
        "spawn web.1",
    ]
    replay(ctl, [(2, Started("web.1", 12))])
    assert lines(
        ctl,
        [
            (9, Signal(TERM)),
            (10, Exited("web.1", 0)),
            (11, GroupGone("migrate.1", 0)),
            (12, GroupGone("setup.1", 143)),
        ],
    ) == [
        (9, "signal: SIGTERM received"),
        (9, "cancel-probe web.1"),
        (9, "stopping: sending SIGTERM to web.1 (pid 12)"),
        (9, "send web.1 SIGTERM"),
        (9, "send web.1 SIGCONT"),
        (9, "orphans SIGTERM"),
        (10, "cancel-probe web.1"),
        (10, "exited: web.1 stopped (rc=0)"),
        (10, "stopping: sending SIGTERM to migrate.1 (group 11)"),
        (10, "send migrate.1 SIGTERM"),
        (10, "send migrate.1 SIGCONT"),
        (11, "stopping: sending SIGTERM to setup.1 (group 10)"),
        (11, "send setup.1 SIGTERM"),
        (11, "send setup.1 SIGCONT"),
    ]
    assert states(ctl) == {"setup.1": S.DONE, "migrate.1": S.DONE, "web.1": S.EXITED}
    assert ctl.finished and ctl.exit_code == 143


def test_all_done_with_lingering_groups_stops_them_and_exits_0() -> None:
    ctl = Controller([spec("a.1", oneshot=True)])
    boot(ctl)
    assert step(ctl, 1, Exited("a.1", 0, lingering=True)) == [
        "cancel-probe a.1",
        "exited: a.1 completed (rc=0)",
        "stopping: sending SIGTERM to a.1 (group 10)",
        "send a.1 SIGTERM",
        "send a.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert not ctl.finished
    assert step(ctl, 2, GroupGone("a.1", 143)) == []
    assert ctl.finished and exit_code(ctl) == 0 and states(ctl) == {"a.1": S.DONE}


def test_first_exit_with_a_lingering_group_shows_stopped_once() -> None:
    """The leader's exit while running shows `stopped`; its group, stopped in
    order afterwards, ends without a second `stopped` line."""
    ctl = Controller([spec("web.1"), spec("worker.1")])
    boot(ctl)
    assert step(ctl, 1, Exited("web.1", 0, lingering=True)) == [
        "cancel-probe web.1",
        "exited: web.1 stopped (rc=0)",
        "cancel-probe worker.1",
        "stopping: sending SIGTERM to web.1 (group 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "stopping: sending SIGTERM to worker.1 (pid 11)",
        "send worker.1 SIGTERM",
        "send worker.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert step(ctl, 2, GroupGone("web.1", 143)) == []
    assert ctl.instances["web.1"].state is S.EXITED
    assert ctl.exit_code == 0


def test_an_old_group_gone_while_running_changes_nothing() -> None:
    ctl = Controller([spec("worker.1", restart=RestartPolicy(mode="always")), spec("web.1")])
    boot(ctl)
    replay(ctl, [(1, Exited("worker.1", 1, lingering=True))])
    assert step(ctl, 1.5, GroupGone("worker.1", 0)) == []
    assert ctl.instances["worker.1"].state is S.BACKOFF and ctl.phase is Phase.RUNNING


# -- spawn failures, output --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason"), [(127, "No such file or directory"), (126, "Permission denied")]
)
def test_spawn_failure_stops_with_its_code(code: int, reason: str) -> None:
    ctl = Controller([spec("web.1"), spec("worker.1")])
    replay(ctl, [(0, Start()), (0, Started("web.1", 10))])
    assert step(ctl, 0, SpawnFailed("worker.1", code, reason)) == [
        f"failed: worker.1 failed to start: {reason}",
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == code
    assert states(ctl) == {"web.1": S.STOPPING, "worker.1": S.EXITED}


def test_a_spawn_not_carried_out_is_cancelled_by_a_signal() -> None:
    ctl = Controller([spec("web.1"), spec("worker.1"), spec("clock.1")])
    probe_free = lines(ctl, [(0, Start()), (0, Started("web.1", 10))])
    assert (0, "spawn worker.1") in probe_free
    assert step(ctl, 0.1, Signal(INT)) == [
        "signal: SIGINT received",
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert states(ctl) == {"web.1": S.STOPPING, "worker.1": S.EXITED, "clock.1": S.EXITED}
    assert ctl.exit_code == 130
    assert step(ctl, 0.2, Exited("web.1", 130)) == [
        "cancel-probe web.1",
        "exited: web.1 stopped (rc=130)",
    ]
    assert ctl.finished


def test_output_closed_exits_141() -> None:
    ctl = Controller([spec("web.1")])
    boot(ctl)
    assert step(ctl, 1, OutputLost()) == [
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 141


def test_output_failure_warns_and_exits_74() -> None:
    ctl = Controller([spec("web.1")])
    boot(ctl)
    assert step(ctl, 1, OutputLost(failed=True, reason="No space left on device")) == [
        "warn: cannot write output: No space left on device; stopping",
        "cancel-probe web.1",
        "stopping: sending SIGTERM to web.1 (pid 10)",
        "send web.1 SIGTERM",
        "send web.1 SIGCONT",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == 74


# -- corral run ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signum",
    [
        TERM,
        INT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGWINCH,
        signal.SIGPWR,
        signal.SIGRTMIN + 3,
    ],
)
def test_run_relays_every_signal(signum: int) -> None:
    ctl = RunController([spec("run")])
    assert boot(ctl) == {"run": 10}
    assert step(ctl, 1, Signal(signum)) == [f"send run {signame(signum)}"]
    assert step(ctl, 2, Signal(signum)) == [f"send run {signame(signum)}"]  # no escalation
    assert ctl.phase is Phase.RUNNING and ctl.exit_code is None


def test_run_ignores_sigchld() -> None:
    ctl = RunController([spec("run")])
    boot(ctl)
    assert step(ctl, 1, Signal(signal.SIGCHLD)) == []


@pytest.mark.parametrize("code", [0, 3, 143])
def test_run_ends_with_the_commands_code(code: int) -> None:
    ctl = RunController([spec("run")])
    boot(ctl)
    assert step(ctl, 1, Signal(TERM)) == ["send run SIGTERM"]
    assert step(ctl, 2, Exited("run", code)) == [
        "cancel-probe run",
        f"exited: run stopped (rc={code})",
        "orphans SIGTERM",
    ]
    assert ctl.exit_code == code and ctl.finished


def test_run_with_a_lingering_group() -> None:
    ctl = RunController([spec("run")], grace=3.0)
    boot(ctl)
    out = step(ctl, 1, Exited("run", 0, lingering=True))
    assert out[-4:] == [
        "stopping: sending SIGTERM to run (group 10)",
        "send run SIGTERM",
        "send run SIGCONT",
        "orphans SIGTERM",
    ]
    assert step(ctl, 1.5, Signal(signal.SIGHUP)) == ["send run SIGHUP"]
    assert step(ctl, 4, Tick())[-3:] == [
        "killing: sending SIGKILL to run (group 10)",
        "send run SIGKILL",
        "orphans SIGKILL",
    ]
    assert ctl.exit_code == 0


# -- finished and next_deadline ---------------------------------------------------------------


def test_finished_and_deadline_at_each_step() -> None:
    ctl = Controller(
        [spec("web.1"), spec("worker.1", restart=RestartPolicy(mode="on-failure"))], 5.0
    )
    expected: list[tuple[float, Event, bool, float | None]] = [
        (0, Start(), False, None),
        (0, Started("web.1", 10), False, None),
        (0, Started("worker.1", 11), False, None),  # idle: no wakeups at all
        (3, Exited("worker.1", 1), False, 4.0),  # its back-off
        (3.5, Tick(), False, 4.0),
        (4, Tick(), False, None),  # respawn asked for
        (4, Started("worker.1", 12), False, None),
        (8, Signal(TERM), False, 9.0),  # status line
        (9, Tick(), False, 10.0),
        (9.5, Exited("web.1", 143), False, 10.0),
        (9.7, Exited("worker.1", 143), True, 10.0),  # a status line finding nobody
        (10, Tick(), True, 13.0),  # the overall deadline (for adopted orphans)
    ]
    for t, event, finished, deadline in expected:
        ctl.handle(event, t)
        assert (t, event, ctl.finished, ctl.next_deadline()) == (t, event, finished, deadline)


def test_notice_fields() -> None:
    """The fields of the JSON log events."""
    ctl = Controller(
        [
            spec("web.1", after=("db",)),
            spec("db.1", ready=tcp("5432")),
            spec("w.1", restart=RestartPolicy("always")),
        ]
    )
    got = replay(
        ctl,
        [
            (0, Start()),
            (0, Started("db.1", 10)),
            (0, Started("w.1", 11)),
            (1, Ready("db.1")),
            (1, Started("web.1", 12)),
            (2, Exited("w.1", 1)),
            (3, Signal(signal.SIGHUP)),
            (4, Signal(TERM)),
            (5, Tick()),
            (9, Tick()),
            (10, Exited("web.1", 137)),
        ],
    )
    notices = [a for _, a in got if isinstance(a, Notice)]
    assert [(n.event, n.fields) for n in notices] == [
        ("waiting", {"process": "web.1", "waiting_for": ["db"]}),
        ("starting", {"process": "db.1", "pid": 10}),
        ("starting", {"process": "w.1", "pid": 11}),
        ("ready", {"process": "db.1"}),
        ("starting", {"process": "web.1", "pid": 12}),
        ("restarting", {"process": "w.1", "rc": 1, "delay": 1.0, "attempt": 1}),
        ("signal", {"signal": "SIGHUP"}),
        ("signal", {"signal": "SIGTERM"}),
        ("stopping", {"process": "web.1", "signal": "SIGTERM"}),
        ("waiting", {"waiting_for": "web.1 (pid 12), db.1 (pid 10)"}),
        ("waiting", {"waiting_for": "web.1 (pid 12), db.1 (pid 10)"}),
        ("killing", {"process": "web.1", "signal": "SIGKILL"}),
        ("exited", {"process": "web.1", "rc": 137}),
        ("stopping", {"process": "db.1", "signal": "SIGTERM"}),
    ]
    ctl2 = Controller([spec("m.1", oneshot=True), spec("x.1")])
    boot(ctl2)
    done = [a for a in ctl2.handle(Exited("m.1", 0), 1) if isinstance(a, Notice)]
    assert [(n.event, n.fields) for n in done] == [
        ("exited", {"process": "m.1", "rc": 0, "completed": True})
    ]


# -- properties over random apps and histories ------------------------------------------------


@st.composite
def apps(draw: st.DrawFn) -> list[ProcessSpec]:
    """1-5 types (a random `after` DAG), 1-2 instances each, random policies."""
    n = draw(st.integers(1, 5))
    kinds = [f"t{i}" for i in range(n)]
    specs = []
    for i, kind in enumerate(kinds):
        after = tuple(draw(st.lists(st.sampled_from(kinds[:i]), unique=True))) if i else ()
        policy = Policy(
            oneshot=draw(st.booleans()),
            restart=RestartPolicy(
                mode=draw(st.sampled_from(["no", "on-failure", "always"])),
                delay=0.5,
                max_delay=2.0,
                limit=draw(st.integers(0, 3)),
            ),
            after=after,
            ready=draw(st.none() | st.just(tcp(timeout=3.0))),
            stop_signal=draw(st.sampled_from([TERM, INT, signal.SIGQUIT, CONT])),
            stop_timeout=draw(st.none() | st.sampled_from([0.0, 1.0, 2.5])),
            run_timeout=draw(st.none() | st.sampled_from([1.0, 4.0])),
        )
        for j in range(draw(st.integers(1, 2))):
            specs.append(ProcessSpec(name=f"{kind}.{j + 1}", kind=kind, command="x", policy=policy))
    order = draw(st.permutations(range(len(specs))))
    return [specs[k] for k in order]


class World:
    """The shell and the processes, modelled: which leaders and groups live,
    which spawns and probes are pending.  Checks every action against it."""

    def __init__(self, ctl: Controller) -> None:
        self.ctl = ctl
        self.now = 0.0
        self.pid = 100
        self.spawns: list[str] = []
        self.leaders: set[str] = set()
        self.groups: set[str] = set()  # live groups (leader or not)
        self.probes: set[str] = set()
        self.done_by_itself = False
        self.actions: list[Action] = []  # since the last take()

    def feed(self, event: Event) -> list[Action]:
        running_before = self.ctl.phase is Phase.RUNNING
        actions = self.ctl.handle(event, self.now)
        self.actions += actions
        for action in actions:
            match action:
                case Spawn(name):
                    assert self.ctl.phase is Phase.RUNNING
                    assert name not in self.leaders
                    self.spawns.append(name)
                case Send(name, _):
                    assert name in self.groups, f"signal to a dead group: {name}"
                case StartProbe(name):
                    assert name in self.leaders
                    self.probes.add(name)
                case CancelProbe(name):
                    self.probes.discard(name)
        if not running_before:
            assert not any(isinstance(a, Spawn) for a in actions)
        if running_before and self.ctl.phase is not Phase.RUNNING and self.ctl.exit_code is None:
            assert self._all_done()  # everything finished by itself
            self.done_by_itself = True
        assert self.ctl.finished == (self.ctl.phase is not Phase.RUNNING and not self.groups)
        for name, inst in self.ctl.instances.items():
            assert inst.group_alive == (name in self.groups), name
            assert (inst.pid is not None) == (name in self.leaders), name
        return actions

    def take(self) -> list[Action]:
        taken, self.actions = self.actions, []
        return taken

    def _all_done(self) -> bool:
        return all(
            i.state is S.DONE or (i.state in (S.STOPPING, S.KILLING) and i.final is S.DONE)
            for i in self.ctl.instances.values()
        )

    def carry_out_spawn(self, fail: bool) -> None:
        name = self.spawns.pop(0)
        inst = self.ctl.instances[name]
        if inst.state is not S.STARTING or inst.pid is not None:
            return  # cancelled, or asked twice
        if fail:
            self.feed(SpawnFailed(name, 127, "No such file or directory"))
            return
        self.groups.discard(name)  # an earlier life's leftovers: plain orphans now
        self.pid += 1
        self.leaders.add(name)
        self.groups.add(name)
        self.feed(Started(name, self.pid))

    def leader_exits(self, name: str, code: int, lingering: bool) -> list[Action]:
        self.leaders.discard(name)
        if not lingering:
            self.groups.discard(name)
        self.probes.discard(name)
        return self.feed(Exited(name, code, lingering))

    def group_gone(self, name: str, code: int) -> None:
        self.groups.discard(name)
        self.feed(GroupGone(name, code))

    def tick(self, dt: float) -> None:
        self.now += dt
        self.feed(Tick())


@settings(max_examples=30, deadline=None)
@given(apps(), st.data())
def test_random_histories_keep_the_core_consistent(
    specs: list[ProcessSpec], data: st.DataObject
) -> None:
    """Whatever happens in whatever order: no illegal transition, signals only
    to live groups, no spawn once stopping, `finished` exactly when stopping
    and no group is left, and every history ends once the processes die."""
    ctl = Controller(specs, grace=2.0)
    world = World(ctl)
    world.feed(Start())
    for _ in range(data.draw(st.integers(0, 40))):
        moves = ["tick", "signal", "output"]
        moves += ["spawn"] if world.spawns else []
        moves += ["exit"] if world.leaders else []
        moves += ["gone"] if world.groups - world.leaders else []
        moves += ["probe"] if world.probes else []
        move = data.draw(st.sampled_from(moves))
        if move == "spawn":
            world.carry_out_spawn(fail=data.draw(st.integers(0, 9)) == 0)
        elif move == "exit":
            name = data.draw(st.sampled_from(sorted(world.leaders)))
            code = data.draw(st.sampled_from([0, 1, 137, 143]))
            world.leader_exits(name, code, lingering=data.draw(st.booleans()))
        elif move == "gone":
            name = data.draw(st.sampled_from(sorted(world.groups - world.leaders)))
            world.group_gone(name, data.draw(st.sampled_from([0, 143])))
        elif move == "probe":
            name = data.draw(st.sampled_from(sorted(world.probes)))
            world.probes.discard(name)
            world.feed(Ready(name) if data.draw(st.booleans()) else NotReady(name, "refused"))
        elif move == "signal":
            signum = data.draw(st.sampled_from([TERM, INT, signal.SIGHUP, signal.SIGCHLD]))
            world.feed(Signal(signum))
        elif move == "output":
            world.feed(OutputLost(failed=data.draw(st.booleans()), reason="EIO"))
        else:
            due = ctl.next_deadline()
            world.tick(
                max(0.0, due - world.now) if due is not None and data.draw(st.booleans()) else 0.3
            )
    # the end: stop, carry out what is pending, let every process die
    world.feed(Signal(TERM))
    while world.spawns:
        world.carry_out_spawn(fail=False)
    for name in sorted(world.leaders):
        world.leader_exits(name, 143, lingering=False)
    for name in sorted(world.groups):
        world.group_gone(name, 143)
    assert ctl.finished
    assert all(i.state in (S.EXITED, S.DONE) for i in ctl.instances.values())
    assert ctl.exit_code is not None or world.done_by_itself


@settings(max_examples=30, deadline=None)
@given(apps(), st.data())
def test_random_apps_start_and_stop_in_dependency_order(
    specs: list[ProcessSpec], data: st.DataObject
) -> None:
    """Every process starts only once its dependencies are ready (one-shots:
    done), and gets its stop signal only once nothing that waits for it runs
    (groups that outlive their leader included); shutdown never stalls while
    something can still be stopped."""
    specs = [
        ProcessSpec(
            name=s.name,
            kind=s.kind,
            command="x",
            policy=Policy(oneshot=s.policy.oneshot, after=s.policy.after, ready=s.policy.ready),
        )
        for s in specs
    ]
    ctl = Controller(specs)
    world = World(ctl)
    by_kind: dict[str, list[str]] = {}
    for s in specs:
        by_kind.setdefault(s.kind, []).append(s.name)
    after = {s.kind: s.policy.after for s in specs}
    dependents = {k: {d for d, a in after.items() if k in a} for k in after}

    def deps_met(name: str) -> bool:
        for dep in after[ctl.instances[name].kind]:
            want = S.DONE if ctl.instances[by_kind[dep][0]].spec.policy.oneshot else S.READY
            if any(ctl.instances[d].state is not want for d in by_kind[dep]):
                return False
        return True

    def check_order() -> None:
        for action in world.take():
            if isinstance(action, Send) and action.signum != CONT:
                kind = ctl.instances[action.name].kind
                live = {ctl.instances[n].kind for n in world.groups}
                assert not live & dependents[kind], f"{action.name} stopped before a dependent"

    world.feed(Start())
    while (
        world.spawns
        or world.probes
        or any(n in world.leaders and ctl.instances[n].spec.policy.oneshot for n in ctl.instances)
    ):
        if world.spawns:
            assert deps_met(world.spawns[0])
            world.carry_out_spawn(fail=False)
        elif world.probes:
            name = sorted(world.probes)[0]
            world.probes.discard(name)
            world.feed(Ready(name))
        else:
            name = next(n for n in sorted(world.leaders) if ctl.instances[n].spec.policy.oneshot)
            world.leader_exits(name, 0, lingering=data.draw(st.booleans()))
        check_order()
    # everything started (and every one-shot completed; a group it left may be stopping)
    assert all(i.state in (S.READY, S.DONE) or i.final is S.DONE for i in ctl.instances.values())
    if world.leaders:
        assert ctl.phase is Phase.RUNNING
        world.feed(Signal(TERM))
    else:
        assert ctl.phase is Phase.STOPPING  # finished by itself
    while world.groups:
        check_order()
        stopping = sorted(
            n for n in world.groups if ctl.instances[n].state in (S.STOPPING, S.KILLING)
        )
        assert stopping, f"stalled with {sorted(world.groups)} left"
        name = data.draw(st.sampled_from(stopping))
        if name in world.leaders:
            world.leader_exits(name, 0, lingering=data.draw(st.booleans()))
        else:
            world.group_gone(name, 0)
    check_order()
    assert ctl.finished
    assert all(i.state in (S.EXITED, S.DONE) for i in ctl.instances.values())
