"""The decision core: events in, actions out, nothing else.

Every rule of `corral start` and `corral run` lives here as a function of
events and a clock value passed in: first exit, stop signals, reverse
dependency order, grace and SIGKILL escalation, restart back-off, readiness
gating and timeouts, the release phase (an `after` dependency like any
other), one-shots, exit codes.  It never reads a clock, a pid table or a
file descriptor, so tests replay histories through it with a fake clock and
check the exact actions (tests/unit/test_policy.py); the supervisor is the
I/O shell that feeds it and carries its actions out.

Deadlines (a grace period, a back-off, a run timeout, the next "still
waiting" line) are data here: `next_deadline()` tells the shell when to call
`handle(Tick(), now)`.  A deadline carries the instance's `generation`, so
one set for an earlier life of the instance is ignored.

Exit code: the deciding event's (the first exit's code, 128+N for signal N,
141 when stdout closed, 74 when writing it failed, 1 for a probe timeout,
124 for a run timeout, 126/127 for an exec failure), else 0.
"""

from __future__ import annotations

import enum
import heapq
import itertools
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from corral import deps
from corral.instance import PENDING, RUNNING, Instance, State
from corral.signals import TERMINATING  # they start group termination
from corral.signals import name as signame
from corral.specs import ProcessSpec

DEFAULT_GRACE = 5.0
STATUS_INTERVAL = 1.0  # while stopping: say whom we are still waiting for
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE
EXIT_OUTPUT_FAILED = 74  # EX_IOERR (sysexits.h): stdout failed (disk full, file too large)
EXIT_NOT_READY = 1
EXIT_TIMED_OUT = 124  # as timeout(1)

S = State


# -- events -------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The beginning: start whatever can start."""


@dataclass(frozen=True)
class Started:
    name: str
    pid: int


@dataclass(frozen=True)
class SpawnFailed:
    name: str
    code: int  # 127 not found, 126 not executable, 1 otherwise
    reason: str


@dataclass(frozen=True)
class Exited:
    """The instance's own process (its group leader) was reaped."""

    name: str
    code: int
    lingering: bool = False  # members of its process group still run


@dataclass(frozen=True)
class GroupGone:
    """The last process of a group that outlived its leader is gone."""

    name: str
    last_code: int  # the exit code of the last member the shell reaped


@dataclass(frozen=True)
class Signal:
    signum: int


@dataclass(frozen=True)
class Ready:
    name: str


@dataclass(frozen=True)
class NotReady:
    name: str
    reason: str | None = None


@dataclass(frozen=True)
class OutputLost:
    """stdout is gone (`failed`: a write error, else the reader left)."""

    failed: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Tick:
    """Time has passed: act on the deadlines that are due."""


Event = (
    Start
    | Started
    | SpawnFailed
    | Exited
    | GroupGone
    | Signal
    | Ready
    | NotReady
    | OutputLost
    | Tick
)


# -- actions ------------------------------------------------------------------


@dataclass(frozen=True)
class Spawn:
    name: str


@dataclass(frozen=True)
class Send:
    """Send `signum` to the instance's process group."""

    name: str
    signum: int


@dataclass(frozen=True)
class StartProbe:
    name: str


@dataclass(frozen=True)
class CancelProbe:
    name: str


@dataclass(frozen=True)
class Notice:
    message: str
    event: str
    fields: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Warn:
    """A line for stderr: what the output stream itself cannot carry."""

    message: str


@dataclass(frozen=True)
class SignalOrphans:
    """Signal the adopted descendants that belong to no instance."""

    signum: int


Action = Spawn | Send | StartProbe | CancelProbe | Notice | Warn | SignalOrphans


class Phase(enum.Enum):
    RUNNING = "running"
    STOPPING = "stopping"  # group termination: stop signals, in order
    KILLING = "killing"  # the overall deadline passed (or a second signal): SIGKILL


# -- the core -----------------------------------------------------------------


