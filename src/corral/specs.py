"""Plain data shared by the parser, the formation, the supervisor and the exporters.

`ProcessSpec` is *what to run* (one instance, e.g. `web.2`); the supervisor's
`Child` is a live pid.  Keeping the two apart lets `formation` and `export` stay
pure and lets restarts re-use a spec.  `Policy` is the lifecycle of a process
type (one-shot, restart, dependencies, readiness, stop signal); the defaults
are the plain Procfile behaviour: the first exit stops everything.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.shell import exec_command

RESTART_MODES = ("no", "on-failure", "always")


@dataclass(frozen=True)
class RestartPolicy:
    """When and how fast a process is restarted after it exits.

    mode:        `no` (its exit stops everything), `on-failure` (non-zero
                 exits and deaths by signal), `always`
    delay:       first back-off delay; doubled after each consecutive restart
    max_delay:   the back-off cap
    limit:       at most this many restarts within `window` seconds; one more
                 exit then stops everything with that exit code
    reset_after: an instance that stayed up this long starts again at `delay`
    """

    mode: str = "no"
    delay: float = 1.0
    max_delay: float = 30.0
    limit: int = 5
    window: float = 60.0
    reset_after: float = 10.0

    def wants_restart(self, code: int) -> bool:
        return self.mode == "always" or (self.mode == "on-failure" and code != 0)


PROBE_KINDS = ("tcp", "http", "file", "cmd", "log")


@dataclass(frozen=True)
class ProbeSpec:
    """A readiness probe: `kind:target`, retried every `interval` for `timeout` s.

    tcp:[HOST:]PORT     a TCP connection is accepted (host 127.0.0.1)
    http:URL            GET returns 2xx (`http:PORT/path` for localhost)
    file:PATH           the file exists
    cmd:COMMAND         the shell command exits 0
    log:REGEX           a line of the process's output matches
    `$PORT` and other `$VARS` in the target are the instance's environment.
    """

    kind: str
    target: str
    interval: float = 0.5
    timeout: float = 60.0

    def __str__(self) -> str:
        """As the user wrote it: `tcp:5000`, or a bare `http://...` URL."""
        if self.kind == "http" and "://" in self.target:
            return self.target
        return f"{self.kind}:{self.target}"


@dataclass(frozen=True)
class Policy:
    """The lifecycle settings of one process type."""

    oneshot: bool = False  # may exit 0 without stopping the others
    restart: RestartPolicy = field(default_factory=RestartPolicy)
    after: tuple[str, ...] = ()  # types that must be ready (one-shots: done) first
    ready: ProbeSpec | None = None
    stop_signal: int = signal.SIGTERM
    stop_timeout: float | None = None  # grace before SIGKILL; None: the global one
    run_timeout: float | None = None  # a one-shot still running then stops everything


@dataclass(frozen=True)
class ProcessSpec:
    """One process instance to run.

    name:    instance name, `web.1`
    kind:    process type from the Procfile, `web`
    command: passed to `/bin/sh -c`, with `exec` when it is one simple
             command (or run directly when `argv` is set)
    env:     the complete environment of the child
    cwd:     working directory of the child (None: corral's own)
    port:    the PORT given to this instance
    quiet:   hide its output lines (start/stop lines still show)
    tty:     run it on a pseudo-terminal instead of pipes
    policy:  the lifecycle settings of its type
    """

    name: str
    kind: str
    command: str
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    port: int | None = None
    quiet: bool = False
    tty: bool = False
    argv: tuple[str, ...] | None = None
    policy: Policy = field(default_factory=Policy)

    @property
    def stop_signal(self) -> int:
        return self.policy.stop_signal

    def args(self) -> list[str]:
        """The argv to exec: the explicit argv, or `/bin/sh -c command`.

        A simple command runs as `exec command`, so the shell replaces itself
        and the app is the process corral supervises (see `corral.shell`).
        """
        if self.argv is not None:
            return list(self.argv)
        return ["/bin/sh", "-c", exec_command(self.command)]
