"""`corral export kubernetes` (alias k8s): one multi-document `<app>.yaml` with
a ConfigMap (or, with `--k8s-secret`, a Secret) holding the .env values, one
Deployment per long-running process type, one Job per one-shot type (the
`release` entry included), and a Service for the types that listen on PORT.

Owns the mapping from a Procfile formation to Kubernetes objects:

* names must be DNS-1123 labels and the schemas do not check it, so process
  types and the app name are sanitised (`foo_bar` -> `foo-bar`, lower case);
  two types that sanitise to the same name are an error.  A Service name must
  also start with a letter: `svc-` is put in front when it does not;
* replicas = concurrency (0 keeps a Deployment with 0 replicas); PORT is per
  type as in compose; the image is `--image`, else `<app>:latest`;
* a Service (port = targetPort = PORT, named `http`) is made for the `web`
  type only, Heroku's convention for the type that gets HTTP traffic;
* Kubernetes expands `$(VAR)` in `command` and `env` values and turns `$$`
  into `$`, so each `$` there is `$$`; ConfigMap/Secret data is not expanded;
* a Deployment's pods always restart (`restartPolicy: Always` is the only
  value it allows), whatever the restart setting.

Lifecycle (the table in `corral.export`): a one-shot is a Job with
`parallelism` = `completions` = concurrency; a tcp/http probe whose target
holds a variable other than PORT or a .env one is an `exec` of the shell
check.  Jobs are immutable once created: delete a finished Job before
applying a new export.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from corral.export.commands import probe_command, shell_script
from corral.export.model import ExportContext, File
from corral.export.plan import PORT, ProcessType, dotenv_vars, plan
from corral.export.templates import Templates
from corral.export.text import DNS_LABEL_MAX, dns_label, dollar, unique_labels, whole_seconds
from corral.export.yaml_writer import Node, dump_all
from corral.specs import ProbeError

LISTENING = ("web",)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_BACKOFF_LIMIT = 6  # Kubernetes' own default


def service_name(name: str) -> str:
    """A DNS-1035 label (must start with a letter) from a DNS-1123 one."""
    if name[0].isalpha():
        return name
    return f"svc-{name}"[:DNS_LABEL_MAX].rstrip("-")


def probe_action(shell: str, t: ProcessType, env: Mapping[str, str]) -> dict[str, Node] | None:
    """The handler of a readiness probe: tcpSocket, httpGet or exec; None for log:."""
    probe = t.ready
    if probe is None:
        return None
    if probe.kind in ("tcp", "http"):
        try:
            where = probe.endpoint(env)  # filled in as `corral start` fills it
        except ProbeError:
            where = None  # a $VAR only the container has: the shell checks it (exec)
        if where is not None:
            host: dict[str, Node] = {}
            if where.address not in LOCAL_HOSTS:
                host["host"] = where.address
            if probe.kind == "tcp":
                return {"tcpSocket": {"port": int(where.port), **host}}
            return {"httpGet": {"path": where.path, "port": int(where.port), **host}}
    command = probe_command(probe)
    if command is None:
        return None
    # probe commands are not $(VAR)-expanded by Kubernetes: no `$$` here
    return {"exec": {"command": [shell, "-c", command]}}


def readiness_probe(shell: str, t: ProcessType, env: Mapping[str, str]) -> dict[str, Node] | None:
    action = probe_action(shell, t, env)
    if action is None or t.ready is None:
        return None
    return {**action, "periodSeconds": max(1, math.ceil(t.ready.interval))}


def job_spec(t: ProcessType, pod: dict[str, Node], labels: dict[str, Node]) -> dict[str, Node]:
    """A one-shot type's Job spec."""
    never = t.restart == "no"
    limit = t.backoff.limit if t.backoff is not None else DEFAULT_BACKOFF_LIMIT
    spec: dict[str, Node] = {
        "parallelism": t.count,
        "completions": t.count,
        "backoffLimit": 0 if never else limit,
    }
    if t.policy.run_timeout is not None:
        spec["activeDeadlineSeconds"] = max(1, math.ceil(t.policy.run_timeout))
    spec["template"] = {
        "metadata": {"labels": labels},
        "spec": {"restartPolicy": "Never" if never else "OnFailure", **pod},
    }
    return spec