class Controller:
    """The policy of `corral start` over a fixed set of instances."""

    def __init__(self, specs: Sequence[ProcessSpec], grace: float = DEFAULT_GRACE) -> None:
        self.instances = {spec.name: Instance(spec) for spec in specs}
        self.grace = grace
        self.phase = Phase.RUNNING
        self.exit_code: int | None = None
        self._by_kind: dict[str, list[Instance]] = {}
        for inst in self.instances.values():
            self._by_kind.setdefault(inst.kind, []).append(inst)
        graph = {kind: members[0].spec.policy.after for kind, members in self._by_kind.items()}
        self._dependents = deps.dependents(graph)
        self._levels = deps.stop_levels(graph, self._by_kind)
        self._deadlines: list[tuple[float, int, str, str, int]] = []
        self._sequence = itertools.count()
        self._out: list[Action] = []
        self._now = 0.0
        self._stop_signals = 0  # SIGTERM/SIGINT... received: a second one kills at once

    # -- the interface --------------------------------------------------------

    @property
    def finished(self) -> bool:
        """Nothing runs and nothing will: the shell may leave once the
        adopted descendants are gone too."""
        return self.phase is not Phase.RUNNING and not any(
            i.group_alive for i in self.instances.values()
        )

    def next_deadline(self) -> float | None:
        while self._deadlines and not self._valid(self._deadlines[0]):
            heapq.heappop(self._deadlines)
        return self._deadlines[0][0] if self._deadlines else None

    def handle(self, event: Event, now: float) -> list[Action]:
        """Apply `event`, which happened at monotonic time `now`."""
        self._out = []
        self._now = now
        match event:
            case Start():
                self._start_eligible()
            case Started(name, pid):
                self._started(self.instances[name], pid)
            case SpawnFailed(name, code, reason):
                self._spawn_failed(self.instances[name], code, reason)
            case Exited(name, code, lingering):
                self._exited(self.instances[name], code, lingering)
            case GroupGone(name, last_code):
                self._group_gone(self.instances[name], last_code)
            case Signal(signum):
                self._signal(signum)
            case Ready(name):
                self._ready(self.instances[name], announce=True)
            case NotReady(name, reason):
                self._not_ready(self.instances[name], reason)
            case OutputLost(failed, reason):
                self._output_lost(failed, reason)
            case Tick():
                self._tick()
        if self.phase is Phase.RUNNING and not any(
            i.pid is not None or i.state in PENDING or i.state in RUNNING
            for i in self.instances.values()
        ):
            # everything has finished by itself (one-shots done); what their
            # groups left running is stopped in order
            self._begin_stop()
        return self._out

    # -- starting -------------------------------------------------------------

    def _start_eligible(self) -> None:
        """Spawn the first waiting instance whose dependencies are met.

        One at a time: the next comes with its `Started`, so the shell can
        act on a signal between two spawns of a long start-up.
        """
        if self.phase is not Phase.RUNNING:
            return
        for inst in self.instances.values():
            if inst.state is not S.WAITING:
                continue
            pending = self._unmet(inst)
            if not pending:
                inst.to(S.STARTING)
                self._emit(Spawn(inst.name))
                return
            if not inst.announced:
                inst.announced = True
                self._notice(
                    f"{inst.name} waiting for {', '.join(pending)}",
                    "waiting",
                    process=inst.name,
                    waiting_for=pending,
                )

    def _unmet(self, inst: Instance) -> list[str]:
        """The dependency types of `inst` that are not ready (one-shots: not done)."""
        unmet = []
        for kind in inst.spec.policy.after:
            members = self._by_kind.get(kind)
            if not members:
                continue  # not part of this run (not selected, or scaled to 0)
            want = S.DONE if members[0].spec.policy.oneshot else S.READY
            if any(i.state is not want for i in members):
                unmet.append(kind)
        return unmet

    def _started(self, inst: Instance, pid: int) -> None:
        inst.pid = inst.pgid = pid
        inst.group_alive = True
        inst.generation += 1
        inst.started_at = self._now
        self._notice(f"{inst.name} started (pid={pid})", "starting", process=inst.name, pid=pid)
        policy = inst.spec.policy
        if policy.run_timeout is not None:
            self._at(self._now + policy.run_timeout, "overrun", inst)
        if policy.ready is None:
            self._ready(inst, announce=False)  # which starts the next one
        else:
            self._emit(StartProbe(inst.name))
            self._start_eligible()

    def _spawn_failed(self, inst: Instance, code: int, reason: str) -> None:
        inst.to(S.EXITED)
        self._notice(f"{inst.name} failed to start: {reason}", "failed", process=inst.name)
        self._stop_with(code)

    def _ready(self, inst: Instance, announce: bool) -> None:
        if inst.state is not S.STARTING:
            return
        inst.to(S.READY)
        probe = inst.spec.policy.ready
        if announce and probe is not None:
            self._notice(f"{inst.name} ready ({probe})", "ready", process=inst.name)
        self._start_eligible()

    def _not_ready(self, inst: Instance, reason: str | None) -> None:
        probe = inst.spec.policy.ready
        if inst.state is not S.STARTING or probe is None:
            return
        why = f"not ready after {probe.timeout:g}s ({probe})"
        self._fail(inst, f"{why}: {reason}" if reason else why, EXIT_NOT_READY)

    def _fail(self, inst: Instance, why: str, code: int) -> None:
        self._notice(f"{inst.name} {why}; stopping", "failed", process=inst.name)
        self._stop_with(code)

    # -- exits ----------------------------------------------------------------

    def _exited(self, inst: Instance, code: int, lingering: bool) -> None:
        inst.pid = None
        inst.leader_code = code
        inst.group_alive = lingering
        self._emit(CancelProbe(inst.name))
        if self.phase is not Phase.RUNNING:
            if lingering:
                return  # `sh -c 'cd x && app'`: stopped when the app is (GroupGone)
            self._stopped(inst, code)
            return
        policy = inst.spec.policy
        if policy.restart.wants_restart(code):
            self._restart_or_give_up(inst, code)
        elif policy.oneshot and code == 0:
            inst.to(S.DONE)
            self._notice(
                f"{inst.name} completed (rc=0)", "exited", process=inst.name, rc=0, completed=True
            )
            self._start_eligible()
        else:
            inst.to(S.EXITED)
            self._notice(f"{inst.name} stopped (rc={code})", "exited", process=inst.name, rc=code)
            self._stop_with(code)

    def _group_gone(self, inst: Instance, last_code: int) -> None:
        inst.group_alive = False
        if inst.state in (S.STOPPING, S.KILLING) or (
            self.phase is not Phase.RUNNING and inst.state in RUNNING
        ):
            self._stopped(inst, inst.group_code(last_code))

    def _stopped(self, inst: Instance, code: int) -> None:
        """While stopping: the instance and its whole group are gone.

        Its `stopped` line is shown once: not again for a group that outlived
        an exit already reported (`final` is then where it was).
        """
        reported = inst.state in (S.STOPPING, S.KILLING) and inst.final_reported
        if inst.state in (S.STOPPING, S.KILLING):
            inst.to(inst.final)
        elif inst.state in RUNNING:
            inst.to(S.EXITED)
        if inst.state is S.EXITED and not reported:
            self._notice(f"{inst.name} stopped (rc={code})", "exited", process=inst.name, rc=code)
        self._advance_stop()

    def _restart_or_give_up(self, inst: Instance, code: int) -> None:
        restart = inst.spec.policy.restart
        backoff = inst.backoff(self._now)
        if backoff is None:
            inst.to(S.EXITED)
            self._notice(
                f"{inst.name} exited (rc={code}); restart limit reached "
                f"({restart.limit} in {restart.window:g}s); stopping",
                "exited",
                process=inst.name,
                rc=code,
            )
            self._stop_with(code)
            return
        delay, attempt = backoff
        inst.to(S.BACKOFF)
        self._notice(
            f"{inst.name} exited (rc={code}); restarting in {delay:.1f}s "
            f"(attempt {attempt}/{restart.limit})",
            "restarting",
            process=inst.name,
            rc=code,
            delay=delay,
            attempt=attempt,
        )
        self._at(self._now + delay, "respawn", inst)

    # -- signals and output -----------------------------------------------------

    def _signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return  # the shell reaps after every wakeup
        name = signame(signum)
        if signum in TERMINATING:
            self._notice(f"{name} received", "signal", signal=name)
            self._stop_signals += 1
            if self._stop_signals > 1:
                self._kill_all()  # a second one: no more patience
            else:  # the first (an exit may have started the stop already)
                self._stop_with(128 + signum)
            return
        live = [i for i in self.instances.values() if i.group_alive]
        names = ", ".join(i.name for i in live) or "nobody"
        self._notice(f"{name} received, forwarding to {names}", "signal", signal=name)
        for inst in live:
            self._emit(Send(inst.name, signum))

    def _output_lost(self, failed: bool, reason: str) -> None:
        if failed:
            self._emit(Warn(f"cannot write output: {reason}; stopping"))
        self._stop_with(EXIT_OUTPUT_FAILED if failed else EXIT_OUTPUT_CLOSED)

    # -- deadlines --------------------------------------------------------------

    def _at(self, when: float, kind: str, inst: Instance | None = None) -> None:
        name, generation = (inst.name, inst.generation) if inst is not None else ("", 0)
        heapq.heappush(self._deadlines, (when, next(self._sequence), kind, name, generation))

    def _valid(self, deadline: tuple[float, int, str, str, int]) -> bool:
        _, _, kind, name, generation = deadline
        if not name:
            return kind != "report" or self.phase is Phase.STOPPING
        inst = self.instances[name]
        running = self.phase is Phase.RUNNING
        return inst.generation == generation and (
            (kind == "respawn" and inst.state is S.BACKOFF and running)
            or (kind == "overrun" and inst.state in RUNNING and running)
            or (kind == "kill" and inst.state is S.STOPPING)
        )

    def _tick(self) -> None:
        while self._deadlines and self._deadlines[0][0] <= self._now:
            deadline = heapq.heappop(self._deadlines)
            if self._valid(deadline):
                self._due(deadline[2], self.instances.get(deadline[3]))

    def _due(self, kind: str, inst: Instance | None) -> None:
        if kind == "kill_all":
            self._kill_all()
        elif kind == "report":
            self._report_waiting()
        elif inst is None:
            return
        elif kind == "respawn":
            inst.to(S.STARTING)
            self._emit(Spawn(inst.name))
        elif kind == "overrun":
            timeout = inst.spec.policy.run_timeout or 0
            self._fail(inst, f"still running after {timeout:g}s", EXIT_TIMED_OUT)
        elif kind == "kill":
            self._kill(inst)

    # -- stopping -------------------------------------------------------------

    def _stop_with(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code
        self._begin_stop()

    def _begin_stop(self) -> None:
        if self.phase is not Phase.RUNNING:
            return
        self.phase = Phase.STOPPING
        now = self._now
        for inst in self.instances.values():
            if inst.state in PENDING:
                inst.to(S.EXITED)  # will never start
            elif inst.state is S.STARTING and inst.pid is None:
                inst.to(S.EXITED)  # its spawn was not carried out yet
            elif inst.state in RUNNING:
                self._emit(CancelProbe(inst.name))
        self._at(now + self._overall_grace(), "kill_all")
        self._at(now + STATUS_INTERVAL, "report")
        self._advance_stop()
        self._emit(SignalOrphans(signal.SIGTERM))

    def _overall_grace(self) -> float:
        """One deadline for the whole shutdown: the longest grace of each
        dependency layer, added up (just the grace when nothing depends on
        anything)."""
        longest: dict[int, float] = {}
        for inst in self.instances.values():
            level = self._levels[inst.kind]
            longest[level] = max(longest.get(level, 0.0), self._grace_of(inst))
        return sum(longest.values()) if longest else self.grace

    def _grace_of(self, inst: Instance) -> float:
        own = inst.spec.policy.stop_timeout
        return self.grace if own is None else own

    def _advance_stop(self) -> None:
        """Send the stop signal to each live instance nobody alive depends on.

        To the whole process group, followed by SIGCONT as systemd does: a
        stopped process (SIGSTOP, Ctrl-Z) would otherwise never run its handler.
        """
        if self.phase is not Phase.STOPPING:
            return
        live = [i for i in self.instances.values() if i.group_alive]
        live_kinds = {i.kind for i in live}
        for inst in live:
            if inst.state in (S.STOPPING, S.KILLING):
                continue
            if self._dependents[inst.kind] & live_kinds:
                continue  # a process that depends on it is still running
            inst.final = S.DONE if inst.state is S.DONE else S.EXITED
            inst.final_reported = inst.state in (S.DONE, S.EXITED)  # its exit was shown
            inst.to(S.STOPPING)
            stop = inst.spec.stop_signal
            self._notice(
                f"sending {signame(stop)} to {inst.name} ({self._pid_text(inst)})",
                "stopping",
                process=inst.name,
                signal=signame(stop),
            )
            self._emit(Send(inst.name, stop))
            if stop != signal.SIGCONT:
                self._emit(Send(inst.name, signal.SIGCONT))
            self._at(self._now + self._grace_of(inst), "kill", inst)

    def _report_waiting(self) -> None:
        live = [i for i in self.instances.values() if i.group_alive]
        if not live:
            return
        names = ", ".join(f"{i.name} ({self._pid_text(i)})" for i in live)
        self._notice(f"still waiting for {names}", "waiting", waiting_for=names)
        self._at(self._now + STATUS_INTERVAL, "report")

    def _kill(self, inst: Instance) -> None:
        if not inst.group_alive or inst.state is S.KILLING:
            return
        if inst.state not in (S.STOPPING, S.KILLING):
            inst.final = S.DONE if inst.state is S.DONE else S.EXITED
            inst.final_reported = inst.state in (S.DONE, S.EXITED)
        inst.to(S.KILLING)
        self._notice(
            f"sending SIGKILL to {inst.name} ({self._pid_text(inst)})",
            "killing",
            process=inst.name,
            signal="SIGKILL",
        )
        self._emit(Send(inst.name, signal.SIGKILL))

    def _kill_all(self) -> None:
        if self.phase is Phase.KILLING:
            return
        self.phase = Phase.KILLING
        for inst in self.instances.values():
            self._kill(inst)
        self._emit(SignalOrphans(signal.SIGKILL))

    # -- helpers ----------------------------------------------------------------

    @staticmethod
    def _pid_text(inst: Instance) -> str:
        """`pid 42`, or `group 42` once only the rest of its process group runs."""
        return f"pid {inst.pid}" if inst.pid is not None else f"group {inst.pgid}"

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _notice(self, message: str, event: str, **fields: object) -> None:
        self._emit(Notice(message, event, fields))


class RunController(Controller):
    """The policy of `corral run`: an init for one command.

    Every signal is relayed to the command's process group (SIGTERM and
    SIGINT included: the command decides what they mean); its exit ends the
    run with its code, after the same clean-up as `start` of whatever it
    left behind.
    """

    def _signal(self, signum: int) -> None:
        if signum == signal.SIGCHLD:
            return
        for inst in self.instances.values():
            if inst.group_alive:
                self._emit(Send(inst.name, signum))
