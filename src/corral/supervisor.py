"""The supervisor: one thread, one loop, owning every child from spawn to reap.

The loop, top to bottom (tini's order, gunicorn's dispatch):

    wait   select() on the signal socket, the children's output pipes, probe
           sockets and, when output is backed up, stdout; the timeout is the
           nearest timer (grace period, restart back-off, probe retry,
           partial-line flush), or none at all when idle;
    react  signals -> stop / forward; readable pipes -> the sink; sockets ->
           their probe;
    reap   waitpid(-1) until nothing is left: our children's exits decide,
           probe commands report to their probe, adopted orphans are reaped
           quietly;
    decide due timers run; everything gone -> leave.

Each Procfile instance is an `Instance` with a small state machine:

    waiting -> running -> ready -> exited | done (one-shot, rc 0)
                  ^                   |
                  +---- backoff <-----+   (restart policy)

`waiting` means its `after` dependencies are not ready yet (one-shots: not
done); `running` means started but its readiness probe has not passed.

Policy (`start`): an exit that no restart policy covers, SIGTERM/SIGINT, a
probe or one-shot timeout, or the loss of stdout starts *group termination*:
each process gets its own stop signal, dependents before the processes they
depend on, each after its own grace period SIGKILL, everything within one
overall deadline; descendants re-parented to us get SIGTERM and then SIGKILL
with the rest; a second SIGTERM/SIGINT kills at once.  corral leaves only
when no child and no adopted descendant remains, so a grandchild that needs a
moment to flush gets it (tiny inits exit at once and let the kernel SIGKILL
the rest).  Exit code: the deciding exit's code (128+N if killed by signal N),
or 128+N if corral was told to stop by signal N; 0 when every process was a
one-shot that succeeded.

Policy (`run`, `relay=True`): every signal is relayed to the one command's
group; its exit ends the run with its code, after the same clean-up of any
descendants it left behind.

The supervisor knows nothing of colours or formats: it reports to a `Sink`.
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import itertools
import os
import selectors
import signal
import socket
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from corral import reaper
from corral import signals as sig
from corral.probes import Probe
from corral.signals import ChildSignals, SignalPipe
from corral.spawn import Child, spawn_piped, spawn_quiet
from corral.specs import ProcessSpec

READ_SIZE = 1 << 16  # a default pipe's whole buffer
MAX_PIPE_READS = 16  # 1 MiB: /proc/sys/fs/pipe-max-size's default
RESCAN_INTERVAL = 0.1  # while stopping: look for newly adopted descendants
STATUS_INTERVAL = 1.0  # while stopping: say whom we are still waiting for
DEFAULT_GRACE = 5.0
EXIT_OUTPUT_CLOSED = 128 + signal.SIGPIPE
EXIT_OUTPUT_FAILED = 74  # EX_IOERR (sysexits.h): stdout failed (disk full, file too large)
EXIT_SPAWN_FAILED = 1
MAX_WAIT = 86400.0  # epoll cannot wait ~24.8 days: far timers wake us once a day
MAX_BACKOFF_DOUBLINGS = 62  # delay * 2**n; more would overflow a float conversion
EXIT_NOT_READY = 1
EXIT_TIMED_OUT = 124  # as timeout(1)

WAITING, RUNNING, READY, BACKOFF, EXITED, DONE = (
    "waiting",
    "running",
    "ready",
    "backoff",
    "exited",
    "done",
)


class OutputWriter(Protocol):
    @property
    def fd(self) -> int: ...
    @property
    def pending(self) -> int: ...
    @property
    def closed(self) -> bool: ...

    def flush(self) -> None: ...
    def finish(self) -> None: ...


class Sink(Protocol):
    """Where the supervisor's observations go (the multiplexer, in practice)."""

    @property
    def writers(self) -> Sequence[OutputWriter]: ...

    def feed(self, name: str, stream: str, data: bytes, now: float | None = None) -> None: ...
    def close(self, name: str, stream: str, now: float | None = None) -> None: ...
    def notice(self, message: str, event: str, **fields: object) -> None: ...
    def next_deadline(self) -> float | None: ...
    def due(self, now_mono: float) -> list[tuple[str, str]]: ...
    def show_partial(self, name: str, stream: str) -> None: ...
    def flush_all(self) -> None: ...


