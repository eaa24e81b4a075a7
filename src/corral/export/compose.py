"""`corral export compose` (alias docker-compose): one `compose.yaml` in the
Compose Specification format (no `version:` key), one service per process type.

Owns the mapping from a Procfile formation to compose services:

* `deploy: {mode: replicated, replicas: N}` (podman-compose honours `replicas`
  only with `mode: replicated`); a type scaled to 0 stays, with 0 replicas;
* the image is `--image`, else `build:` the app root;
* PORT is per type (base + 100 * index), the same in every replica: each
  container has its own network namespace.  The `web` type also publishes its
  port on the host: `P:P`, or the range `P-(P+N-1):P` for N replicas, so the
  host sees the ports `corral start` would use;
* `env_file:` names the .env files, and `environment:` repeats every value as
  corral parsed it: compose reads env files with its own dialect (it expands
  `$VAR`, and its escapes differ from python-dotenv's), and `environment:`
  wins over `env_file:`, so the container gets exactly corral's values;
* compose interpolates `$` in every string of the file: each `$` is `$$`.

Lifecycle (see `corral.export` for the table): `restart:` (back-off and
limits are not exported: `docker compose up` ignores the delay and window of
`deploy.restart_policy`, which only swarm honours); `depends_on` with
`service_completed_successfully` on a one-shot, `service_healthy` on a type
with a readiness probe, `service_started` otherwise; the probe becomes a
`healthcheck` (`CMD-SHELL`, run by the image's /bin/sh, see
`common.probe_command` for the tools it looks for), checked every probe
interval and unhealthy after the probe timeout's worth of failed checks.  A
`log:` probe has no healthcheck equivalent: services after it wait for it
to start only, as the header comment of the file says.
"""

from __future__ import annotations

import math

from corral.export.commands import probe_command, shell_script
from corral.export.model import ExportContext, File, Restart
from corral.export.plan import PORT, ProcessType, check, dotenv_vars, process_types
from corral.export.templates import Templates
from corral.export.text import dns_label, seconds, unique_labels
from corral.export.yaml_writer import Node, dump

FILENAME = "compose.yaml"
RESTART: dict[Restart, str] = {"on-failure": "on-failure", "always": "always", "no": "no"}
LISTENING = ("web",)


def dollar(text: str) -> str:
    """Escape compose interpolation: `$` -> `$$`."""
    return text.replace("$", "$$")


def duration(timeout: float) -> str:
    text = seconds(timeout)
    return text if text.endswith("ms") else f"{text}s"


def restart(t: ProcessType) -> str:
    """`restart:`; a one-shot others wait for cannot be `always` (it would never
    count as completed), so it is exported as `on-failure`."""
    if t.oneshot and t.restart == "always":
        return "on-failure"
    return RESTART[t.restart]


def healthcheck(t: ProcessType) -> dict[str, Node] | None:
    """The readiness probe as a healthcheck, or None (no probe, or a `log:` one)."""
    probe = t.ready
    command = probe_command(probe) if probe is not None else None
    if probe is None or command is None:
        return None
    return {
        "test": ["CMD-SHELL", dollar(command)],
        "interval": duration(probe.interval),
        "retries": max(1, math.ceil(probe.timeout / probe.interval)),
    }


def condition(dep: ProcessType) -> str:
    if dep.oneshot:
        return "service_completed_successfully"
    if healthcheck(dep) is not None:
        return "service_healthy"
    return "service_started"


def render(ctx: ExportContext) -> list[File]:
    """`compose.yaml`."""
    check(ctx)
    Templates("compose", ctx.template_dir)  # rejects -t: compose has override files
    types = process_types(ctx)
    by_name = {t.name: t for t in types}
    names = unique_labels([t.name for t in types], "", "compose service")
    env = {k: dollar(v) for k, v in dotenv_vars(ctx, skip=(PORT,)).items()}
    services: dict[str, Node] = {}
    notes: list[str] = []
    for t in types:
        service: dict[str, Node] = {}
        if ctx.image:
            service["image"] = dollar(ctx.image)
        else:
            service["build"] = dollar(str(ctx.app_root))
        service["command"] = [dollar(ctx.shell), "-c", dollar(shell_script(t.command))]
        if ctx.env_files:
            service["env_file"] = [dollar(str(p)) for p in ctx.env_files]
        service["environment"] = {PORT: str(t.port), **env}
        if t.name in LISTENING:
            host = f"{t.port}-{t.port + t.count - 1}" if t.count > 1 else str(t.port)
            service["ports"] = [f"{host}:{t.port}"]
        service["deploy"] = {"mode": "replicated", "replicas": t.count}
        if t.after:
            service["depends_on"] = {
                names[dep]: {"condition": condition(by_name[dep])} for dep in t.after
            }
        health = healthcheck(t)
        if health is not None:
            service["healthcheck"] = health
        elif t.ready is not None:
            notes.append(
                f"{names[t.name]}: a log: readiness probe cannot be a healthcheck; "
                "services after it wait only for it to start."
            )
        if t.oneshot and t.restart == "always":
            notes.append(f"{names[t.name]}: one-shot with restart always: exported as on-failure.")
        service["restart"] = restart(t)
        service["stop_signal"] = f"SIG{t.stop_signal}"
        service["stop_grace_period"] = duration(t.stop_timeout)
        services[names[t.name]] = service
    document: dict[str, Node] = {"name": dns_label(ctx.app, "app name"), "services": services}
    comment = "\n".join(
        [
            f"Generated by `corral export compose` for {ctx.app}.",
            "Run it with: docker compose -f compose.yaml up",
            *notes,
        ]
    )
    return [File(FILENAME, dump(document, comment))]
