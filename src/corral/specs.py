"""Plain data shared by the parser, the formation, the supervisor and the exporters.

`ProcessSpec` is *what to run* (one instance, e.g. `web.2`); the supervisor's
`Child` is a live pid.  Keeping the two apart lets `formation` and `export` stay
pure and lets restarts re-use a spec.
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProcessSpec:
    """One process instance to run.

    name:    instance name, `web.1`
    kind:    process type from the Procfile, `web`
    command: passed to `/bin/sh -c` (or run directly when `argv` is set)
    env:     the complete environment of the child
    cwd:     working directory of the child (None: corral's own)
    port:    the PORT given to this instance
    quiet:   hide its output lines (start/stop lines still show)
    tty:     run it on a pseudo-terminal instead of pipes
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
    stop_signal: int = signal.SIGTERM

    def args(self) -> list[str]:
        """The argv to exec: the explicit argv, or `/bin/sh -c command`."""
        if self.argv is not None:
            return list(self.argv)
        return ["/bin/sh", "-c", self.command]
