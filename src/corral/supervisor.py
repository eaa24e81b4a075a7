"""The supervisor: the I/O shell around the decision core.

One thread, one loop, owning every child from spawn to reap.  It reads top
to bottom like tini's:

    wait   the reactor sleeps on the signal socket, the children's pipes,
           probe sockets and (when output is backed up) stdout, until the
           nearest deadline of the core, a probe or a partial line, or with
           no timeout at all when idle;
    react  the ready callbacks run: signals and probe results become events
           for the core, pipes feed the pump;
    reap   waitpid(-1) until nothing is left: an instance's exit is an event,
           probe commands report to their probe, adopted orphans are reaped
           quietly (a member of a group that outlived its shell counts for
           that group);
    decide due deadlines become a `Tick` for the core;
    write  the pump writes what stdout takes now.

Every decision is `policy.Controller`'s: the shell turns what happens into
events and carries out the actions that come back (spawn, send a signal to a
process group, start or cancel a probe, show a line).  What only the shell
can know it finds out itself: which processes are ours (`reaper.children`),
whether a process group still has members, which pid an instance has.

Process groups are signalled only while corral knows they are its own: the
group of a live child (its pid cannot be reused before we reap it), or a
group that outlived its shell and still has members among our children.  An
exited instance's group number alone is never used: it may be a stranger's
by now.

The supervisor knows nothing of colours or formats: output goes to a `Sink`
through the pump.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence

from corral import policy, reaper
from corral import signals as sig
from corral.instance import State
from corral.policy import Action, Controller, Event, RunController
from corral.probes import Probe
from corral.pump import Pump, Sink
from corral.reactor import Reactor, Timer
from corral.signals import ChildSignals, SignalPipe
from corral.spawn import Child, spawn_piped, spawn_quiet
from corral.specs import ProcessSpec

DEFAULT_GRACE = policy.DEFAULT_GRACE
RESCAN_INTERVAL = 0.1  # while stopping: look for adopted descendants and emptied groups


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
        clock: Callable[[], float] = time.monotonic,
        reap: Callable[[], Iterator[tuple[int, int]]] = reaper.reap,
        children: Callable[[], list[int]] = reaper.children,
        send: Callable[[int, int, bool], bool] = sig.send,
    ) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.relay = relay
        self.core: Controller = (RunController if relay else Controller)(specs, grace)
        self.sink = sink
        self.spawn = spawn
        self.clock = clock
        self._reap_children = reap
        self._list_children = children
        self._send = send
        self.reactor = Reactor(clock)
        self.pump = Pump(
            self.reactor, sink, high_water=high_water, low_water=low_water, on_data=self._data
        )
        self._signals: SignalPipe | None = None
        self._child_signals = ChildSignals()
        self._children: dict[int, str] = {}  # pid of a live child -> instance name
        self._group: dict[str, int] = {}  # instance name -> its process group
        self._lingering: dict[int, str] = {}  # a group that outlived its shell -> instance
        self._last_code: dict[str, int] = {}  # its last member's exit code
        self._member_pgid: dict[int, int] = {}  # adopted pid -> its process group
        self._probes: dict[str, Probe] = {}
        self._checks: dict[int, Callable[[int], None]] = {}  # probe command pid -> callback
        self._signalled: set[int] = set()  # orphans sent SIGTERM
        self._queue: deque[Action] = deque()
        self._acting = False

    # -- the loop -------------------------------------------------------------

    def run(self) -> int:
        with SignalPipe(relay_all=self.relay) as signals:
            self._signals = signals
            self._child_signals = signals.children
            self.reactor.watch(signals, selectors.EVENT_READ, lambda mask: self._on_signals())
            faults = signals.faults
            if faults is not None:  # `corral run`: SIGSEGV & co. sent with kill()
                self.reactor.watch(faults, selectors.EVENT_READ, lambda mask: self._relay(faults))
            try:
                self._loop()
                self.pump.finish()
            except BaseException:
                # A bug in corral must not strand what it started: kill every
                # group and descendant we know of, then let the error show.
                self._emergency_kill()
                raise
            finally:
                self.reactor.close()
        return self.core.exit_code or 0

    def _loop(self) -> None:
        if not reaper.become_subreaper():
            self._warn(
                "warning: cannot register as a child subreaper (prctl PR_SET_CHILD_SUBREAPER "
                "failed): what the processes orphan is not reaped or stopped by corral; "
                "run corral as PID 1, or on Linux 3.4 or later"
            )
        self._handle(policy.Start())
        # start-up drained the signal socket between spawns, SIGCHLDs
        # included: reap now, or an early exit would wait for a wakeup
        self._reap()
        self._flush()
        while not self._finished():
            self.reactor.wait(self._timeout())
            self._reap()
            now = self.clock()
            self.pump.show_idle_partials(now)
            self.reactor.run_timers(now)
            self._handle(policy.Tick())
            self._flush()

    def _timeout(self) -> float | None:
        deadlines = [
            d
            for d in (
                self.core.next_deadline(),
                self.reactor.next_deadline(),
                self.pump.next_deadline(),
            )
            if d is not None
        ]
        now = self.clock()
        if self.core.phase is not policy.Phase.RUNNING:
            deadlines.append(now + RESCAN_INTERVAL)
        if not deadlines:
            return None  # idle: sleep until a signal or some output
        return max(0.0, min(deadlines) - now)

    def _finished(self) -> bool:
        """True once the core is done and no adopted descendant is left.

        Descendants still around get SIGTERM once (SIGKILL on every pass once
        the core is killing): their own children are re-parented to us when
        they die, and the next pass finds them.
        """
        if not self.core.finished:
            return False
        orphans = self._orphans()
        if not orphans:
            return True
        self._signal_orphans(signal.SIGKILL if self.core.phase is policy.Phase.KILLING else 0)
        return False

    # -- events in, actions out -------------------------------------------------

    def _handle(self, event: Event) -> None:
        """Feed one event to the core and carry out what it decides, in order.

        Carrying out an action can raise another event (a spawn reports
        `Started`): its actions join the queue, so nothing ever recurses.
        """
        self._queue.extend(self.core.handle(event, self.clock()))
        if self._acting:
            return
        self._acting = True
        try:
            while self._queue:
                self._act(self._queue.popleft())
        finally:
            self._acting = False

    def _act(self, action: Action) -> None:
        match action:
            case policy.Spawn(name):
                self._spawn(name)
            case policy.Send(name, signum):
                group = self._group.get(name)
                if group is not None:
                    self._send(group, signum, True)
            case policy.StartProbe(name):
                self._start_probe(name)
            case policy.CancelProbe(name):
                probe = self._probes.pop(name, None)
                if probe is not None:
                    probe.cancel()
            case policy.Notice(message, event, fields):
                self.sink.notice(message, event, **fields)
            case policy.Warn(message):
                self._warn(message)
            case policy.SignalOrphans(signum):
                self._signal_orphans(signum)

    def _on_signals(self) -> None:
        assert self._signals is not None
        self._relay(self._signals)

    def _relay(self, source: sig.SignalPipe | sig.FaultPipe) -> None:
        for signum in source.drain():
            self._handle(policy.Signal(signum))

    # -- children -----------------------------------------------------------------

    def _spawn(self, name: str) -> None:
        # A signal that came during a long start-up is acted on before the
        # next spawn, which it may cancel.
        self._on_signals()
        inst = self.core.instances[name]
        if inst.state is not State.STARTING or inst.pid is not None:
            return
        spec = self.specs[name]
        try:
            child = self.spawn(spec, self._child_signals)
        except (OSError, ValueError) as exc:
            # OSError: exec failed (not found: 127, not executable: 126).
            # ValueError (a NUL byte, a value that cannot be encoded) is
            # rejected when the files are loaded; should one get here anyway,
            # it stops what was started instead of crashing past it.
            if isinstance(exc, OSError):
                code, reason = exec_failure_code(exc), exc.strerror or str(exc)
            else:
                code, reason = 1, str(exc)
            self._handle(policy.SpawnFailed(name, code, reason))
            return
        for group, owner in list(self._lingering.items()):
            if owner == name:
                del self._lingering[group]  # an earlier life's leftovers: plain orphans now
        self._children[child.pid] = name
        self._group[name] = child.pid
        self.pump.add(name, child.pipes)
        self._handle(policy.Started(name, child.pid))

    def _reap(self) -> None:
        for pid, code in self._reap_children():
            self._signalled.discard(pid)
            check = self._checks.pop(pid, None)
            if check is not None:
                check(code)
                continue
            name = self._children.pop(pid, None)
            if name is None:
                # an adopted orphan: reaped quietly, never an app exit; if it
                # belonged to a group that outlived its shell, its code is
                # that group's latest
                owner = self._lingering.get(self._member_pgid.pop(pid, -1))
                if owner is not None:
                    self._last_code[owner] = code
                continue
            self.pump.drain(self.pump.fds_of(name))
            lingering = bool(self._members(pid))
            if lingering:
                self._lingering[pid] = name
                self._last_code[name] = code
            self._handle(policy.Exited(name, code, lingering))
        for group, name in list(self._lingering.items()):
            if not self._members(group):
                del self._lingering[group]
                self._handle(policy.GroupGone(name, self._last_code.get(name, 0)))

    def _adopted(self) -> list[int]:
        """Our children that are neither app processes nor probe checks:
        orphans re-parented to us (we are PID 1 or a subreaper)."""
        return [
            p for p in self._list_children() if p not in self._children and p not in self._checks
        ]

    def _pgid(self, pid: int) -> int | None:
        try:
            self._member_pgid[pid] = os.getpgid(pid)
        except OSError:
            return None
        return self._member_pgid[pid]

    def _members(self, group: int) -> list[int]:
        """The adopted processes still in process group `group`.

        Members of a group whose shell died are re-parented to us, so this
        finds every one of them except a process whose parent left the group
        first (that one is stopped with the orphans at the end).
        """
        return [pid for pid in self._adopted() if self._pgid(pid) == group]

    def _orphans(self) -> list[int]:
        """Adopted processes that belong to no group we stop as an instance."""
        adopted = self._adopted()
        if not self._lingering:
            return adopted
        return [pid for pid in adopted if self._pgid(pid) not in self._lingering]

    def _signal_orphans(self, signum: int) -> None:
        """SIGKILL each orphan, or SIGTERM each one not sent it yet (signum 0
        or SIGTERM)."""
        for pid in self._orphans():
            if signum == signal.SIGKILL:
                self._send(pid, signal.SIGKILL, False)
            elif pid not in self._signalled:
                self._signalled.add(pid)
                self._send(pid, signal.SIGTERM, False)

    def _emergency_kill(self) -> None:
        for pid in self._children:
            self._send(pid, signal.SIGKILL, True)
        for pid in self._adopted():
            self._send(pid, signal.SIGKILL, False)

    # -- probes (the probes' Host) ------------------------------------------------

    def _start_probe(self, name: str) -> None:
        spec = self.specs[name]
        ready = spec.policy.ready
        assert ready is not None
        probe: Probe

        def timed_out() -> None:
            self._probes.pop(name, None)
            self._handle(policy.NotReady(name, probe.reason))

        def passed() -> None:
            self._probes.pop(name, None)
            self._handle(policy.Ready(name))

        probe = Probe(
            ready, self, on_ready=passed, on_timeout=timed_out, env=spec.env, cwd=spec.cwd
        )
        self._probes[name] = probe
        probe.start()

    def _data(self, name: str, data: bytes) -> None:
        probe = self._probes.get(name)
        if probe is not None:
            probe.feed(data)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.reactor.call_later(delay, fn)

    def watch(self, sock: socket.socket, events: int, fn: Callable[[int], None]) -> None:
        self.reactor.watch(sock, events, fn)

    def unwatch(self, sock: socket.socket) -> None:
        self.reactor.unwatch(sock)

    def spawn_check(
        self, command: str, env: Mapping[str, str], cwd: str | None, on_exit: Callable[[int], None]
    ) -> int:
        pid = spawn_quiet(command, env, cwd, self._child_signals)
        self._checks[pid] = on_exit
        return pid

    def kill_check(self, pid: int) -> None:
        if pid in self._checks:
            self._checks[pid] = lambda code: None  # its result no longer matters
            self._send(pid, signal.SIGKILL, True)

    # -- output -----------------------------------------------------------------

    def _flush(self) -> None:
        lost = self.pump.flush()
        if isinstance(lost, BrokenPipeError):
            # nobody reads our output any more (`corral start | head`)
            self._handle(policy.OutputLost())
        elif lost is not None:
            # a full disk under a log file, a file-size limit: mux.OutputError
            self._handle(policy.OutputLost(failed=True, reason=lost.strerror or str(lost)))

    def _warn(self, message: str) -> None:
        """One line on stderr, for what the output stream itself cannot carry."""
        with contextlib.suppress(OSError, ValueError):
            os.write(sys.stderr.fileno() if sys.stderr else 2, f"corral: {message}\n".encode())


def exec_failure_code(exc: OSError) -> int:
    """The shell's convention: 127 command not found, 126 not executable."""
    if isinstance(exc, FileNotFoundError):
        return 127
    if isinstance(exc, PermissionError):
        return 126
    return 1