def render(ctx: ExportContext) -> list[File]:
    """`<app>.yaml`."""
    exported = plan(ctx)
    Templates("kubernetes", ctx.template_dir)  # rejects -t: use kustomize
    app = dns_label(ctx.app, "app name")
    types = exported.types
    names = unique_labels([t.name for t in types], app, "Kubernetes name")
    components = unique_labels([t.name for t in types], "", "Kubernetes component")
    image = ctx.image or f"{app}:latest"
    documents: list[dict[str, Node]] = []
    env = dotenv_vars(ctx)
    env_from: list[Node] = []
    if env:
        env_name = dns_label(f"{app}-env", "app name")
        metadata: dict[str, Node] = {"name": env_name, "labels": {"app.kubernetes.io/name": app}}
        data: dict[str, Node] = dict(env)
        if ctx.secret:
            documents.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": metadata,
                    "type": "Opaque",
                    "stringData": data,
                }
            )
            env_from.append({"secretRef": {"name": env_name}})
        else:
            documents.append(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
            )
            env_from.append({"configMapRef": {"name": env_name}})
    services: list[dict[str, Node]] = []
    order: list[str] = []
    stop_signals: list[str] = []
    log_probes: list[str] = []
    for t in types:
        labels: dict[str, Node] = {
            "app.kubernetes.io/name": app,
            "app.kubernetes.io/component": components[t.name],
        }
        container: dict[str, Node] = {
            "name": components[t.name],
            "image": image,
            "command": [dollar(ctx.shell), "-c", dollar(shell_script(t.command))],
            "env": [{"name": PORT, "value": str(t.port)}],
        }
        if env_from:
            container["envFrom"] = env_from
        listening = t.name in LISTENING and not t.oneshot
        if listening:
            container["ports"] = [{"name": "http", "containerPort": t.port}]
        probe = readiness_probe(ctx.shell, t, {**env, PORT: str(t.port)})
        if probe is not None:
            container["readinessProbe"] = probe
        elif t.ready is not None:
            log_probes.append(components[t.name])
        if t.after:
            order.append(f"{components[t.name]} after {', '.join(components[d] for d in t.after)}")
        if t.stop_signal != "TERM":
            stop_signals.append(f"{components[t.name]} SIG{t.stop_signal}")
        pod: dict[str, Node] = {
            "terminationGracePeriodSeconds": whole_seconds(t.stop_timeout),
            "containers": [container],
        }
        if t.oneshot:
            documents.append(
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": names[t.name], "labels": labels},
                    "spec": job_spec(t, pod, labels),
                }
            )
            continue
        if listening:
            services.append(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": service_name(names[t.name]), "labels": labels},
                    "spec": {
                        "selector": labels,
                        "ports": [{"name": "http", "port": t.port, "targetPort": t.port}],
                    },
                }
            )
        documents.append(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": names[t.name], "labels": labels},
                "spec": {
                    "replicas": t.count,
                    "selector": {"matchLabels": labels},
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                },
            }
        )
    documents.extend(services)
    notes = [
        f"{what}, not exported ({why}): {'; '.join(items)}."
        for what, why, items in (
            ("Start order", "Kubernetes starts every workload at once", order),
            ("Stop signals", "none per container: set STOPSIGNAL in the image", stop_signals),
            ("log: readiness probes", "no equivalent", log_probes),
        )
        if items
    ]
    if any(t.oneshot for t in types):
        notes.append("Jobs cannot be changed once created: delete them before applying again.")
    comment = "\n".join(
        [
            f"Generated by `corral export kubernetes` for {ctx.app}.",
            f"Apply it with: kubectl apply -f {ctx.app}.yaml",
            *notes,
        ]
    )
    return [File(f"{ctx.app}.yaml", dump_all(documents, comment))]
