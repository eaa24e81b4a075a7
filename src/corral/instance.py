"""One Procfile instance (`web.2`) as the decision core sees it: a state, its
legal transitions, and the restart back-off arithmetic.  Pure data: no pids
are signalled, no clock is read (`now` is passed in).

    WAITING --spawn--> STARTING --ready--> READY
       |                  |                  |
       |                  +------exit--------+--> BACKOFF --due--> STARTING
       |                  |                  |--> DONE    (one-shot, rc 0)
       |                  |                  +--> EXITED  (anything else)
       |                  +----stop signal---+--> STOPPING --SIGKILL--> KILLING
       +------------------- stop ---------------> EXITED   (never started)

STOPPING and KILLING end in EXITED once the instance's whole process group
is gone (not just its leader: see `group_alive`).  A DONE or EXITED instance
whose group lives on (`sh -c 'daemon &'`) is still stopped in order: it goes
to STOPPING too, and back to DONE or EXITED when the group is gone.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field

from corral.specs import ProcessSpec

MAX_BACKOFF_DOUBLINGS = 62  # delay * 2**n; more would overflow converting to float


class State(enum.Enum):
    WAITING = "waiting"  # its `after` dependencies are not ready yet
    STARTING = "starting"  # spawned (or about to be); readiness not passed yet
    READY = "ready"
    BACKOFF = "backoff"  # exited; restarts when its back-off delay is over
    STOPPING = "stopping"  # sent its stop signal; its group still runs
    KILLING = "killing"  # sent SIGKILL; its group still runs
    EXITED = "exited"
    DONE = "done"  # a one-shot that exited 0


S = State
TRANSITIONS: dict[State, frozenset[State]] = {
    S.WAITING: frozenset({S.STARTING, S.EXITED}),
    S.STARTING: frozenset({S.READY, S.BACKOFF, S.DONE, S.EXITED, S.STOPPING, S.KILLING}),
    S.READY: frozenset({S.BACKOFF, S.DONE, S.EXITED, S.STOPPING, S.KILLING}),
    S.BACKOFF: frozenset({S.STARTING, S.EXITED}),
    S.STOPPING: frozenset({S.KILLING, S.EXITED, S.DONE}),
    S.KILLING: frozenset({S.EXITED, S.DONE}),
    S.EXITED: frozenset({S.STOPPING, S.KILLING}),  # a group that outlived its leader
    S.DONE: frozenset({S.STOPPING, S.KILLING}),
}
RUNNING = frozenset({S.STARTING, S.READY})
PENDING = frozenset({S.WAITING, S.BACKOFF})  # may still start


class IllegalTransition(AssertionError):
    """A bug in the core: a transition the table does not allow."""


@dataclass
class Instance:
    """One instance across its whole life, restarts included."""

    spec: ProcessSpec
    state: State = S.WAITING
    pid: int | None = None  # its process (the group leader), while it runs
    pgid: int | None = None  # its process group: the pid it was started with
    group_alive: bool = False  # its process group (leader or not) still runs
    generation: int = 0  # bumped at every spawn: stale deadlines are ignored
    started_at: float = 0.0
    restarts: deque[float] = field(default_factory=deque)  # recent restart times
    streak: int = 0  # consecutive restarts, for the back-off
    announced: bool = False  # its "waiting for" line was shown
    leader_code: int = 0
    final: State = S.EXITED  # what STOPPING/KILLING end in
    final_reported: bool = False  # that end was shown already (an exit before the stop)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    def to(self, state: State) -> None:
        if state not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.name}: {self.state.value} -> {state.value}")
        self.state = state

    def group_code(self, last_code: int) -> int:
        """Its exit code once its whole group is gone: its own (the leader's),
        unless it was killed by a signal while the rest of its group ran on
        (`sh -c 'cd x && app'` under SIGTERM): then the last member's (the app)."""
        return last_code if self.leader_code > 128 else self.leader_code

    def backoff(self, now: float) -> tuple[float, int] | None:
        """Record a restart at `now`: its delay and attempt number, or None
        once the restart limit is reached within the window."""
        restart = self.spec.policy.restart
        while self.restarts and self.restarts[0] < now - restart.window:
            self.restarts.popleft()
        if len(self.restarts) >= restart.limit:
            return None
        if now - self.started_at >= restart.reset_after:
            self.streak = 0
        doublings = min(self.streak, MAX_BACKOFF_DOUBLINGS)
        delay = min(restart.delay * 2**doublings, restart.max_delay)
        self.streak += 1
        self.restarts.append(now)
        return delay, len(self.restarts)
