"""The data every exporter consumes and produces: `ExportContext` in, `File`s out.

Kept apart from `corral.export` itself so that the per-format modules can import
these types without importing the package that imports them.  Nothing here does
I/O; `ExportContext` is built by the CLI (`corral.app`) from the options, the
Procfile, the `.env` files and the lifecycle settings.

The lifecycle settings arrive as the same `corral.specs.Policy` objects that
`corral start` runs with (built by `corral.lifecycle.policies`, so the release
rule is already applied), plus `restart_given`: the types whose restart policy
the user set.  Only those export their own restart mode, back-off and limits;
the others get the export default (see `restart_mode` and the package
docstring).  A type missing from `policies` gets the default `Policy()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from corral.procfile import Entry
from corral.specs import Policy

Restart = Literal["on-failure", "always", "no"]
DEFAULT_RESTART: Restart = "on-failure"
DEFAULT_POLICY = Policy()


@dataclass(frozen=True)
class ExportContext:
    """Everything an exporter needs; see `corral export --help` for the options."""

    app: str  # app name (-a; default: basename of app root)
    entries: Sequence[Entry]  # Procfile entries, in Procfile order
    counts: Mapping[str, int]  # concurrency per type; missing => 1; 0 => not exported/replicas 0
    base_port: int  # -p, default 5000
    env: Mapping[str, str]  # values from the .env files ONLY (not os.environ)
    env_files: Sequence[Path]  # absolute paths of the .env files that were read
    app_root: Path  # absolute app directory (working dir of the processes)
    log_dir: str  # -l, default /var/log/<app>
    user: str  # -u, default <app>
    shell: str  # -s, default /bin/sh
    timeout: float  # grace period in seconds before SIGKILL (default 5)
    template_dir: Path | None  # -t: user templates override built-in ones
    image: str | None = None  # compose/k8s image (--image)
    secret: bool = False  # k8s: Secret instead of ConfigMap (--k8s-secret)
    # Lifecycle: one Policy per type (missing => Policy()), and the types whose
    # restart policy was given (the others get the export default).
    policies: Mapping[str, Policy] = field(default_factory=dict)
    restart_given: frozenset[str] = frozenset()

    def count(self, kind: str) -> int:
        """Concurrency of a process type (1 unless given)."""
        return self.counts.get(kind, 1)

    def policy(self, kind: str) -> Policy:
        """Lifecycle policy of a process type."""
        return self.policies.get(kind, DEFAULT_POLICY)

    def restart_mode(self, kind: str) -> Restart:
        """The restart mode to export: the user's, else `no` for a one-shot and
        `on-failure` for the rest (a process manager's job is to keep a crashed
        service up, unlike `corral start`, whose default is to stop everything)."""
        policy = self.policy(kind)
        if kind in self.restart_given:
            # one of specs.RESTART_MODES, the names Restart spells (plan.check)
            return cast(Restart, policy.restart.mode)
        return "no" if policy.oneshot else DEFAULT_RESTART


@dataclass(frozen=True)
class File:
    """One file to write, relative to the export LOCATION."""

    path: str  # relative to LOCATION, may contain sub-directories (runit)
    content: str
    mode: int = 0o644  # a file carrying .env values gets PRIVATE (PRIVATE_EXECUTABLE)


# modes of the files that carry .env values: owner only, whatever the umask
PRIVATE = 0o600
PRIVATE_EXECUTABLE = 0o700


def carries_env(ctx: ExportContext, keys: Iterable[str]) -> bool:
    """Whether a file holding these environment keys holds a `.env` value."""
    return any(key in ctx.env for key in keys)
