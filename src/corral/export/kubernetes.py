"""`corral export kubernetes` (alias k8s): one multi-document `<app>.yaml` with
a ConfigMap (or, with `--k8s-secret`, a Secret) holding the .env values, one
Deployment per process type and a Service for the types that listen on PORT.

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
  value it allows), whatever the restart setting; one-shot types will need Jobs.
"""

from __future__ import annotations

from corral.export.common import (
    DNS_LABEL_MAX,
    PORT,
    Templates,
    check,
    dns_label,
    dotenv_vars,
    process_types,
    shell_script,
    unique_labels,
    whole_seconds,
)
from corral.export.model import ExportContext, File
from corral.export.yaml_writer import Node, dump_all

LISTENING = ("web",)


def dollar(text: str) -> str:
    """Escape Kubernetes `$(VAR)` expansion: `$` -> `$$`."""
    return text.replace("$", "$$")


def service_name(name: str) -> str:
    """A DNS-1035 label (must start with a letter) from a DNS-1123 one."""
    if name[0].isalpha():
        return name
    return f"svc-{name}"[:DNS_LABEL_MAX].rstrip("-")


def render(ctx: ExportContext) -> list[File]:
    """`<app>.yaml`."""
    check(ctx)
    Templates("kubernetes", ctx.template_dir)  # rejects -t: use kustomize
    app = dns_label(ctx.app, "app name")
    types = process_types(ctx)
    names = unique_labels([t.name for t in types], app, "Kubernetes name")
    components = unique_labels([t.name for t in types], "", "Kubernetes component")
    image = ctx.image or f"{app}:latest"
    documents: list[dict[str, Node]] = []
    env = dotenv_vars(ctx, skip=(PORT,))
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
        if t.name in LISTENING:
            container["ports"] = [{"name": "http", "containerPort": t.port}]
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
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {
                            "terminationGracePeriodSeconds": whole_seconds(ctx.timeout),
                            "containers": [container],
                        },
                    },
                },
            }
        )
    documents.extend(services)
    comment = (
        f"Generated by `corral export kubernetes` for {ctx.app}.\n"
        f"Apply it with: kubectl apply -f {ctx.app}.yaml"
    )
    return [File(f"{ctx.app}.yaml", dump_all(documents, comment))]
