"""The export plan: what every format renders, read once from the
`ExportContext` so that all formats agree.

Owns the checks of the context (`check`), the process types with their
lifecycle as exported (`ProcessType`: restart mode, the dependencies that run,
grace period, start levels) and the instances (`Instance`).  Instance names,
ports and environments are not worked out here: they come from
`corral.formation.expand`, the code `corral start` runs, so that every format
gives each process the PORT it gets under `corral start` (the `release` rule
included).
"""

from __future__ import annotations

import math
import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corral import deps, formation
from corral.errors import CorralError
from corral.export.model import ExportContext, Restart
from corral.specs import RESTART_MODES, Policy, ProbeError, ProbeSpec, ProcessSpec, RestartPolicy

PORT = "PORT"
# What `formation.expand` sets for each instance, over the same names in .env;
# the per-instance formats write them first.
INSTANCE_VARS = (PORT, "PS", "HONCHO_PROCESS_NAME")

APP_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
USER_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
ENV_KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class ProcessType:
    """A Procfile entry with its first PORT, concurrency and lifecycle."""

    name: str
    command: str
    port: int  # PORT of instance 1, whatever the count (compose/k8s replicas all use it)
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
        return signal.Signals(self.policy.stop_signal).name.removeprefix("SIG")

    @property
    def always_oneshot(self) -> bool:
        """A one-shot with restart `always`, which a format whose dependents
        wait for its completion (systemd, compose, Kubernetes) cannot express:
        it would never count as completed."""
        return self.oneshot and self.restart == "always"

    @property
    def completing_restart(self) -> Restart:
        """The restart mode for such formats: `always` on a one-shot is `on-failure`."""
        return "on-failure" if self.always_oneshot else self.restart


@dataclass(frozen=True)
class Instance:
    """One instance (`web.2`) of a process type, for per-instance formats."""

    kind: ProcessType
    num: int  # from 1
    name: str  # `web.2`: the PS / HONCHO_PROCESS_NAME value
    port: int
    env: Mapping[str, str]  # INSTANCE_VARS, then the .env values

    @classmethod
    def of(cls, kind: ProcessType, num: int, spec: ProcessSpec) -> Instance:
        own = {k: spec.env[k] for k in INSTANCE_VARS}
        env = {**own, **{k: v for k, v in spec.env.items() if k not in own}}
        return cls(kind, num, spec.name, int(own[PORT]), env)


@dataclass(frozen=True)
class Plan:
    """The process types in Procfile order (0-count ones included) and the
    instances to run, types in Procfile order (0-count types have none)."""

    types: list[ProcessType]
    instances: list[Instance]

    def of(self, kind: ProcessType) -> list[Instance]:
        """The instances of one type."""
        return [inst for inst in self.instances if inst.kind is kind]

    def levels(self) -> dict[str, int]:
        """Start level of each type: 0 without (exported) dependencies, else 1 +
        its deepest dependency's."""
        return deps.start_levels({t.name: t.after for t in self.types})


def plan(ctx: ExportContext) -> Plan:
    """Check `ctx` (see `check`) and read the plan from it."""
    check(ctx)
    slots = formation.port_slots(ctx.entries)
    types = [
        ProcessType(
            name=entry.name,
            command=entry.command,
            port=ctx.base_port + formation.PORT_STEP * slots[entry.name],
            count=ctx.count(entry.name),
            restart=ctx.restart_mode(entry.name),
            policy=policy,
            backoff=policy.restart if entry.name in ctx.restart_given else None,
            after=tuple(dep for dep in policy.after if ctx.count(dep) > 0),
            stop_timeout=ctx.timeout if policy.stop_timeout is None else policy.stop_timeout,
        )
        for entry in ctx.entries
        for policy in [ctx.policy(entry.name)]
    ]
    by_name = {t.name: t for t in types}
    specs = formation.expand(ctx.entries, env=ctx.env, base_port=ctx.base_port, counts=ctx.counts)
    nums: dict[str, int] = {}
    instances: list[Instance] = []
    for spec in specs:
        nums[spec.kind] = nums.get(spec.kind, 0) + 1
        instances.append(Instance.of(by_name[spec.kind], nums[spec.kind], spec))
    return Plan(types, instances)


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
    for name in ctx.counts:  # expand() checks the numbers
        formation.check_known(name, known, "concurrency")
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
        formation.check_known(name, known, "lifecycle")
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
        if policy.ready is not None:
            if policy.ready.interval <= 0:
                raise CorralError(f"lifecycle: {name}: the probe interval must be more than 0")
            try:
                policy.ready.validate()
            except ProbeError as exc:
                raise CorralError(f"lifecycle: {name}: ready {policy.ready}: {exc}") from None
    deps.check_cycles({name: policy.after for name, policy in ctx.policies.items()})


def dotenv_vars(ctx: ExportContext) -> dict[str, str]:
    """The .env values but PORT, which the per-type formats (compose,
    Kubernetes) set for each type."""
    return {k: v for k, v in ctx.env.items() if k != PORT}
