"""The export plan: what every format renders, read once from the
`ExportContext` so that all formats agree.

Owns the checks of the context (`check`), the process types with their
lifecycle as exported (`ProcessType`: restart mode, the dependencies that run,
grace period, start levels) and the instances with their PORT and environment,
by the same rules as `corral start` (`corral.formation`).
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Sequence
from dataclasses import dataclass

from corral.errors import CorralError
from corral.export.model import RESTART_MODES, ExportContext, Restart
from corral.formation import PORT_STEP
from corral.specs import Policy, ProbeSpec, RestartPolicy

# Variables every per-instance export sets itself (as `corral start` does);
# the same names in .env are overridden, like `-p` beats PORT from .env.
PORT = "PORT"
INSTANCE_VARS = ("PORT", "PS", "HONCHO_PROCESS_NAME")

APP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ProcessType:
    """A Procfile entry with its position, first PORT, concurrency and lifecycle."""

    name: str
    command: str
    index: int  # position in the Procfile: fixes the PORT block
    port: int  # PORT of instance 1 (compose/k8s replicas all use it)
    count: int
    restart: Restart  # the mode to export (`ExportContext.restart_mode`)
    policy: Policy
    backoff: RestartPolicy | None  # the user's restart table, None if not given
    after: tuple[str, ...]  # dependencies that are exported (count > 0)
    stop_timeout: float  # its own grace before SIGKILL, else the global one

    @property
    def oneshot(self) -> bool:
        return self.policy.oneshot

    @property
    def ready(self) -> ProbeSpec | None:
        """The readiness probe; a one-shot's is ignored (it is waited for by completion)."""
        return None if self.oneshot else self.policy.ready

    @property
    def stop_signal(self) -> str:
        """`TERM`, `INT`, ...: the stop signal without `SIG`."""
        return signal_name(self.policy.stop_signal)


@dataclass(frozen=True)
class Instance:
    """One instance (`web.2`) of a process type, for per-instance formats."""

    kind: ProcessType
    num: int  # from 1

    @property
    def name(self) -> str:
        """`web.2`: the PS / HONCHO_PROCESS_NAME value."""
        return f"{self.kind.name}.{self.num}"

    @property
    def port(self) -> int:
        return self.kind.port + self.num - 1


def check(ctx: ExportContext) -> None:
    """Reject input no format can export; raise `CorralError`."""
    if not APP_RE.fullmatch(ctx.app):
        raise CorralError(
            f"cannot export app name {ctx.app!r}: use letters, digits, '.', '_' and '-' "
            "(choose one with -a)"
        )
    if not USER_RE.fullmatch(ctx.user):
        raise CorralError(f"cannot export user name {ctx.user!r} (choose one with -u)")
    if not ctx.shell or any(c.isspace() or not c.isprintable() for c in ctx.shell):
        raise CorralError(f"cannot export shell {ctx.shell!r}: give a path without spaces")
    for what, value in (("log directory", ctx.log_dir), ("app root", str(ctx.app_root))):
        if not value or not value.isprintable():
            raise CorralError(f"cannot export {what} {value!r}: it contains control characters")
    if not math.isfinite(ctx.timeout) or ctx.timeout < 0:
        raise CorralError(f"bad timeout {ctx.timeout!r}: give 0 or more seconds")
    known = [e.name for e in ctx.entries]
    for name, count in ctx.counts.items():
        if name not in known:
            raise CorralError(
                f"concurrency: unknown process {name!r} (the Procfile has: {', '.join(known)})"
            )
        if count < 0:
            raise CorralError(f"concurrency: {name}={count}: count must be 0 or more")
    check_policies(ctx, known)
    for key, value in ctx.env.items():
        if not ENV_KEY_RE.fullmatch(key):
            raise CorralError(
                f"cannot export variable {key!r}: names must be letters, digits and '_', "
                "not starting with a digit"
            )
        if "\0" in value:
            raise CorralError(f"cannot export variable {key}: its value contains a NUL byte")