class Timer:
    """A callback due at a monotonic time; `cancel()` makes it a no-op."""

    __slots__ = ("cancelled", "fn", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Instance:
    """One Procfile instance (`web.2`) across its whole life, restarts included."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self.state = WAITING
        self.child: Child | None = None
        self.probe: Probe | None = None
        self.started_at = 0.0
        self.restarts: deque[float] = deque()  # times of recent restarts
        self.streak = 0  # consecutive restarts, for the back-off
        self.stop_sent = False
        self.kill_sent = False
        self.announced = False  # its "waiting for" line was shown
        # The shell of a compound command (`cd x && app`) exited, but members
        # of its process group (the app) are still running: the instance is
        # not gone until they are (see `_update_groups`).
        self.lingering = False
        self.leader_code = 0  # how its process (the group leader) exited
        self.last_code = 0  # the exit code of its group's last process we reaped
        self.timers: list[Timer] = []  # restart, run timeout, kill: cancelled together

    @property
    def group_code(self) -> int:
        """The instance's exit code once its whole group is gone: its shell's,
        unless the shell was killed by a signal while the rest of its group
        ran on (`sh -c 'cd x && app'` under SIGTERM): then the app's, that is
        the last member's."""
        return self.last_code if self.leader_code > 128 else self.leader_code

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def alive(self) -> bool:
        """Its process (the group leader) has not been reaped yet."""
        return self.child is not None and self.child.exit_code is None

    @property
    def group_alive(self) -> bool:
        """Its leader, or members of its process group that outlived it, still run."""
        return self.alive or self.lingering

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()
        if self.probe is not None:
            self.probe.cancel()
            self.probe = None

    def __repr__(self) -> str:
        return f"<Instance {self.name} {self.state} {self.child!r}>"


class Supervisor:
    """Runs `specs` until they are all gone; `run()` returns the exit code."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        sink: Sink,
        *,
        grace: float = DEFAULT_GRACE,
        spawn: Callable[[ProcessSpec, ChildSignals], Child] = spawn_piped,
        relay: bool = False,
        high_water: int = 1 << 18,
        low_water: int = 1 << 16,
    ) -> None:
        self.instances = [Instance(spec) for spec in specs]
        self.sink = sink
        self.grace = grace
        self.spawn = spawn
        self.relay = relay
        self.high_water = high_water
        self.low_water = low_water
        self.exit_code: int | None = None
        self.children: dict[int, Instance] = {}  # pid -> instance with a live child
        self.stopping = False
        self.killing = False  # SIGKILL phase: kill anything that shows up
        self._by_kind: dict[str, list[Instance]] = {}
        for inst in self.instances:
            self._by_kind.setdefault(inst.spec.kind, []).append(inst)
        # type -> the types (of this run) that wait for it
        self._dependents: dict[str, set[str]] = {kind: set() for kind in self._by_kind}
        for kind, members in self._by_kind.items():
            for dep in members[0].spec.policy.after:
                if dep in self._dependents:
                    self._dependents[dep].add(kind)
        self._starting = False
        self._recheck = False
        self._signalled: set[int] = set()  # descendants sent the stop signal
        self._member_pgid: dict[int, int] = {}  # adopted pid -> its process group
        self._checks: dict[int, Callable[[int], None]] = {}  # probe command pid -> callback
        self._pipes: dict[int, tuple[Instance, str]] = {}
        self._reading = True
        self._writing: set[int] = set()  # output fds waiting to be writable
        self._timers: list[tuple[float, int, Timer]] = []
        self._sequence = itertools.count()
        self._selector = selectors.DefaultSelector()
        self._child_signals = ChildSignals()

    # -- the loop -------------------------------------------------------------

    def run(self) -> int:
        with SignalPipe() as signals:
            self._child_signals = signals.children
            self._selector.register(signals, selectors.EVENT_READ, self._on_signals(signals))
            try:
                self._loop(signals)
            except BaseException:
                # A bug in corral must not strand what it started: kill every
                # group and descendant we know of, then let the error show.
                self._emergency_kill()
                raise
            self._drain(list(self._pipes), to_eof=True)
            self.sink.flush_all()
            for writer in self.sink.writers:
                writer.finish()
            self._selector.close()
        return 0 if self.exit_code is None else self.exit_code

    def _loop(self, signals: SignalPipe) -> None:
        if not reaper.become_subreaper():
            self._warn(
                "cannot register as a child subreaper (prctl PR_SET_CHILD_SUBREAPER failed): "
                "processes orphaned by the app will not be reaped or stopped by corral; "
                "run corral as PID 1 or on Linux 3.4 or later"
            )
        self._start_eligible(signals)
        # start-up drained the signal socket between spawns, SIGCHLDs
        # included: reap now, or an early exit would wait for a wakeup
        self._reap()
        while not self._finished():
            for key, mask in self._selector.select(self._timeout()):
                key.data(mask)
            self._reap()
            now = time.monotonic()
            self._show_idle_partials(now)
            self._run_timers(now)
            self._write_output()

    def _emergency_kill(self) -> None:
        for inst in self.instances:
            if inst.alive and inst.child is not None:
                sig.send(inst.child.pid, signal.SIGKILL, group=True)
        for pid in self._adopted():
            sig.send(pid, signal.SIGKILL, group=False)

    def _on_signals(self, signals: SignalPipe) -> Callable[[int], None]:
        def handle(mask: int) -> None:
            for signum in signals.drain():
                self.handle_signal(signum)

        return handle

    def _timeout(self) -> float | None:
        while self._timers and self._timers[0][2].cancelled:
            heapq.heappop(self._timers)
        deadlines = [self._timers[0][0]] if self._timers else []
        partial = self.sink.next_deadline()
        if partial is not None:
            deadlines.append(partial)
        if self.stopping:
            deadlines.append(time.monotonic() + RESCAN_INTERVAL)
        if not deadlines:
            return None  # idle: sleep until a signal or some output
        return min(max(0.0, min(deadlines) - time.monotonic()), MAX_WAIT)

    def _finished(self) -> bool:
        """True once no app child and no adopted descendant is left.

        When nothing runs and nothing is pending (every one-shot done), this
        starts the final sweep; while stopping, descendants still around get
        the stop signal (or SIGKILL, once we are killing).
        """
        if self.children:
            return False
        if not self.stopping:
            if any(inst.state in (WAITING, BACKOFF) for inst in self.instances):
                return False
            self._begin_stop()
        if any(inst.lingering for inst in self.instances):
            return False
        remaining = self._descendants()
        if not remaining:
            return True
        self._stop_descendants(remaining)
        return False

    # -- timers ----------------------------------------------------------------

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        timer = Timer(time.monotonic() + delay, fn)
        heapq.heappush(self._timers, (timer.when, next(self._sequence), timer))
        return timer

    def _run_timers(self, now: float) -> None:
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                timer.cancelled = True
                timer.fn()

    # -- starting ----------------------------------------------------------------

    def _start_eligible(self, signals: SignalPipe | None = None) -> None:
        """Spawn every waiting instance whose dependencies are satisfied.

        Re-entrant calls (an instance became ready while we were spawning)
        only ask for one more pass, so this never recurses.
        """
        if self._starting:
            self._recheck = True
            return
        self._starting = True
        try:
            self._recheck = True
            while self._recheck and not self.stopping:
                self._recheck = False
                for inst in self.instances:
                    if signals is not None:
                        # A signal during start-up is handled now, not after the last spawn.
                        for signum in signals.drain():
                            self.handle_signal(signum)
                    if self.stopping:
                        break
                    if inst.state == WAITING:
                        self._start_if_unblocked(inst)
        finally:
            self._starting = False
        self._write_output()

    def _start_if_unblocked(self, inst: Instance) -> None:
        pending = self._unmet(inst)
        if not pending:
            self._spawn(inst)
        elif not inst.announced:
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
            want = DONE if members[0].spec.policy.oneshot else READY
            if any(i.state != want for i in members):
                unmet.append(kind)
        return unmet

    def _spawn(self, inst: Instance) -> None:
        spec = inst.spec
        try:
            child = self.spawn(spec, self._child_signals)
        except (OSError, ValueError) as exc:
            # OSError: exec failed (not found: 127, not executable: 126).
            # ValueError (a NUL byte, a value that cannot be encoded) is
            # rejected when the files are loaded; should one still get here,
            # it stops what was started instead of crashing past it.
            inst.state = EXITED
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self._notice(f"{spec.name} failed to start: {reason}", "failed", process=spec.name)
            code = exec_failure_code(exc) if isinstance(exc, OSError) else EXIT_SPAWN_FAILED
            self._set_exit(code)
            self._begin_stop()
            return
        inst.child = child
        inst.state = RUNNING
        inst.started_at = time.monotonic()
        self.children[child.pid] = inst
        for fd, stream in child.pipes.items():
            self._pipes[fd] = (inst, stream)
            if self._reading:
                self._selector.register(fd, selectors.EVENT_READ, functools.partial(self._read, fd))
        self._notice(
            f"{child.name} started (pid={child.pid})", "starting", process=child.name, pid=child.pid
        )
        policy = spec.policy
        if policy.run_timeout is not None:
            inst.timers.append(self.call_later(policy.run_timeout, lambda: self._overran(inst)))
        if policy.ready is None:
            self._ready(inst, announce=False)
            return
        inst.probe = Probe(
            policy.ready,
            self,
            on_ready=lambda: self._ready(inst, announce=True),
            on_timeout=lambda: self._not_ready(inst),
            env=spec.env,
            cwd=spec.cwd,
        )
        inst.probe.start()

    def _ready(self, inst: Instance, announce: bool) -> None:
        inst.probe = None
        if inst.state != RUNNING:
            return
        inst.state = READY
        if announce and inst.spec.policy.ready is not None:
            self._notice(
                f"{inst.name} ready ({inst.spec.policy.ready})", "ready", process=inst.name
            )
        self._start_eligible()

    def _not_ready(self, inst: Instance) -> None:
        inst.probe = None
        probe = inst.spec.policy.ready
        timeout = probe.timeout if probe is not None else 0
        self._fail(inst, f"not ready after {timeout:g}s ({probe})", EXIT_NOT_READY)

    def _overran(self, inst: Instance) -> None:
        if inst.alive:
            timeout = inst.spec.policy.run_timeout or 0
            self._fail(inst, f"still running after {timeout:g}s", EXIT_TIMED_OUT)

    def _fail(self, inst: Instance, why: str, code: int) -> None:
        self._notice(f"{inst.name} {why}; stopping", "failed", process=inst.name)
        self._set_exit(code)
        self._begin_stop()

    # -- reacting ---------------------------------------------------------------

    def handle_signal(self, signum: int) -> None:
        """Dispatch one received signal (called from the loop, never a handler)."""
        if signum == signal.SIGCHLD:
            return  # the reap after every wakeup does the work
        if self.relay:
            self._forward(signum)
            return
        if signum in sig.TERMINATING:
            self._notice(f"{sig.name(signum)} received", "signal", signal=sig.name(signum))
            if self.stopping:
                self._kill_all()  # a second one: no more patience
            else:
                self._set_exit(128 + signum)
                self._begin_stop()
            return
        self._forward(signum)

    def _forward(self, signum: int) -> None:
        live = list(self.children.values())
        if not self.relay:
            names = ", ".join(i.name for i in live) or "nobody"
            self._notice(
                f"{sig.name(signum)} received, forwarding to {names}",
                "signal",
                signal=sig.name(signum),
            )
        for inst in live:
            assert inst.child is not None
            sig.send(inst.child.pid, signum, group=True)

    def _read(self, fd: int, mask: int = 0, force: bool = False) -> bool:
        """Read one chunk of a child's output into the sink; True if data came."""
        if not force and self._pending() > self.high_water:
            return False  # stdout is behind: leave it in the pipe (see _write_output)
        inst, stream = self._pipes[fd]
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close_pipe(fd)  # shows its partial line
            return True
        self.sink.feed(inst.name, stream, data)
        if inst.probe is not None:
            inst.probe.feed(data)
        return True

    def _show_idle_partials(self, now: float) -> None:
        """Partial lines (a prompt, a progress bar) whose stream went silent.

        Silent means its pipe is empty now, not just that we have not read
        it: under backpressure we stop reading, and the rest of the line may
        be waiting in the pipe.  So read once more, whatever the backlog,
        and show the partial line only if nothing came.
        """
        due = self.sink.due(now)
        if not due:
            return
        fds = {(inst.name, stream): fd for fd, (inst, stream) in self._pipes.items()}
        for name, stream in due:
            fd = fds.get((name, stream))
            if fd is None or not self._read(fd, force=True):
                self.sink.show_partial(name, stream)

    def _close_pipe(self, fd: int) -> None:
        inst, stream = self._pipes.pop(fd)
        if self._reading:
            self._selector.unregister(fd)
        os.close(fd)
        if inst.child is not None:
            inst.child.pipes.pop(fd, None)
        self.sink.close(inst.name, stream)

    def _drain(self, fds: list[int], to_eof: bool) -> None:
        """Read `fds` until they are empty (`to_eof`: until closed) and pass it on.

        Used when a child is reaped, so everything it wrote comes before its
        `stopped` line, and at the very end, so nothing in a pipe is lost.
        """
        for fd in fds:
            inst, stream = self._pipes[fd]
            # Mid-run, at most what a full pipe can hold: a descendant that
            # keeps writing to an inherited pipe must not keep us here.  The
            # backlog may pass the high-water mark by that much; it is never
            # written out blocking while children run (the loop must stay free
            # for signals and timers even when the reader of stdout stalls).
            reads = None if to_eof else MAX_PIPE_READS
            while reads is None or reads > 0:
                if reads is not None:
                    reads -= 1
                try:
                    data = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    # empty but still open: at the end, only a process outside
                    # our tree can hold it, and we do not wait for strangers
                    if to_eof:
                        self._close_pipe(fd)
                    break
                except OSError:
                    data = b""
                if not data:
                    self._close_pipe(fd)
                    break
                self.sink.feed(inst.name, stream, data)
                if to_eof and self._pending() > self.high_water:
                    for writer in self.sink.writers:
                        writer.finish()  # every child is gone: blocking is fine now

    def _reap(self) -> None:
        for pid, code in reaper.reap():
            self._signalled.discard(pid)
            check = self._checks.pop(pid, None)
            if check is not None:
                check(code)
                continue
            inst = self.children.pop(pid, None)
            if inst is None:
                # an adopted orphan: reaped quietly, never an app exit; if it
                # belonged to a group that outlived its shell, its code is
                # the group's latest
                owner = self._group_owner(self._member_pgid.pop(pid, None))
                if owner is not None:
                    owner.last_code = code
                continue
            assert inst.child is not None
            inst.child.reaped(code)
            self._drain(list(inst.child.pipes), to_eof=False)
            self._on_exit(inst, code)
        self._update_groups()

    # -- process groups that outlive their shell --------------------------------

    def _adopted(self) -> list[int]:
        """Our children that are neither app processes nor probe checks:
        orphans re-parented to us (we are PID 1 or a subreaper)."""
        return [p for p in reaper.children() if p not in self.children and p not in self._checks]

    def _members(self, pgid: int) -> list[int]:
        """The adopted processes still in process group `pgid`.

        Only our own children are considered, never a process group found by
        number alone: once a group is empty its number can be reused by a
        stranger's group, and `killpg` would reach the stranger.  Members of
        a group whose shell died are re-parented to us, so this finds every
        one of them except a process whose parent left the group first.
        """
        return [pid for pid in self._adopted() if self._pgid(pid) == pgid]

    def _group_owner(self, pgid: int | None) -> Instance | None:
        for inst in self.instances:
            if inst.lingering and inst.child is not None and inst.child.pid == pgid:
                return inst
        return None

    def _update_groups(self) -> None:
        """While stopping: an instance whose group has emptied has stopped."""
        if not self.stopping:
            return
        for inst in self.instances:
            if inst.lingering and inst.child is not None and not self._members(inst.child.pid):
                inst.lingering = False
                if inst.state != DONE and inst.state != EXITED:
                    inst.state = EXITED
                    code = inst.group_code
                    self._notice(
                        f"{inst.name} stopped (rc={code})", "exited", process=inst.name, rc=code
                    )
                self._advance_stop()

    def _on_exit(self, inst: Instance, code: int) -> None:
        inst.cancel_timers()
        policy = inst.spec.policy
        assert inst.child is not None
        inst.leader_code = inst.last_code = code
        lingering = bool(self._members(inst.child.pid))
        if self.stopping:
            if lingering:
                # `sh -c 'cd x && app'`: the shell died of the stop signal, the
                # app is still shutting down; it is stopped when its group is.
                inst.lingering = True
                return
            inst.state = EXITED
            self._notice(f"{inst.name} stopped (rc={code})", "exited", process=inst.name, rc=code)
            self._advance_stop()
            return
        if lingering and not policy.restart.wants_restart(code):
            # what its shell left running (`sh -c 'daemon &'`) is stopped
            # with it, in dependency order, when everything stops
            inst.lingering = True
        if policy.restart.wants_restart(code):
            self._restart_or_give_up(inst, code)
            return
        if policy.oneshot and code == 0:
            inst.state = DONE
            self._notice(
                f"{inst.name} completed (rc=0)", "exited", process=inst.name, rc=0, completed=True
            )
            self._start_eligible()
            return
        inst.state = EXITED
        self._notice(f"{inst.name} stopped (rc={code})", "exited", process=inst.name, rc=code)
        self._set_exit(code)
        self._begin_stop()

    def _restart_or_give_up(self, inst: Instance, code: int) -> None:
        restart = inst.spec.policy.restart
        now = time.monotonic()
        while inst.restarts and inst.restarts[0] < now - restart.window:
            inst.restarts.popleft()
        if len(inst.restarts) >= restart.limit:
            inst.state = EXITED
            self._notice(
                f"{inst.name} exited (rc={code}); restart limit reached "
                f"({restart.limit} in {restart.window:g}s); stopping",
                "exited",
                process=inst.name,
                rc=code,
            )
            self._set_exit(code)
            self._begin_stop()
            return
        if now - inst.started_at >= restart.reset_after:
            inst.streak = 0
        delay = min(restart.delay * 2 ** min(inst.streak, MAX_BACKOFF_DOUBLINGS), restart.max_delay)
        inst.streak += 1
        inst.restarts.append(now)
        inst.state = BACKOFF
        self._notice(
            f"{inst.name} exited (rc={code}); restarting in {delay:.1f}s "
            f"(attempt {len(inst.restarts)}/{restart.limit})",
            "restarting",
            process=inst.name,
            rc=code,
            delay=delay,
            attempt=len(inst.restarts),
        )
        inst.timers.append(self.call_later(delay, lambda: self._respawn(inst)))

    def _respawn(self, inst: Instance) -> None:
        if self.stopping or inst.state != BACKOFF:
            return
        inst.timers.clear()
        self._spawn(inst)

    # -- stopping ---------------------------------------------------------------

    def _set_exit(self, code: int) -> None:
        if self.exit_code is None:
            self.exit_code = code

    def _begin_stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        for inst in self.instances:
            if not inst.alive:
                inst.cancel_timers()
                if inst.state in (WAITING, BACKOFF):
                    inst.state = EXITED  # will never start
            elif inst.probe is not None:
                inst.probe.cancel()
                inst.probe = None
        self.call_later(self._overall_grace(), self._kill_all)
        self.call_later(STATUS_INTERVAL, self._report_waiting)
        self._update_groups()  # a group that outlived its shell may be gone by now
        self._advance_stop()
        self._stop_descendants(self._descendants())

    def _overall_grace(self) -> float:
        """One deadline for the whole shutdown: the longest grace of each
        dependency layer, added up (just the grace when nothing depends on
        anything)."""
        levels = _stop_levels(self._dependents)
        longest: dict[int, float] = {}
        for inst in self.instances:
            level = levels[inst.spec.kind]
            longest[level] = max(longest.get(level, 0.0), self._grace_of(inst))
        return sum(longest.values()) if longest else self.grace

    def _grace_of(self, inst: Instance) -> float:
        own = inst.spec.policy.stop_timeout
        return self.grace if own is None else own

    def _live(self) -> list[Instance]:
        """Instances whose process group still runs (leader or lingering members)."""
        return [inst for inst in self.instances if inst.group_alive]

    def _advance_stop(self) -> None:
        """Send the stop signal to each live instance nobody alive depends on.

        The signal goes to the whole process group (the app and anything it
        started), followed by SIGCONT as systemd does: a stopped process
        (SIGSTOP, Ctrl-Z) would otherwise never run its handler.  An instance
        counts as stopped only once its whole group is gone.
        """
        if self.killing:
            return
        live = self._live()
        live_kinds = {i.spec.kind for i in live}
        for inst in live:
            if inst.stop_sent or self._dependents[inst.spec.kind] & live_kinds:
                continue  # a process that depends on it is still running
            inst.stop_sent = True
            assert inst.child is not None
            stop = inst.spec.stop_signal
            if not self.relay:
                self._notice(
                    f"sending {sig.name(stop)} to {inst.name} ({_pid_text(inst)})",
                    "stopping",
                    process=inst.name,
                    signal=sig.name(stop),
                )
            sig.send(inst.child.pid, stop, group=True)
            if stop != signal.SIGCONT:
                sig.send(inst.child.pid, signal.SIGCONT, group=True)
            inst.timers.append(
                self.call_later(self._grace_of(inst), functools.partial(self._kill, inst))
            )

    def _report_waiting(self) -> None:
        live = self._live()
        if self.killing or not live:
            return
        names = ", ".join(f"{i.name} ({_pid_text(i)})" for i in live)
        self._notice(f"still waiting for {names}", "waiting", waiting_for=names)
        self.call_later(STATUS_INTERVAL, self._report_waiting)

    def _kill(self, inst: Instance) -> None:
        if not inst.group_alive or inst.kill_sent:
            return
        inst.kill_sent = True
        assert inst.child is not None
        self._notice(
            f"sending SIGKILL to {inst.name} ({_pid_text(inst)})",
            "killing",
            process=inst.name,
            signal="SIGKILL",
        )
        sig.send(inst.child.pid, signal.SIGKILL, group=True)

    def _kill_all(self) -> None:
        if self.killing:
            return
        self.killing = True
        for inst in self._live():
            self._kill(inst)
        self._stop_descendants(self._descendants())

    def _descendants(self) -> list[int]:
        """Adopted processes not in a group we stop as an instance."""
        groups = {i.child.pid for i in self.instances if i.lingering and i.child is not None}
        if not groups:
            return self._adopted()
        return [pid for pid in self._adopted() if self._pgid(pid) not in groups]

    def _pgid(self, pid: int) -> int | None:
        try:
            self._member_pgid[pid] = os.getpgid(pid)
        except OSError:
            return None
        return self._member_pgid[pid]

    def _stop_descendants(self, pids: list[int]) -> None:
        """Adopted orphans get SIGTERM once, or SIGKILL once we are killing."""
        for pid in pids:
            if self.killing:
                # its own children are re-parented to us when it dies, and
                # the next rescan finds them
                sig.send(pid, signal.SIGKILL, group=False)
            elif pid not in self._signalled:
                self._signalled.add(pid)
                sig.send(pid, signal.SIGTERM, group=False)

    # -- the probe host ---------------------------------------------------------

    def watch(self, sock: socket.socket, events: int, fn: Callable[[int], None]) -> None:
        self._selector.register(sock, events, fn)

    def unwatch(self, sock: socket.socket) -> None:
        self._selector.unregister(sock)

    def spawn_check(
        self, command: str, env: Mapping[str, str], cwd: str | None, on_exit: Callable[[int], None]
    ) -> int:
        pid = spawn_quiet(command, env, cwd, self._child_signals)
        self._checks[pid] = on_exit
        return pid

    def kill_check(self, pid: int) -> None:
        if pid in self._checks:
            self._checks[pid] = lambda code: None  # its result no longer matters
            sig.send(pid, signal.SIGKILL, group=True)

    # -- output -----------------------------------------------------------------

    def _notice(self, message: str, event: str, **fields: object) -> None:
        self.sink.notice(message, event, **fields)

    def _warn(self, message: str) -> None:
        """One line on stderr, for what the output stream itself cannot carry."""
        with contextlib.suppress(OSError, ValueError):
            os.write(2, f"corral: {message}\n".encode(errors="replace"))

    def _pending(self) -> int:
        return sum(w.pending for w in self.sink.writers)

    def _write_output(self) -> None:
        for writer in self.sink.writers:
            try:
                writer.flush()
            except BrokenPipeError:
                # Nobody reads our output any more (`corral start | head`): stop.
                self._set_exit(EXIT_OUTPUT_CLOSED)
                self._begin_stop()
            except OSError as exc:
                # The disk under a log file is full, or the file hit its size
                # limit (mux.OutputError): nothing more can be shown, so stop
                # rather than run blind.
                self._warn(f"cannot write output: {exc.strerror or exc}; stopping")
                self._set_exit(EXIT_OUTPUT_FAILED)
                self._begin_stop()
            backed_up = writer.pending > 0 and not writer.closed
            if backed_up and writer.fd not in self._writing:
                self._selector.register(writer.fd, selectors.EVENT_WRITE, _no_op)
                self._writing.add(writer.fd)
            elif not backed_up and writer.fd in self._writing:
                self._selector.unregister(writer.fd)
                self._writing.discard(writer.fd)
        # Backpressure: stop reading while the output is far behind, so a fast
        # child blocks on its pipe instead of growing our memory.
        pending = self._pending()
        if self._reading and pending > self.high_water:
            for fd in self._pipes:
                self._selector.unregister(fd)
            self._reading = False
        elif not self._reading and pending <= self.low_water:
            for fd in self._pipes:
                self._selector.register(fd, selectors.EVENT_READ, functools.partial(self._read, fd))
            self._reading = True


def _no_op(mask: int) -> None:
    """stdout became writable: the flush at the end of the loop pass does the work."""


def _stop_levels(dependents: Mapping[str, set[str]]) -> dict[str, int]:
    """Layers of dependents above each type (0: nobody depends on it).

    Shutdown goes from layer 0 down: a type stops once every type that
    depends on it has stopped.
    """
    levels: dict[str, int] = {}

    def level(kind: str) -> int:
        if kind not in levels:
            levels[kind] = 0  # cycles are rejected before we get here
            levels[kind] = max((level(d) + 1 for d in dependents[kind]), default=0)
        return levels[kind]

    for kind in dependents:
        level(kind)
    return levels


def _pid_text(inst: Instance) -> str:
    """`pid 42`, or `group 42` once only the rest of its process group runs."""
    assert inst.child is not None
    return f"{'pid' if inst.alive else 'group'} {inst.child.pid}"


def exec_failure_code(exc: OSError) -> int:
    """The shell's convention: 127 command not found, 126 not executable."""
    if isinstance(exc, FileNotFoundError):
        return 127
    if isinstance(exc, PermissionError):
        return 126
    return 1