def check_policies(ctx: ExportContext, known: Sequence[str]) -> None:
    """Lifecycle settings an API caller could get wrong (the CLI validates its own)."""
    for name in [*ctx.policies, *ctx.restart_given]:
        if name not in known:
            raise CorralError(
                f"lifecycle: unknown process {name!r} (the Procfile has: {', '.join(known)})"
            )
    for name, policy in ctx.policies.items():
        if policy.restart.mode not in RESTART_MODES:
            raise CorralError(f"lifecycle: {name}: unknown restart policy {policy.restart.mode!r}")
        for dep in policy.after:
            if dep not in known or dep == name:
                raise CorralError(f"lifecycle: {name}: bad dependency {dep!r}")
        try:
            signal.Signals(policy.stop_signal)
        except ValueError:
            raise CorralError(
                f"lifecycle: {name}: unknown stop signal {policy.stop_signal}"
            ) from None
        for what, value in (
            ("stop timeout", policy.stop_timeout),
            ("run timeout", policy.run_timeout),
            ("restart delay", policy.restart.delay),
            ("restart window", policy.restart.window),
            ("probe interval", policy.ready.interval if policy.ready else None),
            ("probe timeout", policy.ready.timeout if policy.ready else None),
        ):
            if value is not None and (not math.isfinite(value) or value < 0):
                raise CorralError(f"lifecycle: {name}: bad {what} {value!r}")
        if policy.ready is not None and policy.ready.interval <= 0:
            raise CorralError(f"lifecycle: {name}: the probe interval must be more than 0")
    if "\0" in "".join(p.ready.target for p in ctx.policies.values() if p.ready):
        raise CorralError("lifecycle: a readiness probe contains a NUL byte")


def process_types(ctx: ExportContext) -> list[ProcessType]:
    """All Procfile types in order, with PORT, count and lifecycle (0-count types included).

    `after` keeps only the dependencies that run (count > 0): as in `corral
    start`, a dependency that is not part of the formation is not waited for.
    """
    return [
        ProcessType(
            name=entry.name,
            command=entry.command,
            index=index,
            port=ctx.base_port + PORT_STEP * index,
            count=ctx.count(entry.name),
            restart=ctx.restart_mode(entry.name),
            policy=policy,
            backoff=policy.restart if entry.name in ctx.restart_given else None,
            after=tuple(dep for dep in policy.after if ctx.count(dep) > 0),
            stop_timeout=ctx.timeout if policy.stop_timeout is None else policy.stop_timeout,
        )
        for index, entry in enumerate(ctx.entries)
        for policy in [ctx.policy(entry.name)]
    ]


def levels(types: Sequence[ProcessType]) -> dict[str, int]:
    """Start level of each type: 0 without dependencies, else 1 + its deepest dependency's."""
    by_name = {t.name: t for t in types}
    result: dict[str, int] = {}

    def level(name: str, path: tuple[str, ...]) -> int:
        if name not in result:
            if name in path:
                raise CorralError(f"dependency cycle: {' -> '.join((*path, name))}")
            deps = by_name[name].after
            result[name] = 1 + max((level(d, (*path, name)) for d in deps), default=-1)
        return result[name]

    for t in types:
        level(t.name, ())
    return result


def signal_name(number: int) -> str:
    """`INT` for SIGINT: the form kill -s, supervisord and systemd (with SIG) take."""
    return signal.Signals(number).name.removeprefix("SIG")


def instances(ctx: ExportContext) -> list[Instance]:
    """Every instance to run, types in Procfile order (0-count types have none)."""
    return [Instance(t, n) for t in process_types(ctx) for n in range(1, t.count + 1)]


def dotenv_vars(ctx: ExportContext, skip: tuple[str, ...] = INSTANCE_VARS) -> dict[str, str]:
    """The .env values, less the variables the export sets itself."""
    return {k: v for k, v in ctx.env.items() if k not in skip}


def instance_env(ctx: ExportContext, inst: Instance) -> dict[str, str]:
    """The environment an instance gets: PORT, PS, HONCHO_PROCESS_NAME, then .env."""
    env = {"PORT": str(inst.port), "PS": inst.name, "HONCHO_PROCESS_NAME": inst.name}
    env.update(dotenv_vars(ctx))
    return env
